# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that read what the Observer host holds (the monitor's CSV, the
Observer's records and log), and of the actions that run levels on it."""

from __future__ import annotations


class ModuleDocFragment:
    # The system monitor's CSV, summarised over a window.
    MONITOR = r"""
options:
  monitor_csv:
    description: The system monitor's CSV.
    type: path
    required: true
  sustained_window_s:
    description: Rolling window that defines a "sustained" CPU or memory figure.
    type: float
    default: 10.0
"""

    # The Observer's records and log.
    OBSERVER_FILES = r"""
options:
  output_dir:
    description: The Observer's output directory (its records, and C(metrics.jsonl) when it writes one).
    type: path
    required: true
  log_file:
    description: The Observer's log file.
    type: path
    required: true
"""

    # What every level on a host needs, a level's (M(qts.observer.stress_level)) or a capacity
    # step's (M(qts.observer.stress_capacity)).
    LEVEL = r"""
options:
  seed:
    description: Seed of the simulation.
    type: int
    default: 0
  run_tag:
    description: Tag of the run, put in every run_id.
    type: str
    default: ""
  pipe:
    description: The Observer's input named pipe.
    type: path
    required: true
  pidfile:
    description: The Observer's pidfile.
    type: path
    required: true
  metrics_file:
    description: The Observer's C(metrics.jsonl); empty for an Observer that writes none.
    type: str
    default: ""
  monitor_csv:
    description: The system monitor's CSV.
    type: path
    required: true
  settle_s:
    description: How long the measure waits for the last records after the load (0 when the Observer died).
    type: float
    default: 10.0
  limits:
    description: The run-wide limits (C(limits) of M(qts.observer.stress_plan)); they set the warning bands and the gate's limits.
    type: dict
    default: {}
  interval_s:
    description: Seconds between polls.
    type: float
    default: 5.0
  shape:
    description: The level's load shape (constant when absent; see the README, "Load shapes").
    type: dict
  follow_records:
    description: Follow the records files while the level runs (when each record became visible).
    type: bool
    default: true
  faults:
    description:
      - The level's planned faults (as M(qts.observer.stress_plan) resolved them); this host's
        are applied by M(qts.observer.stress_fault) beside the load, counted and judged.
    type: list
    elements: dict
    default: []
  fault_state_file:
    description: Where the host keeps the faults applied and not yet reverted.
    type: path
    default: /run/qts_observer/stress.faults.json
  config_file:
    description: >-
      The Observer's stress configuration on the host: a kill's loss window, the records'
      rotation and the buffer's size are read from it.
    type: path
  expendable:
    description: The filesystems a C(disk_full) fault may fill (the output folder's must be one).
    type: list
    elements: path
    default: []
  trends:
    description:
      - The level's trend settings (C(trends) of a level of M(qts.observer.stress_plan)); each
        trend series is measured and judged (README, "Soak"). Unset, no trend is judged.
    type: dict
  stop_file:
    description:
      - A file on the controller whose appearance ends the running level early; what was
        sent until then is measured and judged. A level it is there before does not start.
    type: path
"""
