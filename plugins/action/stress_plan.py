# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: check the stress run's variables and plan it, on the controller, in its own process.

Planning is pure computation on the run's variables (``plugin_utils/plan.py``) and one folder
on the controller, in the controller's process (``plugin_utils/in_process.py``). The options
and the result are documented in ``plugins/modules/stress_plan.py``.
"""

from __future__ import annotations

import os

from ansible_collections.qts.observer.plugins.plugin_utils.in_process import InProcessAction
from ansible_collections.qts.observer.plugins.plugin_utils.plan import CALLBACK, plan_run

ARGUMENT_SPEC: dict[str, dict] = {
    "profile": {"type": "str", "default": "full"},
    "levels": {"type": "raw", "default": []},
    "timings": {"type": "dict", "default": {}},
    "limits": {"type": "dict", "default": {}},
    "seed": {"type": "int", "default": 0},
    "artifacts_dir": {"type": "path", "default": "artifacts"},
    "run_id": {"type": "str"},
    "hosts": {"type": "list", "elements": "str", "default": []},
    "settings": {"type": "dict", "default": {}},
    "forks": {"type": "int"},
    "callbacks_enabled": {"type": "list", "elements": "str"},
    "interface": {"type": "dict"},
    "capacity": {"type": "raw", "default": {}},
    "faults": {"type": "raw", "default": []},
    "trends": {"type": "raw", "default": {}},
}


class ActionModule(InProcessAction):
    """Plan the run, or name every problem that refuses it."""

    ARGUMENT_SPEC = ARGUMENT_SPEC

    def compute(self, args: dict) -> dict:
        plan, errors = plan_run(args)
        check_mode = bool(self._task.check_mode)
        if not check_mode:
            os.makedirs(plan["artifacts_dir"], mode=0o755, exist_ok=True)
        computed = {
            "changed": not check_mode,
            "qts_stress_run": plan,
            "errors": errors,
            # A refusal is data for the report, not a failure of this task (whose result
            # would then be printed whole): the role shows the errors and ends the play.
            "msg": ("stress run refused: " + "; ".join(errors))
            if errors
            else "run %s planned" % plan["run_id"],
        }
        enabled = args["callbacks_enabled"]
        if enabled is not None and CALLBACK not in enabled:
            computed["warnings"] = [
                "per-level metric lines and live output in CI logs need the callback: add "
                "'callbacks_enabled = %s' under [defaults] in ansible.cfg (report.json, "
                "junit.xml and the verdict are written without it)" % CALLBACK
            ]
        return computed
