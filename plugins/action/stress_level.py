# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: one level on one host: load, progress, measure, verdict.

The load, the polls and the measure run on the host (``plugin_utils/level_action.py``); the
level is judged here with the gate (``module_utils/gate.py``): the judgment is pure
computation, and a module run on the host for it would cost more than the judgment itself.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.qts.observer.plugins.module_utils.gate import (
    GateInputError,
    judged_level,
)
from ansible_collections.qts.observer.plugins.module_utils.verdicts import passed
from ansible_collections.qts.observer.plugins.plugin_utils.level_action import (
    LEVEL_OPTIONS,
    LevelAction,
)

ARGUMENT_SPEC: dict[str, dict] = {
    **LEVEL_OPTIONS,
    "thresholds": {"type": "dict", "required": True},
}


class ActionModule(LevelAction):
    """Run one level on the host and return its figures and its verdict."""

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result, args = self.begin(tmp, task_vars, ARGUMENT_SPEC)
        if args is None:
            return result
        task_vars = task_vars or {}
        ran = self.run_level(args, task_vars)
        if ran.failed_result:
            return dict(ran.failed_result, warnings_seen=ran.warnings)
        result["warnings_seen"] = ran.warnings
        if ran.failure:
            result.update(failed=True, msg=ran.failure, load=ran.load)
            return result
        metrics = dict(
            ran.measured,
            # The generator's own lateness is reported beside the Observer's latency, never
            # mixed in.
            send_lateness_ms=ran.load.get("lateness_ms") or {},
            achieved_rate=ran.load.get("achieved_rate") or 0.0,
            observer_pid=ran.load.get("observer_pid"),
        )
        try:
            level, line = judged_level(args["level"], metrics, args["thresholds"], args["limits"])
        except GateInputError as error:
            raise AnsibleActionFail("level %s: %s" % (args["level"], error)) from error
        result.update(
            changed=False,
            load=ran.load,
            qts_stress_metrics=ran.measured,
            msg=line,
            passed=passed(level["verdict"]),
            qts_stress_level=level,
        )
        return result
