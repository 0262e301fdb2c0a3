# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: the capacity search on one host, a step at a time, each step a level.

The search's logic (which rate next, when it ends, its result) is ``module_utils/capacity.py``
and every step is judged by the gate (``module_utils/gate.py``); this loop runs each step as
``stress_level`` runs a level (its ``LevelAction``), shows it in one line and
records it, until the search ends.
"""

from __future__ import annotations

import time
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible_collections.qts.observer.plugins.action.stress_level import (
    LEVEL_OPTIONS,
    LevelAction,
    LevelRun,
    display,
)
from ansible_collections.qts.observer.plugins.module_utils import capacity

# A step's own options, planned by the search; the rest are the level's.
_PER_STEP = {
    "level", "rate", "duration_s", "warmup_s", "start_at", "run_id_prefix", "ledger",
    "progress_file", "sustained_window_s", "timeout_s", "shape", "follow_records",
}  # fmt: skip
ARGUMENT_SPEC: dict[str, dict] = {
    **{name: spec for name, spec in LEVEL_OPTIONS.items() if name not in _PER_STEP},
    "settings": {"type": "dict", "required": True},
    "level_base": {"type": "int", "default": 0},
    "work_dir": {"type": "path", "required": True},
}
# A step beyond the limit leaves a backlog: the measure waits at least this long for it
# (nothing may be lost).
STEP_SETTLE_S = 30.0
# Seconds from a step's planning to its first snapshot.
STEP_START_DELAY_S = 1.0


def step_timeout_s(step: dict) -> float:
    """How long a step may take from its start to its load's end: a slow Observer stretches
    the sending (back-pressure), so three times its length, and the level's margin."""
    return float(int((step["warmup_s"] + step["step_s"]) * 3 + 120))


def _or(value: Any, fallback: str) -> str:
    return fallback if value is None else str(value)


def step_line(host: str, step: dict) -> str:
    """One line per judged step: offered, what broke, and what was measured."""
    latency = step.get("latency_ms")
    return (
        "[capacity step %s] %s %s/s offered: %s | achieved %s/s (lateness p99 %s ms, blocked %s s),"
        " throughput %s/s, p99 %s, CPU %s %% (generator %s %%), memory %s %%,"
        " %s/%s written, %s lost"
        % (
            step["step"], host, step["rate"],
            "sustainable" if step["sustainable"]
            else "NOT sustainable: " + "; ".join(b["message"] for b in step["breaches"]),
            step["achieved_rate"], _or(step["lateness_ms"].get("p99"), "?"), step["blocked_s"],
            step["throughput"],
            "%s ms (from %s)" % (latency["p99"], step["latency_source"]) if latency
            else "not measured",
            _or(step["cpu_pct"].get("sustained"), "not measured"), step["generator_cpu_pct"],
            _or(step["memory_pct"].get("sustained"), "not measured"),
            step["written"], step["sent"], step["lost"],
        )
    )  # fmt: skip


class ActionModule(LevelAction):
    """Search the host's capacity and return the search: its judged steps and its result."""

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result, args = self.begin(tmp, task_vars, ARGUMENT_SPEC)
        if args is None:
            return result
        task_vars = task_vars or {}
        host = task_vars.get("inventory_hostname", "?")
        state = capacity.start(
            args["settings"], args["limits"], args["level_base"], args["run_tag"], time.time()
        )
        while not state["done"]:
            step = state["next"]
            try:
                ran = self.run_level(self._step_args(args, step), task_vars)
                if not ran.failure:
                    state = capacity.record(state, ran.measured, ran.load, time.time())
            except Exception as error:
                # Whatever stopped the step, the steps judged before it still count
                # (integrity, contract): they are returned with the failure.
                reason = str(error) if isinstance(error, AnsibleActionFail) else repr(error)
                ran = LevelRun(failure=reason)
            if ran.failure:
                result.update(
                    failed=True,
                    msg="capacity step %s (%g/s): %s" % (step["step"], step["rate"], ran.failure),
                    qts_stress_capacity=state,
                    load=ran.load,
                )
                return result
            display.display(step_line(host, state["steps"][-1]))
        result.update(changed=False, qts_stress_capacity=state, msg=state["result"]["summary"])
        return result

    @staticmethod
    def _step_args(args: dict, step: dict) -> dict:
        """A step's level options: the search's plan for it, the host's files and settings."""
        files = "%s/C%s" % (args["work_dir"], step["step"])
        return dict(
            args,
            level=step["level"],
            rate=step["rate"],
            duration_s=step["warmup_s"] + step["step_s"],
            warmup_s=step["warmup_s"],
            start_at=time.time() + STEP_START_DELAY_S,
            run_id_prefix=step["run_id_prefix"],
            ledger=files + ".sent.jsonl",
            progress_file=files + ".progress.json",
            # The mean over the measured part: a step is shorter than a level.
            sustained_window_s=step["step_s"],
            settle_s=max(args["settle_s"], STEP_SETTLE_S),
            timeout_s=step_timeout_s(step),
            shape={"type": "poisson"} if args["settings"].get("arrivals") == "poisson" else None,
            # A step's freshness is not judged; its follower would take CPU from the
            # generator and the Observer the search measures.
            follow_records=False,
        )
