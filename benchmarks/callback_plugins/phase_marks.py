"""When each phase of a stress run begins, for `make bench-scale` to split its CPU samples.

Enabled only by benchmarks/bench_scale.py (ANSIBLE_CALLBACK_PLUGINS, ANSIBLE_CALLBACKS_ENABLED);
writes [[phase, epoch seconds], ...] to the file named by QTS_PHASE_MARKS when the run ends.
A task's phase is that of the role file it comes from; the shared service plumbing (_service)
and the playbook's own tasks belong to the phase they run in.
"""

from __future__ import annotations

import json
import os
import re
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: phase_marks
type: aggregate
short_description: Mark when each phase of a stress run begins (make bench-scale)
description:
  - Writes the start time of each phase (plan, provision, levels, collect, report) to the file
    named by the QTS_PHASE_MARKS environment variable.
"""

# roles/<role>/<tasks|handlers>/<file>.yml of a task -> its phase (None: the phase it runs in).
_ROLE_PHASE = {"observer": "provision", "monitor": "provision"}
_STRESS_FILE_PHASE = {
    "start": "plan",
    "plan": "plan",
    "main": "levels",
    "prepare": "levels",
    "stop_if_a_host_failed": "levels",
    "level": "levels",
    "capacity": "levels",
    "recovery": "levels",
    "finish": "collect",
    "collect": "collect",
    "report": "report",
}
_ROLE_FILE = re.compile(r"/roles/(?P<role>[^/]+)/(?:tasks|handlers|meta)/(?P<file>[^/]+)\.ya?ml:")


# Role files that other phases use: the stress role stops the Observer with its stop.yml.
_SHARED_FILES = {("observer", "stop")}


def phase_of(path: str) -> str | None:
    """The phase of a task defined at path (file:line), or None when it has none of its own."""
    found = _ROLE_FILE.search(path or "")
    if found is None or (found["role"], found["file"]) in _SHARED_FILES:
        return None
    if found["role"] == "stress":
        return _STRESS_FILE_PHASE.get(found["file"])
    return _ROLE_PHASE.get(found["role"])


class CallbackModule(CallbackBase):
    CALLBACK_NAME = "phase_marks"
    CALLBACK_NEEDS_ENABLED = True
    CALLBACK_TYPE = "aggregate"

    def __init__(self) -> None:
        self._marks: list[list] = []  # [phase, epoch seconds], as each phase begins
        super().__init__()

    def _mark(self, task) -> None:
        phase = phase_of(task.get_path())
        if phase is not None and (not self._marks or self._marks[-1][0] != phase):
            self._marks.append([phase, time.time()])

    def v2_playbook_on_task_start(self, task, is_conditional) -> None:
        self._mark(task)

    def v2_playbook_on_handler_task_start(self, task) -> None:
        self._mark(task)

    def v2_playbook_on_stats(self, stats) -> None:
        path = os.environ.get("QTS_PHASE_MARKS")
        if path:
            with open(path, "w") as handle:
                json.dump(self._marks, handle)
