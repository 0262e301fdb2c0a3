#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: report a running level's progress and early warnings."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_progress
short_description: Report a running stress level's progress and the spec's early warnings
version_added: "1.0.0"
description:
  - Reads the progress file of M(qts.observer.snapshot_load), the Observer's C(metrics.jsonl)
    and the monitor's CSV and returns C(qts_stress_progress) (elapsed, sent, written, p99
    latency, sustained CPU and memory, early warnings, done).
  - Meant to be retried with C(until) every few seconds while the level runs; the
    C(qts.observer.stress_report) callback prints each host's progress as it arrives.
author:
  - qts.observer contributors
attributes:
  check_mode:
    support: full
    details: Reads only.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  progress_file:
    description: The level's progress file.
    type: path
    required: true
  metrics_file:
    description: The Observer's C(metrics.jsonl).
    type: path
    required: true
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
"""

EXAMPLES = r"""
- name: Follow level 1
  qts.observer.stress_progress:
    progress_file: /var/lib/qts_observer/stress/L1.progress.json
    metrics_file: /opt/qts_observer/config/observer/metrics.jsonl
    monitor_csv: /var/log/qts_monitor/monitor.csv
    since: "{{ __stress_level_start }}"
  register: __stress_progress
  until: __stress_progress.qts_stress_progress.done
  retries: 60
  delay: 5
"""

RETURN = r"""
qts_stress_progress:
  description: level, rate, elapsed_s, duration_s, sent, planned, written, p99_ms, cpu_pct, memory_pct, warnings, done, failure.
  returned: always
  type: dict
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.progress import level_progress


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "progress_file": {"type": "path", "required": True},
            "metrics_file": {"type": "path", "required": True},
            "monitor_csv": {"type": "path", "required": True},
            "since": {"type": "float", "required": True},
            "level": {"type": "int", "default": 1},
            "rate": {"type": "float"},
            "duration_s": {"type": "float"},
            "sustained_window_s": {"type": "float", "default": 10.0},
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
    )
    progress.update(level=params["level"], rate=params["rate"], duration_s=params["duration_s"])
    module.exit_json(changed=False, qts_stress_progress=progress)


if __name__ == "__main__":
    main()
