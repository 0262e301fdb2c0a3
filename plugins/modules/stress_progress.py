#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: report a running level's progress and early warnings."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_progress
short_description: Read a running stress level's progress, warnings and load job
version_added: "0.1.0"
description:
  - On the host, reads the progress file of M(qts.observer.snapshot_load), the Observer's
    C(metrics.jsonl) and the monitor's CSV and returns C(qts_stress_progress) (elapsed,
    sent, written, p99 latency, sustained CPU and memory, early warnings, done). A figure not
    measured yet is null, never 0.
  - With O(job_file), also reads the load's async job file and returns C(job); once the job
    has finished, its result is returned and the file removed (what C(async_status) does
    in two calls).
  - M(qts.observer.stress_level) runs this at each poll of a level; it is rarely useful on
    its own.
author:
  - QTS (@qts)
attributes:
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
  job_file:
    description:
      - The async job file of the level's M(qts.observer.snapshot_load) (C(results_file) of
        the task that started it). Read, and removed once the job has finished.
    type: path
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.observer_interface
"""

EXAMPLES = r"""
- name: Read level 1's progress and its load job
  qts.observer.stress_progress:
    progress_file: /run/qts_observer/stress/L1.progress.json
    metrics_file: /opt/qts_observer/config/observer/metrics.jsonl
    monitor_csv: /var/lib/qts_monitor/system_monitor.csv
    since: "{{ __stress_level_start }}"
    job_file: "{{ __stress_load_job.results_file }}"
  register: __stress_poll
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
job:
  description: The load's async job, when O(job_file) is given.
  returned: when job_file is given
  type: dict
  contains:
    finished: {description: Whether the job has ended (its result is then in C(result))., type: bool, sample: true}
    result:
      description: "The job's result (that of M(qts.observer.snapshot_load)), or null while it runs."
      type: dict
      sample: {sent: 900, achieved_rate: 5.0, failure: null}
"""

import json
import os
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
            "job_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    # The job first: a job that has ended has written its last progress before, so a level
    # read as not done after its job ended did end without finishing.
    job = None if params["job_file"] is None else _job(params["job_file"])
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
    if job is None:
        module.exit_json(changed=False, qts_stress_progress=progress)
    module.exit_json(changed=False, qts_stress_progress=progress, job=job)


def _job(path: str) -> dict:
    """The async job's state; its result once it has ended (the file is then removed).

    async_wrapper writes {"started": ...} while the job runs and replaces it (rename) with
    the job's own result when it ends: a result has no "started" key.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {
            "finished": True,
            "result": {"failed": True, "msg": "the load's job file %s is gone" % path},
        }
    except ValueError:
        # Being replaced this instant: still running as far as anyone can tell.
        return {"finished": False, "result": None}
    if isinstance(data, dict) and "started" in data:
        return {"finished": False, "result": None}
    os.unlink(path)
    return {
        "finished": True,
        "result": data if isinstance(data, dict) else {"failed": True, "msg": str(data)},
    }


if __name__ == "__main__":
    main()
