# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: the run's verdict, report.json and junit.xml, from what every host recorded.

Runs once on the controller after the stress play, whatever happened in it: it reads each
host's outcome (``stress_outcome``, below), builds the report (``plugin_utils/report.py``),
compares each host with its baseline and adds the run to the run history
(``plugin_utils/regression.py``, ``plugin_utils/history.py``), writes report.json, junit.xml
and report.html atomically, then points ``artifacts/latest`` at the run, and prints the table
and the ``STRESS VERDICT`` line. No callback is needed for any of it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Mapping
from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.qts.observer.plugins.module_utils.artifacts import (
    JUNIT_FILE,
    REPORT_FILE,
    new_run_id,
    run_tag,
)
from ansible_collections.qts.observer.plugins.module_utils.verdicts import passed
from ansible_collections.qts.observer.plugins.plugin_utils.history import (
    HISTORY_FILE,
    HistoryError,
    record_run,
    trend,
)
from ansible_collections.qts.observer.plugins.plugin_utils.regression import (
    judge as judge_regressions,
)
from ansible_collections.qts.observer.plugins.plugin_utils.report import (
    build_report,
    controller_identity,
    empty_outcome,
    now_utc,
    summary_lines,
)
from ansible_collections.qts.observer.plugins.plugin_utils.run_files import write_run

display = Display()

# Each host's outcome, as the stress role records it while the run goes on (the README's
# "The host's outcome" documents its keys); the report reads nothing else of a host.
OUTCOME_VARIABLE = "stress_outcome"
PLAN_VARIABLE = "__stress_plan"


def _plain(value: Any) -> Any:
    """Ansible's lazy containers as plain JSON-able data."""
    return json.loads(json.dumps(value, default=str))


def host_outcome(variables: Mapping[str, Any]) -> dict:
    """What one host recorded, in the report's terms: its outcome, and whether it played."""
    recorded = _plain(variables.get(OUTCOME_VARIABLE) or {})
    outcome = {key: recorded.get(key, empty) for key, empty in empty_outcome().items()}
    outcome.update(
        played=bool(recorded),
        levels=recorded.get("levels") or [],
        warnings=recorded.get("warnings") or [],
    )
    return outcome


class ActionModule(ActionBase):
    """Write the run's report and print its verdict."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        _unused, args = self.validate_argument_spec(
            argument_spec={
                "group": {"type": "str", "default": "observers"},
                "artifacts_dir": {"type": "path", "default": "artifacts"},
                "profile": {"type": "str", "default": "full"},
                "seed": {"type": "int", "default": 0},
                "baseline": {"type": "str", "default": "previous"},
                "fail_on_regression": {"type": "bool", "default": False},
            }
        )
        hostvars = task_vars.get("hostvars") or {}
        group_hosts = list((task_vars.get("groups") or {}).get(args["group"]) or [])
        planned = self._find_plan(hostvars, group_hosts)
        run, refused = self._run_of(planned, args, task_vars, group_hosts)
        hosts = list(run.get("hosts") or [])
        outcomes = {name: host_outcome(hostvars[name]) for name in hosts if name in hostvars}
        report = build_report(run, hosts, outcomes, refused=refused)
        report["controller"] = controller_identity()
        if not self._task.check_mode and not refused and hosts:
            self._compare_and_record(report, args)
        for line in summary_lines(report):
            display.display(line)
        written = False
        if not self._task.check_mode:
            written = self._write(report)
        result.update(
            changed=written,
            verdict=report["verdict"],
            passed=passed(report["verdict"]),
            reasons=report["reasons"],
            run_id=report["run_id"],
            hosts={name: entry["verdict"] for name, entry in report["hosts"].items()},
            report_file=os.path.join(report["artifacts_dir"], REPORT_FILE) if written else None,
            junit_file=os.path.join(report["artifacts_dir"], JUNIT_FILE) if written else None,
            msg=summary_lines(report)[-2],
        )
        return result

    @staticmethod
    def _find_plan(hostvars: Mapping[str, Any], hosts: list[str]) -> dict | None:
        """The plan's registered result, from any host of the run (run_once gave it to all)."""
        for name in hosts:
            planned = hostvars[name].get(PLAN_VARIABLE) if name in hostvars else None
            if isinstance(planned, Mapping):
                return _plain(planned)
        return None

    @staticmethod
    def _run_of(
        planned: dict | None, args: dict, task_vars: dict, group_hosts: list[str]
    ) -> tuple[dict, list[str]]:
        """The run to report on, and why it was refused (if it was)."""
        if planned and planned.get("qts_stress_run"):
            return planned["qts_stress_run"], list(planned.get("errors") or [])
        # No plan: the planning task failed outright (a value Ansible could not convert), or
        # the stress play never ran (no host of the group matched the inventory).
        run_id = new_run_id()
        sources = ", ".join(str(s) for s in task_vars.get("ansible_inventory_sources") or [])
        run = {
            "run_id": run_id,
            "run_tag": run_tag(run_id),
            "artifacts_dir": os.path.join(os.path.abspath(args["artifacts_dir"]), run_id),
            "profile": args["profile"],
            "seed": args["seed"],
            "levels": [],
            "hosts": group_hosts if planned else [],
            "started_at": now_utc(),
            "no_hosts": "no host matched: group %r of the inventory (%s) holds no host"
            % (args["group"], sources or "none"),
        }
        refused = [str(planned.get("msg") or "the plan failed")] if planned else []
        return run, refused

    @staticmethod
    def _compare_and_record(report: dict, args: dict) -> None:
        """Compare each host with its baseline, then add the run to the history; a history
        that cannot be used is reported (the run's own verdict stands)."""
        path = os.path.join(os.path.dirname(report["artifacts_dir"]), HISTORY_FILE)
        report["history"] = {"path": path, "baseline": args["baseline"],
                             "fail_on_regression": args["fail_on_regression"]}  # fmt: skip
        try:
            judge_regressions(report, path, args["baseline"], args["fail_on_regression"])
            record_run(path, report, report["controller"]["collection"])
            report["trends"] = {
                host: trend(path, report, host) for host in report.get("hosts") or {}
            }
        except (HistoryError, sqlite3.Error, OSError) as exc:
            report["history"]["problem"] = str(exc)
            display.warning("run history not used: %s" % exc)

    def _write(self, report: dict) -> bool:
        write_run(report, trends=report.pop("trends", {}))
        return True
