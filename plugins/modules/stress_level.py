#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the stress_level action plugin (it drives the host from the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_level
short_description: Run one stress level on a host, follow it, measure it and judge it
version_added: "0.1.0"
description:
  - One call runs a level of the stress run on the host. It starts M(qts.observer.snapshot_load) there as an async job, follows it with
    M(qts.observer.stress_progress) every O(interval_s) (one C([progress]) line per poll,
    each early warning once; the same poll reads the load's job file), measures the level
    with M(qts.observer.stress_measure) once the load has ended, and judges it against
    O(thresholds) with the gate (C(plugins/module_utils/gate.py)) on the controller.
  - M(qts.observer.stress_capacity) runs the capacity search's steps the same way.
  - A level whose Observer dies is measured and judged (C(process_failure) is a measured
    outcome); a load that could not run, or ended without finishing, fails the task and
    says why.
  - The verdict is data. A level that breaches its thresholds returns C(qts_stress_level)
    with verdict C(FAIL) without failing the task; the stress role shows the breach and
    decides whether the host goes on.
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.action
  - qts.observer.measure.level
  - qts.observer.measure.observer_files
  - qts.observer.observer_interface
attributes:
  action:
    support: full
    details: The loop and the judgment run on the controller; the load, each poll and the measure run on the host.
  check_mode:
    support: none
    details: Skipped in check mode (no snapshot is sent).
  diff_mode:
    support: none
options:
  level:
    description: Level number (from 1); part of every run_id and of the seed.
    type: int
    required: true
  rate:
    description: Offered rate, snapshots per second.
    type: float
    required: true
  duration_s:
    description: Seconds of load, O(warmup_s) included.
    type: float
    required: true
  warmup_s:
    description: Seconds at the start of the load left out of the measure (a capacity step's warm-up, when M(qts.observer.stress_capacity) runs one).
    type: float
    default: 0.0
  start_at:
    description: Epoch seconds at which the load starts sending (every host of a level starts together).
    type: float
    required: true
  run_id_prefix:
    description: Prefix of the level's run_ids (C(stress_<run_tag>L<level>_)).
    type: str
    required: true
  ledger:
    description: File on the host that receives a copy of every line sent.
    type: path
    required: true
  progress_file:
    description: The level's progress file on the host.
    type: path
    required: true
  sustained_window_s:
    description: Rolling window of the sustained CPU and memory figures.
    type: float
    default: 10.0
  thresholds:
    description:
      - The level's thresholds (C(min_throughput), C(max_latency_ms), C(max_cpu_pct),
        C(max_memory_pct)); the level is judged against them.
    type: dict
    required: true
  timeout_s:
    description: Time limit of the load's async job, and of following it.
    type: float
    required: true
"""

EXAMPLES = r"""
- name: Level 1
  qts.observer.stress_level:
    level: 1
    rate: 5
    duration_s: 180
    start_at: "{{ __stress_level_start_at }}"
    run_id_prefix: stress_ab12L1_
    pipe: /run/qts_observer/input.fifo
    pidfile: /run/qts_observer/observer.pid
    ledger: /var/tmp/qts_stress/L1.sent.jsonl
    progress_file: /var/tmp/qts_stress/L1.progress.json
    output_dir: /opt/qts_observer/config/observer
    log_file: /var/log/qts_observer/observer.log
    metrics_file: /opt/qts_observer/config/observer/metrics.jsonl
    monitor_csv: /var/lib/qts_monitor/system_monitor.csv
    thresholds: {min_throughput: 4.8, max_latency_ms: 50, max_cpu_pct: 40, max_memory_pct: 60}
    timeout_s: 400
  register: __stress_level_result
"""

RETURN = r"""
msg:
  description: One line naming the level's verdict and every breach or unmeasured criterion.
  returned: always
  type: str
  sample: "level 1 (5/s) FAIL: p99 processing latency 61.200 ms not under 50 ms"
passed:
  description: Whether the level's verdict is C(PASS) (what a task tests, rather than the verdict's word).
  returned: when the level was measured
  type: bool
  sample: true
qts_stress_level:
  description: >-
    The level's figures (those of M(qts.observer.stress_measure), with the load's send
    lateness, achieved rate and Observer PID) with its judgment: C(level), C(thresholds),
    C(verdict) (C(PASS), C(FAIL) or C(NOT MEASURED)), C(breaches) (C(criterion),
    C(measured), C(limit), C(message)) and C(not_measured) (C(criterion), C(reason)).
  returned: when the level was measured
  type: dict
  sample: {level: 1, rate: 5.0, sent: 900, written: 900, verdict: PASS, breaches: [], not_measured: []}
qts_stress_metrics:
  description: The figures of M(qts.observer.stress_measure), as it returned them.
  returned: when the level was measured
  type: dict
load:
  description: The load job's result (that of M(qts.observer.snapshot_load)).
  returned: when the load ended
  type: dict
  sample: {sent: 900, achieved_rate: 5.0, failure: null, started_at: 1764950000.0, finished_at: 1764950180.0}
warnings_seen:
  description: Every warning of the level, once each, with the level and its time.
  returned: always
  type: list
  elements: dict
  sample: [{level: 2, kind: warning, message: "CPU sustained 72.0 % (early warning 70-80 %)", elapsed_s: 55.0}]
"""
