# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: judge a host's whole run on the controller, in its own process.

Judging is pure computation on what the host recorded (``gate.judged_run``), in the
controller's process (``plugin_utils/in_process.py``). The options and the result are
documented in ``plugins/modules/stress_gate.py``.
"""

from __future__ import annotations

from ansible_collections.qts.observer.plugins.module_utils.gate import judged_run
from ansible_collections.qts.observer.plugins.module_utils.verdicts import passed
from ansible_collections.qts.observer.plugins.plugin_utils.in_process import InProcessAction

ARGUMENT_SPEC: dict[str, dict] = {
    "limits": {"type": "dict", "default": {}},
    "levels": {"type": "list", "elements": "dict", "required": True},
    "planned_levels": {"type": "int"},
    "baseline": {"type": "dict"},
    "recovery": {"type": "dict"},
    "shutdown": {"type": "dict"},
    "after_stop": {"type": "dict"},
    "start_pid": {"type": "int"},
    "end_pid": {"type": "int"},
    "capacity": {"type": "dict"},
    "min_capacity": {"type": "float", "default": 0.0},
}


class ActionModule(InProcessAction):
    """Judge the run of the task's host against the run-wide criteria."""

    ARGUMENT_SPEC = ARGUMENT_SPEC

    def compute(self, args: dict) -> dict:
        levels = args.pop("levels") or []
        host, line = judged_run(levels, args.pop("planned_levels"), **args)
        return {"changed": False, "msg": line, "passed": passed(host["verdict"]),
                "qts_stress_host": host}  # fmt: skip
