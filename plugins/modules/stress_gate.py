#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: judge a stress level, or a whole run, against the spec's thresholds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_gate
short_description: Judge a stress level, or a whole run, against the thresholds
version_added: "0.1.0"
description:
  - Judges the figures of M(qts.observer.stress_measure) with the gate in
    C(plugins/module_utils/gate.py), the one place where the spec's thresholds and run-wide
    criteria are evaluated.
  - With O(scope=level), judges one level against its thresholds (minimum throughput, p99
    processing latency, sustained CPU and memory, integrity, contract, error rate, process
    failure) and returns C(qts_stress_level).
  - With O(scope=run), judges the spec's run-wide criteria (stability, scaling, resources,
    error rate, integrity, graceful degradation, recovery to baseline, contract, clean
    shutdown) over every level of the host and returns C(qts_stress_host).
  - A criterion without the data to judge it (no snapshot sent, no monitor sample, no
    Observer running) is C(NOT MEASURED) with the reason, never C(PASS).
  - The task returns the verdict without failing (its result is data, not a wall of text);
    the stress role shows each breach in a task of its own, and
    M(qts.observer.stress_verdict) fails the run.
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
attributes:
  check_mode:
    support: full
    details: Pure computation; judges the same way in check mode.
  diff_mode:
    support: none
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
  limits:
    description: The run-wide limits (C(limits) of M(qts.observer.stress_plan)); default the spec's.
    type: dict
    default: {}
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
    description: Result of stopping the Observer (C(was_running), C(stopped_cleanly), C(exit_status), C(elapsed_s), C(timeout_s)) (scope=run).
    type: dict
  after_stop:
    description: >-
      The run's records after the stop (C(qts_stress_after_stop) of
      M(qts.observer.stress_measure)); records the Observer had taken in and never wrote fail
      C(clean_shutdown) (scope=run).
    type: dict
  start_pid:
    description: The Observer's PID before the first level (scope=run).
    type: int
  end_pid:
    description: The Observer's PID after the last level (scope=run).
    type: int
  capacity:
    description: >-
      The capacity search's state (C(steps) and C(result)) when one ran (scope=run): its
      steps count for stability, integrity and the contract, its result is the criterion
      C(capacity).
    type: dict
  min_capacity:
    description: A highest sustainable rate under this (snapshots/s) fails C(capacity) (scope=run); 0 sets no floor.
    type: float
    default: 0.0
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
msg:
  description: One line naming the verdict and every breach or unmeasured criterion.
  returned: always
  type: str
  sample: "level 1 (5/s) FAIL: p99 processing latency 61.200 ms not under 50 ms"
qts_stress_level:
  description: The level's figures with its judgment (scope=level).
  returned: when scope is level
  type: dict
  contains:
    level: {description: Level number., type: int, sample: 1}
    thresholds:
      description: >-
        The thresholds judged against.
      type: dict
      sample: {max_cpu_pct: 40, max_latency_ms: 50, max_memory_pct: 60, min_throughput: 4.8}
    verdict: {description: "C(PASS), C(FAIL) or C(NOT MEASURED).", type: str, sample: PASS}
    breaches: {description: "Each breach: C(criterion), C(measured), C(limit), C(message).", type: list, elements: dict, sample: []}
    not_measured: {description: "What could not be measured: C(criterion), C(reason).", type: list, elements: dict, sample: []}
qts_stress_host:
  description: The host's run-wide judgment (scope=run).
  returned: when scope is run
  type: dict
  contains:
    verdict: {description: "C(PASS), C(FAIL) or C(NOT MEASURED), over the levels and the criteria.", type: str, sample: PASS}
    criteria: {description: "Each criterion: C(name), C(verdict), C(evidence), C(measured), C(limit).", type: list, elements: dict, sample: []}
    observer: {description: The Observer's PID at the start and at the end., type: dict, sample: {pid_start: 4242, pid_end: 4242}}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.gate import (
    FAIL,
    NOT_MEASURED,
    judge_level,
    judge_run,
    level_unmeasured,
    verdict_of,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import THRESHOLD_KEYS

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
    breaches = judge_level(metrics, thresholds, params["limits"])
    unmeasured = level_unmeasured(metrics)
    verdict = verdict_of(bool(breaches), bool(unmeasured))
    level = dict(
        metrics,
        level=params["level"],
        thresholds=thresholds,
        breaches=breaches,
        not_measured=unmeasured,
        verdict=verdict,
    )
    texts = [b["message"] for b in breaches]
    texts += ["NOT MEASURED %s: %s" % (u["criterion"], u["reason"]) for u in unmeasured]
    module.exit_json(
        changed=False,
        msg="level %s (%g/s) %s%s"
        % (params["level"], metrics["rate"], verdict, ": " + "; ".join(texts) if texts else ""),
        qts_stress_level=level,
    )


def _run(module: AnsibleModule) -> None:
    params = module.params
    levels = params["levels"] or []
    criteria = judge_run(
        levels,
        len(levels) if params["planned_levels"] is None else params["planned_levels"],
        baseline=params["baseline"],
        recovery=params["recovery"],
        shutdown=params["shutdown"],
        start_pid=params["start_pid"],
        end_pid=params["end_pid"],
        limits=params["limits"],
        after_stop=params["after_stop"],
        capacity=params["capacity"],
        min_capacity=params["min_capacity"],
    )
    verdicts = [c["verdict"] for c in criteria] + [lv.get("verdict") for lv in levels]
    verdict = verdict_of(FAIL in verdicts, NOT_MEASURED in verdicts)
    reasons = [
        "level %s (%g/s): %s" % (lv.get("level"), lv.get("rate", 0), lv.get("verdict"))
        for lv in levels
        if lv.get("verdict") != "PASS"
    ]
    reasons += [
        "%s %s: %s" % (c["name"], c["verdict"], c["evidence"])
        for c in criteria
        if c["verdict"] != "PASS"
    ]
    host = {
        "verdict": verdict,
        "criteria": criteria,
        "observer": {"pid_start": params["start_pid"], "pid_end": params["end_pid"]},
    }
    module.exit_json(
        changed=False,
        msg="run-wide verdict %s%s" % (verdict, ": " + " | ".join(reasons) if reasons else ""),
        qts_stress_host=host,
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "scope": {"type": "str", "choices": ["level", "run"], "default": "level"},
            "level": {"type": "int"},
            "metrics": {"type": "dict"},
            "thresholds": {"type": "dict"},
            "limits": {"type": "dict", "default": {}},
            "levels": {"type": "list", "elements": "dict"},
            "planned_levels": {"type": "int"},
            "baseline": {"type": "dict"},
            "recovery": {"type": "dict"},
            "shutdown": {"type": "dict"},
            "after_stop": {"type": "dict"},
            "start_pid": {"type": "int"},
            "end_pid": {"type": "int"},
            "capacity": {"type": "dict"},
            "min_capacity": {"type": "float", "default": 0.0},
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
