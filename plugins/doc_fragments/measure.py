# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that read what the Observer host holds: the monitor's CSV, and
the Observer's records and log."""

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
