# Copyright: (c) 2026, QTS
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback plugin: the slowest tasks of a playbook run, to keep provisioning and Molecule fast."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: task_timer
type: aggregate
short_description: Print the slowest tasks at the end of a playbook run
version_added: "0.1.0"
description:
  - Measures the wall-clock time of every task (all hosts and loop items together) and prints
    the slowest ones, with the total, when the playbook ends.
  - Enable it with C(ANSIBLE_CALLBACKS_ENABLED=qts.observer.task_timer).
author:
  - QTS (@qts)
requirements:
  - enable in configuration (C(callbacks_enabled))
options:
  top:
    description: How many tasks to list (0 lists every task).
    type: int
    default: 15
    env:
      - name: QTS_TASK_TIMER_TOP
    ini:
      - section: callback_task_timer
        key: top
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = qts.observer.task_timer
# [callback_task_timer]
# top = 10
"""

import time
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Times each task from its start to the start of the next one (or the end of the play)."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "qts.observer.task_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._durations: dict[str, float] = {}
        self._current: tuple[str, float] | None = None
        self._started = time.monotonic()

    def _close_current(self) -> None:
        if self._current is not None:
            name, started = self._current
            self._durations[name] = self._durations.get(name, 0.0) + time.monotonic() - started
            self._current = None

    def _open(self, task: Any) -> None:
        self._close_current()
        self._current = (task.get_name(), time.monotonic())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._open(task)

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._open(task)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._close_current()

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._close_current()
        total = time.monotonic() - self._started
        top = self.get_option("top")
        ranked = sorted(self._durations.items(), key=lambda item: item[1], reverse=True)
        shown = ranked if top == 0 else ranked[:top]
        self._display.banner("TASK TIMES")
        for name, seconds in shown:
            self._display.display(f"{seconds:8.2f} s  {name}")
        self._display.display(f"{total:8.2f} s  total")
