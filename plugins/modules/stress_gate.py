#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: judge a stress level, or a whole run, against the spec's thresholds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_gate
short_description: Judge a stress level, or a whole run, against the thresholds
version_added: "1.0.0"
description:
  - The task that decides. Judges the figures of M(qts.observer.stress_measure) with the gate
    in C(plugins/module_utils/gate.py), the one place where the spec's thresholds and run-wide
    criteria are evaluated.
  - With O(scope=level), judges one level against its thresholds (minimum throughput, p99
    processing latency, sustained CPU and memory, integrity, contract, error rate, process
    failure) and returns C(qts_stress_level).
  - With O(scope=run), judges the spec's run-wide criteria (stability, scaling, resources,
    error rate, integrity, graceful degradation, recovery to baseline, contract, clean
    shutdown) over every level of the host and returns C(qts_stress_host).
  - Any breach fails the task, with a message naming every breached threshold with its
    measured value and its limit. The C(qts.observer.stress_report) callback reports it.
author:
  - qts.observer contributors
attributes:
  check_mode:
    support: full
    details: Pure computation; judges the same way in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  scope:
    description: What to judge.
    type: str
    choices: [level, run]
    default: level
  level:
    description: Level number (scope=level).
    type: int
  metrics:
    description: The level's figures, C(qts_stress_metrics) of M(qts.observer.stress_measure) (scope=level).
    type: dict
  thresholds:
    description: The level's thresholds, C(min_throughput), C(max_latency_ms), C(max_cpu_pct), C(max_memory_pct) (scope=level).
    type: dict
  levels:
    description: The judged levels, C(qts_stress_level) of each level task (scope=run).
    type: list
    elements: dict
  planned_levels:
    description: How many levels the run planned (scope=run).
    type: int
  baseline:
    description: Monitor figures before the levels (scope=run).
    type: dict
  recovery:
    description: Monitor figures after the final cooldown (scope=run).
    type: dict
  shutdown:
    description: Result of stopping the Observer (C(stopped_cleanly), C(exit_status), C(elapsed_s), C(timeout_s)) (scope=run).
    type: dict
  start_pid:
    description: The Observer's PID before the first level (scope=run).
    type: int
  end_pid:
    description: The Observer's PID after the last level (scope=run).
    type: int
"""

EXAMPLES = r"""
- name: Judge level 1
  qts.observer.stress_gate:
    scope: level
    level: 1
    metrics: "{{ __stress_measure.qts_stress_metrics }}"
    thresholds: {min_throughput: 4.8, max_latency_ms: 50, max_cpu_pct: 40, max_memory_pct: 60}

- name: Judge the run
  qts.observer.stress_gate:
    scope: run
    levels: "{{ __stress_levels }}"
    planned_levels: 4
    baseline: "{{ __stress_baseline.qts_stress_metrics }}"
    recovery: "{{ __stress_recovery.qts_stress_metrics }}"
    shutdown: "{{ __stress_shutdown }}"
    start_pid: 4242
    end_pid: 4242
"""

RETURN = r"""
qts_stress_level:
  description: The level's figures with C(level), C(thresholds), C(verdict) and C(breaches) (scope=level).
  returned: when scope is level
  type: dict
qts_stress_host:
  description: C(verdict) and C(criteria) (each with C(name), C(verdict), C(evidence), C(measured), C(limit)) (scope=run).
  returned: when scope is run
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.gate import judge_level, judge_run
from ..module_utils.profile import THRESHOLD_KEYS

LEVEL_FIGURES = (
    "rate",
    "sent",
    "written",
    "lost",
    "duplicated",
    "modified",
    "throughput",
    "latency_ms",
    "cpu_pct",
    "memory_pct",
    "error_rate_pct",
)


def _level(module: AnsibleModule) -> None:
    params = module.params
    metrics, thresholds = params["metrics"] or {}, params["thresholds"] or {}
    missing = [key for key in LEVEL_FIGURES if key not in metrics]
    if missing:
        module.fail_json(
            msg="metrics lack %s: pass qts_stress_metrics of qts.observer.stress_measure"
            % ", ".join(missing)
        )
    absent = [key for key in THRESHOLD_KEYS if key not in thresholds]
    if absent:
        module.fail_json(msg="thresholds lack %s" % ", ".join(absent))
    breaches = judge_level(metrics, thresholds)
    level = dict(
        metrics,
        level=params["level"],
        thresholds=thresholds,
        breaches=breaches,
        verdict="FAIL" if breaches else "PASS",
    )
    if breaches:
        module.fail_json(
            msg="level %s (%g/s) FAILED: %s"
            % (params["level"], metrics["rate"], "; ".join(b["message"] for b in breaches)),
            qts_stress_level=level,
        )
    module.exit_json(changed=False, qts_stress_level=level)


def _run(module: AnsibleModule) -> None:
    params = module.params
    levels = params["levels"] or []
    criteria = judge_run(
        levels,
        params["planned_levels"] or len(levels),
        baseline=params["baseline"],
        recovery=params["recovery"],
        shutdown=params["shutdown"],
        start_pid=params["start_pid"],
        end_pid=params["end_pid"],
    )
    failed_levels = [lv for lv in levels if lv.get("verdict") != "PASS"]
    failed = [c for c in criteria if c["verdict"] != "PASS"]
    verdict = "FAIL" if failed or failed_levels else "PASS"
    host = {
        "verdict": verdict,
        "criteria": criteria,
        "observer": {"pid_start": params["start_pid"], "pid_end": params["end_pid"]},
    }
    if verdict == "FAIL":
        reasons = [
            "level %s (%g/s): %s"
            % (
                lv.get("level"),
                lv.get("rate", 0),
                "; ".join(b["message"] for b in lv.get("breaches", [])) or "failed",
            )
            for lv in failed_levels
        ]
        reasons += ["%s: %s" % (c["name"], c["evidence"]) for c in failed]
        module.fail_json(msg="stress verdict FAIL: " + " | ".join(reasons), qts_stress_host=host)
    module.exit_json(changed=False, qts_stress_host=host)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "scope": {"type": "str", "choices": ["level", "run"], "default": "level"},
            "level": {"type": "int"},
            "metrics": {"type": "dict"},
            "thresholds": {"type": "dict"},
            "levels": {"type": "list", "elements": "dict"},
            "planned_levels": {"type": "int"},
            "baseline": {"type": "dict"},
            "recovery": {"type": "dict"},
            "shutdown": {"type": "dict"},
            "start_pid": {"type": "int"},
            "end_pid": {"type": "int"},
        },
        required_if=[
            ("scope", "level", ("level", "metrics", "thresholds")),
            ("scope", "run", ("levels",)),
        ],
        supports_check_mode=True,
    )
    if module.params["scope"] == "level":
        _level(module)
    else:
        _run(module)


if __name__ == "__main__":
    main()
