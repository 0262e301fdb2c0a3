#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the monitor's figures over a quiet window (the baseline, the recovery)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_window
short_description: Summarise the system monitor's CSV over a window, for the baseline and the recovery
version_added: "0.1.0"
description:
  - Reads the system monitor's CSV on the Observer host and returns the system's and the
    Observer's CPU and memory over a window, without judging them (the
    M(qts.observer.stress_gate) module judges the recovery against the baseline).
  - The window is O(start) to O(end), or the last O(last_s) seconds up to now on the host's
    clock. The stress role measures the baseline over the set-up wait before the first level,
    and the recovery over the second half of the final cooldown.
  - Sustained CPU and memory are the highest mean over any rolling O(sustained_window_s).
  - With O(pidfile), it also returns the PID the Observer's pidfile names at the window's end.
    The stress role compares the recovery's with the PID at the run's start (a restart during
    the run is a process failure), without another module run to read it.
author:
  - QTS (@qts)
options:
  start:
    description: Epoch seconds where the window starts.
    type: float
  end:
    description: Epoch seconds where the window ends.
    type: float
  last_s:
    description: The last O(last_s) seconds up to now on the host's clock, instead of O(start) and O(end).
    type: float
  pidfile:
    description:
      - The Observer's pidfile, read once the window is measured. Not read when omitted.
    type: path
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.read_only
  - qts.observer.measure.monitor
"""

EXAMPLES = r"""
- name: Baseline over the last minute
  qts.observer.stress_window:
    last_s: 60
    monitor_csv: /var/lib/qts_monitor/system_monitor.csv
    sustained_window_s: 10
  register: __stress_baseline
"""

RETURN = r"""
qts_stress_metrics:
  description: The monitor's figures over the window; see the README's definitions.
  returned: always
  type: dict
  sample:
    samples: 60
    cpu_pct: {"sustained": 3.1, "peak": 9.8}
    memory_pct: {"sustained": 40.2, "peak": 40.5}
observer_pid:
  description:
    - The PID in O(pidfile) (0 when it holds no number).
  returned: when O(pidfile) is given and could be read
  type: int
  sample: 4242
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.measure import monitor_window


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "start": {"type": "float"},
            "end": {"type": "float"},
            "last_s": {"type": "float"},
            "monitor_csv": {"type": "path", "required": True},
            "sustained_window_s": {"type": "float", "default": 10.0},
            "pidfile": {"type": "path"},
        },
        required_one_of=[("start", "last_s")],
        required_together=[("start", "end")],
        mutually_exclusive=[("start", "last_s")],
        supports_check_mode=True,
    )
    params = module.params
    start, end = params["start"], params["end"]
    if params["last_s"] is not None:
        if params["last_s"] <= 0:
            module.fail_json(msg="last_s must be greater than 0")
        end = time.time()
        start = end - params["last_s"]
    if end < start:
        module.fail_json(msg="end (%s) is before start (%s)" % (end, start))
    if params["sustained_window_s"] <= 0:
        module.fail_json(msg="sustained_window_s must be greater than 0")
    figures = monitor_window(params["monitor_csv"], start, end, params["sustained_window_s"])
    if params["pidfile"] is None:
        module.exit_json(changed=False, qts_stress_metrics=figures)
    try:
        with open(params["pidfile"], encoding="ascii") as handle:
            observer_pid = _pid_of(handle.read())
    except (OSError, UnicodeDecodeError):
        # Unreadable (gone, another user's, not text): not an error of the window; the caller
        # reads it another way and says what it found.
        module.exit_json(changed=False, qts_stress_metrics=figures)
    module.exit_json(changed=False, qts_stress_metrics=figures, observer_pid=observer_pid)


def _pid_of(text: str) -> int:
    """The number a pidfile holds, read as Jinja's int filter reads it (0 if none)."""
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return 0


if __name__ == "__main__":
    main()
