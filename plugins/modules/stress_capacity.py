#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the stress_capacity action plugin (it drives the host from the controller)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_capacity
short_description: Search the highest rate a host's Observer sustains, a step at a time
version_added: "0.1.0"
description:
  - One call runs the whole capacity search on the host. Each step is a level, run as
    M(qts.observer.stress_level) runs one (the load, a C([progress]) line per poll, the
    measure), numbered after the fixed levels from O(level_base), with its ledger in
    O(work_dir) so that every snapshot of every step is reconciled.
  - The gate (C(plugins/module_utils/gate.py)) judges each step against the search's
    thresholds (C(min_throughput), C(max_latency_ms), C(max_cpu_pct), C(max_memory_pct)) and
    names what limited it; C(plugins/module_utils/capacity.py) plans the next rate (grow,
    then narrow the bracket) and ends the search with its result. One line per step says what
    was offered, what broke and what was measured.
  - A step the load generator could not deliver ends the search as generator-bound, never as
    the Observer's limit. A step that could not run fails the task; the steps before it are
    returned.
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
    details: The search and its judgment run on the controller; each step's load, polls and measure run on the host.
  check_mode:
    support: none
    details: Skipped in check mode (no snapshot is sent).
  diff_mode:
    support: none
options:
  settings:
    description:
      - The search's settings, C(settings) of the plan's C(capacity) from M(qts.observer.stress_plan),
        which are the defaults of C(plugins/module_utils/capacity.py) with the user's C(stress_capacity).
    type: dict
    required: true
  level_base:
    description: The number of the fixed levels; step N is level O(level_base) + N.
    type: int
    default: 0
  work_dir:
    description: The run's folder on the host; step N's ledger is C(CN.sent.jsonl) and its progress C(CN.progress.json) there.
    type: path
    required: true
"""

EXAMPLES = r"""
- name: Search the capacity
  qts.observer.stress_capacity:
    settings: "{{ _stress_plan.capacity.settings }}"
    level_base: 4
    limits: "{{ _stress_plan.limits }}"
    seed: 7
    run_tag: ab12
    work_dir: /var/tmp/qts_stress/20261205T120000Z-ab12
    pipe: /run/qts_observer/input.fifo
    pidfile: /run/qts_observer/observer.pid
    output_dir: /opt/qts_observer/config/observer
    log_file: /var/log/qts_observer/observer.log
    metrics_file: /opt/qts_observer/config/observer/metrics.jsonl
    monitor_csv: /var/lib/qts_monitor/system_monitor.csv
  register: __stress_capacity_search
"""

RETURN = r"""
msg:
  description: How the search ended.
  returned: always
  type: str
  sample: the bracket narrowed to within ±5 %
qts_stress_capacity:
  description:
    - The search with C(settings), C(limits), C(steps) (each judged step's figures, C(breaches)
      in the gate's criteria, C(unmeasured), C(sustainable)), C(done) and, once done,
      C(result) (see the README, section Find the limit).
    - Returned on a failed step too, with the steps judged before it.
  returned: when the search ran
  type: dict
  sample: {done: true, steps: [], result: {highest_sustainable_rate: 2000.0, limited_by: throughput}}
load:
  description: The failed step's load job result (that of M(qts.observer.snapshot_load)).
  returned: when a step could not run
  type: dict
"""
