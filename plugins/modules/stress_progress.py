#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: report a running level's progress and early warnings."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_progress
short_description: Follow a running stress level, one progress line per poll, and collect its load
version_added: "0.1.0"
description:
  - On the host, reads the progress file of M(qts.observer.snapshot_load), the Observer's
    C(metrics.jsonl) and the monitor's CSV and returns C(qts_stress_progress) (elapsed,
    sent, written, p99 latency, sustained CPU and memory, early warnings, done). A figure not
    measured yet is null, never 0.
  - The action plugin of the same name runs this every O(interval_s) until the load is done,
    prints one C([progress]) line per poll and each warning once (no retried task, so no
    C(FAILED - RETRYING) lines), then collects the load job O(job_id) and returns its result
    as C(load).
author:
  - QTS (@qts)
attributes:
  action:
    support: full
    details: The polling loop runs on the controller; each poll runs the module on the host.
  check_mode:
    support: full
    details: Nothing runs in check mode (no level was started).
  diff_mode:
    support: none
options:
  progress_file:
    description: The level's progress file.
    type: path
    required: true
  metrics_file:
    description:
      - The Observer's own metrics file (C(metrics.jsonl)).
      - Empty for an Observer that writes none; its log's metric and dispatch lines are read
        instead (O(log_file), O(run_id_prefix), O(interface)).
    type: path
    default: ""
  log_file:
    description: The Observer's log (read when O(metrics_file) is empty).
    type: path
  run_id_prefix:
    description: Prefix of the level's run_ids, to count its dispatch lines in the log.
    type: str
    default: ""
  monitor_csv:
    description: The monitor's CSV.
    type: path
    required: true
  since:
    description: Epoch seconds when the level was started.
    type: float
    required: true
  level:
    description: Level number, echoed back.
    type: int
    default: 1
  rate:
    description: Offered rate, echoed back.
    type: float
  duration_s:
    description: Planned duration, echoed back.
    type: float
  sustained_window_s:
    description: Rolling window of the sustained CPU and memory figures.
    type: float
    default: 10.0
  limits:
    description: >-
      Run-wide limits that set the warning bands (C(warn_cpu_pct), C(max_cpu_pct),
      C(fail_cpu_pct), the same for memory, C(fail_latency_ms)); default the spec's.
    type: dict
  job_id:
    description: The async job id of the level's M(qts.observer.snapshot_load) (action only).
    type: str
  interval_s:
    description: Seconds between polls (action only).
    type: float
    default: 5.0
  timeout_s:
    description: Give up when the load has not ended after this many seconds (action only).
    type: float
    default: 3600.0
  host_label:
    description: Name printed on the progress lines (action only; default the inventory name).
    type: str
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.action
  - qts.observer.observer_interface
"""

EXAMPLES = r"""
- name: Start level 1 in the background
  qts.observer.snapshot_load:
    pipe: /run/qts_observer/input.fifo
    pidfile: /run/qts_observer/observer.pid
    rate: 5
    duration_s: 180
    ledger: /run/qts_observer/stress/L1.sent.jsonl
    progress_file: /run/qts_observer/stress/L1.progress.json
  async: 400
  poll: 0
  register: __stress_load_job

- name: Follow level 1
  qts.observer.stress_progress:
    progress_file: /run/qts_observer/stress/L1.progress.json
    metrics_file: /opt/qts_observer/config/observer/metrics.jsonl
    monitor_csv: /var/lib/qts_monitor/system_monitor.csv
    since: "{{ __stress_level_start }}"
    job_id: "{{ __stress_load_job.ansible_job_id }}"
    interval_s: 5
    timeout_s: 400
  register: __stress_follow
"""

RETURN = r"""
qts_stress_progress:
  description: What is known of the level at the last poll.
  returned: always
  type: dict
  contains:
    level: {description: Level number., type: int, sample: 1}
    rate: {description: Offered rate., type: float, sample: 5.0}
    started: {description: Whether the load has started., type: bool, sample: true}
    elapsed_s: {description: Seconds since the first send (null before it)., type: float, sample: 12.0}
    sent: {description: Snapshots sent so far., type: int, sample: 60}
    planned: {description: Snapshots the level plans., type: int, sample: 900}
    written: {description: Records the Observer reported written since the level started (null before its first report)., type: int, sample: 58}
    p99_ms: {description: The Observer's last reported p99 processing latency., type: float, sample: 3.2}
    cpu_pct: {description: Sustained system CPU over the last window (null before the first sample)., type: float, sample: 12.5}
    memory_pct: {description: Sustained system memory over the last window., type: float, sample: 40.1}
    warnings: {description: Early warnings and fail signals at this poll., type: list, elements: str, sample: []}
    done: {description: Whether the load has ended., type: bool, sample: true}
    failure: {description: "Why the load ended early, or null.", type: str, sample: null}
warnings_seen:
  description: Every warning of the level, once each, with the level and its time (action).
  returned: success
  type: list
  elements: dict
  sample: [{level: 2, kind: warning, message: "CPU sustained 72.0 % (early warning 70-80 %)", elapsed_s: 55.0}]
load:
  description: The load job's result (that of M(qts.observer.snapshot_load)) (action).
  returned: success
  type: dict
  sample: {sent: 900, achieved_rate: 5.0, failure: null}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.progress import level_progress


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "progress_file": {"type": "path", "required": True},
            "metrics_file": {"type": "path", "default": ""},
            "log_file": {"type": "path"},
            "run_id_prefix": {"type": "str", "default": ""},
            "interface": {"type": "dict"},
            "monitor_csv": {"type": "path", "required": True},
            "since": {"type": "float", "required": True},
            "level": {"type": "int", "default": 1},
            "rate": {"type": "float"},
            "duration_s": {"type": "float"},
            "sustained_window_s": {"type": "float", "default": 10.0},
            "limits": {"type": "dict"},
            # Read by the action plugin on the controller; accepted and unused here.
            "job_id": {"type": "str"},
            "interval_s": {"type": "float", "default": 5.0},
            "timeout_s": {"type": "float", "default": 3600.0},
            "host_label": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    progress = level_progress(
        params["progress_file"],
        params["metrics_file"],
        params["monitor_csv"],
        since=params["since"],
        window_s=params["sustained_window_s"],
        now=time.time(),
        limits=params["limits"],
        interface=params["interface"],
        log_file=params["log_file"],
        run_id_prefix=params["run_id_prefix"],
    )
    progress.update(level=params["level"], rate=params["rate"], duration_s=params["duration_s"])
    module.exit_json(changed=False, qts_stress_progress=progress)


if __name__ == "__main__":
    main()
