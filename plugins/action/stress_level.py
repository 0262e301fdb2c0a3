# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: one level on one host: load, progress, measure, verdict.

``LevelAction.run_level`` drives a level on the host from the controller: it starts
M(qts.observer.snapshot_load) there as an async job, follows it with
M(qts.observer.stress_progress) (one ``[progress]`` line per poll, each warning once; the same
poll reads the load's job file, so no ``async_status`` round trips) and measures it with
M(qts.observer.stress_measure). Only those modules run on the host. This action judges the
level with the gate (``module_utils/gate.py``) here: the judgment is pure computation, and a
module run on the host for it would cost more than the judgment itself. The capacity search's
action (``stress_capacity``) runs its steps with the same ``LevelAction``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible_collections.qts.observer.plugins.module_utils.faults import (
    RESTARTING,
    for_host,
    outages,
)
from ansible_collections.qts.observer.plugins.module_utils.gate import (
    GateInputError,
    judged_level,
)
from ansible_collections.qts.observer.plugins.module_utils.verdicts import passed

display = Display()

LOAD_MODULE = "qts.observer.snapshot_load"
FAULT_MODULE = "qts.observer.stress_fault"
PROGRESS_MODULE = "qts.observer.stress_progress"
MEASURE_MODULE = "qts.observer.stress_measure"
# After the load says it is done, how long its async job may take to write its result.
COLLECT_TIMEOUT_S = 30.0
COLLECT_POLL_S = 0.5
# A poll due within the level's last half interval is made this long after the level's end
# instead: the load has sent its last snapshot then (its last send is due before the end) and
# its job has written its result, so that poll says "done" and the level is measured at once.
END_POLL_DELAY_S = 1.0
# While the load waits for the level's last records to be visible, polls come this often.
DRAIN_POLL_S = 1.0

# The options of one level on a host, without its judgment (the actions add theirs).
LEVEL_OPTIONS: dict[str, dict] = {
    "level": {"type": "int", "required": True},
    "rate": {"type": "float", "required": True},
    "duration_s": {"type": "float", "required": True},
    "warmup_s": {"type": "float", "default": 0.0},
    "start_at": {"type": "float", "required": True},
    "seed": {"type": "int", "default": 0},
    "run_tag": {"type": "str", "default": ""},
    "run_id_prefix": {"type": "str", "required": True},
    "pipe": {"type": "path", "required": True},
    "pidfile": {"type": "path", "required": True},
    "ledger": {"type": "path", "required": True},
    "progress_file": {"type": "path", "required": True},
    "output_dir": {"type": "path", "required": True},
    "log_file": {"type": "path", "required": True},
    "metrics_file": {"type": "str", "default": ""},
    "interface": {"type": "dict"},
    "monitor_csv": {"type": "path", "required": True},
    "sustained_window_s": {"type": "float", "default": 10.0},
    "settle_s": {"type": "float", "default": 10.0},
    "limits": {"type": "dict", "default": {}},
    "interval_s": {"type": "float", "default": 5.0},
    "timeout_s": {"type": "float", "required": True},
    "shape": {"type": "dict"},
    # Follow the records files while the level runs: when each record became visible.
    "follow_records": {"type": "bool", "default": True},
    # The level's faults (faults.py, as planned: the action keeps this host's) and where the
    # host keeps those applied and not yet reverted.
    "faults": {"type": "list", "elements": "dict", "default": []},
    "fault_state_file": {"type": "path", "default": "/run/qts_observer/stress.faults.json"},
    # The Observer's stress configuration: a kill's loss window is read from it.
    "config_file": {"type": "path"},
    # The filesystems a disk_full fault may fill (the output folder's must be one).
    "expendable": {"type": "list", "elements": "path", "default": []},
    # The level's trend settings (trends.py, as planned), or none: no trend judged.
    "trends": {"type": "dict"},
    # A file on the controller whose appearance ends the running level early (what was sent
    # until then is measured and judged); a level it is there before does not start.
    "stop_file": {"type": "path"},
}


def _figure(value: Any, pattern: str) -> str:
    """A measured figure, or "-" when it is not measured yet (never a made-up 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return pattern % value
    return "-"


def progress_line(host: str, progress: dict) -> str:
    head = "[progress] %s L%s %s/s" % (
        host,
        progress.get("level"),
        _figure(progress.get("rate"), "%g"),
    )
    if not progress.get("started"):
        return head + " waiting for the level to start"
    line = "%s %ss/%ss sent %s/%s written %s p99 %s ms cpu %s %% mem %s %%" % (
        head,
        _figure(progress.get("elapsed_s"), "%.0f"),
        _figure(progress.get("duration_s"), "%.0f"),
        _figure(progress.get("sent"), "%d"),
        _figure(progress.get("planned"), "%d"),
        _figure(progress.get("written"), "%d"),
        _figure(progress.get("p99_ms"), "%.1f"),
        _figure(progress.get("cpu_pct"), "%.1f"),
        _figure(progress.get("memory_pct"), "%.1f"),
    )
    left = _time_left(progress.get("elapsed_s"), progress.get("duration_s"))
    if left and not progress.get("done") and not progress.get("draining"):
        line += " " + left
    if progress.get("done"):
        return line + " done"
    return line + " draining" if progress.get("draining") else line


# A level at least this long (a soak) says how long it has left in each progress line.
TIME_LEFT_FROM_S = 600.0


def _time_left(elapsed: Any, duration: Any) -> str:
    """``3h05m left`` of a long level ("" for a short one, or before it is known)."""
    figures = (elapsed, duration)
    if not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in figures):
        return ""
    if duration < TIME_LEFT_FROM_S:
        return ""
    minutes = max(math.ceil((duration - elapsed) / 60.0), 0)
    return "%dh%02dm left" % divmod(minutes, 60)


def until_next_poll(now: float, interval_s: float, start_at: float, level_end: float) -> float:
    """Seconds until the next poll. Before the level, one interval (each poll says it waits);
    during it, on the level's own clock (every interval after its start), except that a poll
    due in its last half interval waits for its end: that line would only say the level is
    nearly done, and the one after it would come up to an interval late. A level shorter than
    an interval and a half is polled once, and every level is measured as soon as it ends."""
    if now + interval_s < start_at or now >= level_end + END_POLL_DELAY_S:
        due = now + interval_s
    else:
        due = start_at + interval_s * max(math.floor((now - start_at) / interval_s) + 1, 1)
        if due >= level_end - interval_s / 2:
            due = level_end + END_POLL_DELAY_S
    return max(due - now, 0.0)


def _wait_for_next_poll(args: dict) -> None:
    level_end = args["start_at"] + args["duration_s"]
    time.sleep(until_next_poll(time.time(), args["interval_s"], args["start_at"], level_end))


def _job_reason(job: dict) -> str:
    """Why a load job ended without its level being done."""
    return str(job.get("msg") or job.get("failure") or job.get("module_stderr") or "no reason")[
        :2000
    ]


class Warnings:
    """Each condition of a level is news once: polls repeat every few seconds."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.seen: set[str] = set()
        self.items: list[dict] = []

    def note(self, progress: dict) -> None:
        notes = [("warning", str(w)) for w in progress.get("warnings") or []]
        if progress.get("failure"):
            notes.append(("failure", str(progress["failure"])))
        for kind, text in notes:
            if kind + text in self.seen:
                continue
            self.seen.add(kind + text)
            self.items.append(
                {
                    "level": progress.get("level"),
                    "kind": kind,
                    "message": text,
                    "elapsed_s": progress.get("elapsed_s"),
                }
            )
            display.display("[%s] %s L%s: %s" % (kind, self.host, progress.get("level"), text))


@dataclass
class LevelRun:
    """What one level on a host gave: the load's outcome, the measure's figures (the
    Observer's, with the generator's own lateness, rate and CPU beside them) and the warnings
    seen; or why it could not be measured (``failure``, with the module result that says
    more in ``failed_result``)."""

    load: dict = field(default_factory=dict)
    measured: dict = field(default_factory=dict)
    # The fault job's record of each fault on this host (applied, ended, back; or why not).
    faults: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    failure: str = ""
    failed_result: dict = field(default_factory=dict)


class LevelAction(ActionBase):
    """An action that runs levels on its host; ``run_level`` runs one."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def begin(
        self, tmp: str | None, task_vars: dict | None, argument_spec: dict
    ) -> tuple[dict, dict | None]:
        """The action's result so far and its validated options; no options in check mode (the
        result says it was skipped: no load is sent, nothing is measured)."""
        result = super().run(tmp, task_vars)
        _unused, args = self.validate_argument_spec(argument_spec=argument_spec)
        if self._task.check_mode:
            result.update(skipped=True, msg="check mode: no load sent, nothing measured")
            return result, None
        return result, args

    def run_level(self, args: dict, task_vars: dict) -> LevelRun:
        """Run one level (``args``: the LEVEL_OPTIONS) on the host, to its measure."""
        if args["interval_s"] <= 0:
            raise AnsibleActionFail(
                "interval_s must be greater than 0, not %s" % args["interval_s"]
            )
        host = task_vars.get("inventory_hostname", "?")
        if args["stop_file"] and os.path.exists(args["stop_file"]):
            return LevelRun(failure="level %s not run: the run was stopped early (%s)"
                            % (args["level"], args["stop_file"]))  # fmt: skip
        faults = for_host(args["faults"], host)
        fault_job = (
            self._start_async(FAULT_MODULE, _fault_args(args, faults), args, task_vars)
            if faults
            else None
        )
        try:
            job = self._start_load(args, task_vars, faults)
            warnings = Warnings(host)
            load, failure = self._follow(args, job, warnings, task_vars)
        finally:
            # Its faults are over by the level's end; one still waiting reverts at once then.
            applied = self._fault_records(args, fault_job, task_vars) if fault_job else []
        for record in applied:
            display.display("[fault] %s L%s: %s" % (host, args["level"], _fault_line(record)))
        if failure:
            return LevelRun(load=load, warnings=warnings.items, failure=failure, faults=applied)
        measured = self._measure(args, load, task_vars, _timelines(faults, applied, load))
        if measured.get("failed"):
            return LevelRun(
                load=load,
                warnings=warnings.items,
                failure=str(measured.get("msg") or "the measure failed"),
                failed_result=measured,
            )
        return LevelRun(load=load, measured=measured["qts_stress_metrics"], warnings=warnings.items,
                        faults=applied)  # fmt: skip

    def _start_async(self, module: str, module_args: dict, args: dict, task_vars: dict) -> dict:
        """Start ``module`` on the host as an async job, limited to the level's timeout."""
        # The async wrapper takes its time limit from the task; this task is not async itself.
        self._task.async_val = int(args["timeout_s"])
        try:
            started = self._execute_module(
                module_name=module, module_args=module_args, task_vars=task_vars, wrap_async=True
            )
        finally:
            self._task.async_val = 0
        if started.get("failed") or not started.get("results_file"):
            raise AnsibleActionFail(
                "level %s: %s did not start: %s"
                % (args["level"], module, started.get("msg") or "no job file"),
                result=started,
            )
        return started

    def _fault_records(self, args: dict, job: dict, task_vars: dict) -> list[dict]:
        """The fault job's records, once it has ended (its last revert done)."""
        give_up = (
            time.monotonic()
            + COLLECT_TIMEOUT_S
            + max((f["back_within_s"] for f in args["faults"]), default=0.0)
        )
        while True:
            status = self._execute_module(
                module_name="ansible.builtin.async_status",
                module_args={"jid": job["ansible_job_id"], "mode": "status",
                             "_async_dir": os.path.dirname(job["results_file"])},
                task_vars=task_vars,
            )  # fmt: skip
            if status.get("finished"):
                break
            if time.monotonic() >= give_up:
                raise AnsibleActionFail(
                    "level %s: the fault job did not end in time" % args["level"]
                )
            time.sleep(COLLECT_POLL_S)
        if status.get("failed") and not status.get("faults"):
            raise AnsibleActionFail(
                "level %s: the faults could not be applied: %s"
                % (args["level"], status.get("msg") or "no reason"), result=status,
            )  # fmt: skip
        return status.get("faults") or []

    def _start_load(self, args: dict, task_vars: dict, faults: list[dict]) -> dict:
        """Start the level's load as an async job; its job file is read by the polls."""
        load_args = {
            "pipe": args["pipe"],
            "pidfile": args["pidfile"],
            "rate": args["rate"],
            "duration_s": args["duration_s"],
            "level": args["level"],
            "seed": args["seed"],
            "run_tag": args["run_tag"],
            "start_at": args["start_at"],
            "ledger": args["ledger"],
            "progress_file": args["progress_file"],
            "shape": args["shape"],
        }
        if args["follow_records"]:
            load_args.update(
                output_dir=args["output_dir"],
                record_files=(args["interface"] or {}).get("record_files"),
                settle_s=args["settle_s"],
            )
        load_args["outages"] = outages(faults)
        return self._start_async(LOAD_MODULE, load_args, args, task_vars)

    def _poll(self, args: dict, job: dict, task_vars: dict) -> dict:
        polled = self._execute_module(
            module_name=PROGRESS_MODULE,
            module_args={
                "progress_file": args["progress_file"],
                "metrics_file": args["metrics_file"],
                "log_file": args["log_file"],
                "run_id_prefix": args["run_id_prefix"],
                "interface": args["interface"],
                "monitor_csv": args["monitor_csv"],
                "since": args["start_at"],
                "level": args["level"],
                "rate": args["rate"],
                "duration_s": args["duration_s"],
                "sustained_window_s": args["sustained_window_s"],
                "limits": args["limits"],
                "job_file": job["results_file"],
            },
            task_vars=task_vars,
        )
        if polled.get("failed"):
            raise AnsibleActionFail(
                "level %s: the progress could not be read: %s"
                % (args["level"], polled.get("msg") or "no reason"),
                result=polled,
            )
        return polled

    def _follow(
        self, args: dict, job: dict, warnings: Warnings, task_vars: dict
    ) -> tuple[dict, str]:
        """Poll until the load is done and its job has ended: (the load's result, failure)."""
        level = args["level"]
        deadline = time.monotonic() + args["timeout_s"]
        if time.time() < args["start_at"]:
            # Before the agreed start the host has nothing to tell: the line is the same
            # without a module run to read it.
            display.display(progress_line(warnings.host, {"level": level, "rate": args["rate"]}))
            _wait_for_next_poll(args)
        stopping = False
        if args["duration_s"] >= TIME_LEFT_FROM_S and args["stop_file"]:
            display.display("[progress] %s L%s: to end it early and judge what ran: touch %s"
                            % (warnings.host, level, args["stop_file"]))  # fmt: skip
        while True:
            if not stopping and args["stop_file"] and os.path.exists(args["stop_file"]):
                stopping = self._ask_to_stop(args, task_vars)
            polled = self._poll(args, job, task_vars)
            progress, ended = polled["qts_stress_progress"], polled["job"]
            display.display(progress_line(warnings.host, progress))
            warnings.note(progress)
            if progress.get("done"):
                break
            if ended["finished"]:
                # A running load rewrites its progress every second: a job that ended
                # without saying done died without a word. Its result says why.
                return ended["result"] or {}, "level %s: the load ended without finishing: %s" % (
                    level,
                    _job_reason(ended["result"] or {}),
                )
            if time.monotonic() >= deadline:
                return (
                    {},
                    "level %s: the load ended without finishing: it did not end in time" % level,
                )
            if progress.get("draining"):
                # Everything is sent and the last records are awaited: they come within the
                # Observer's flush, not an interval later.
                time.sleep(DRAIN_POLL_S)
                continue
            _wait_for_next_poll(args)
        load = self._collect(args, job, ended, task_vars) or progress.get("load") or {}
        if load.get("failed") and not load.get("failure"):
            # Not a crash of the Observer (that is a measured outcome): the load itself failed.
            return load, "level %s: the load failed: %s" % (
                level,
                load.get("msg") or load.get("error") or "no reason",
            )
        return load, ""

    def _ask_to_stop(self, args: dict, task_vars: dict) -> bool:
        """Tell the host's load to end the level now (``<ledger>.stop``): it stops within a
        second, and what it sent is measured and judged."""
        asked = self._execute_module(
            module_name="ansible.builtin.file",
            module_args={"path": args["ledger"] + ".stop", "state": "touch", "mode": "0600"},
            task_vars=task_vars,
        )
        if asked.get("failed"):
            raise AnsibleActionFail("level %s: could not ask the load to stop: %s"
                                    % (args["level"], asked.get("msg")), result=asked)  # fmt: skip
        display.display("[progress] %s L%s: stopping early (%s is there)" % (
            task_vars.get("inventory_hostname", "?"), args["level"], args["stop_file"]))  # fmt: skip
        return True

    def _collect(self, args: dict, job: dict, ended: dict, task_vars: dict) -> dict | None:
        """The load job's own result, once it has written it; None if it never came."""
        give_up = time.monotonic() + COLLECT_TIMEOUT_S
        while not ended["finished"]:
            if time.monotonic() >= give_up:
                return None
            time.sleep(COLLECT_POLL_S)
            ended = self._poll(args, job, task_vars)["job"]
        return {k: v for k, v in (ended["result"] or {}).items() if not k.startswith("_ansible")}

    def _measure(self, args: dict, load: dict, task_vars: dict, faults: list[dict]) -> dict:
        failure = load.get("failure") or ""
        start = load.get("started_at") or args["start_at"]
        duration = ran_for(args, load)
        return self._execute_module(
            module_name=MEASURE_MODULE,
            module_args={
                "start": float(start) + args["warmup_s"],
                "end": load.get("finished_at") or time.time(),
                "ledger": args["ledger"],
                "rate": args["rate"],
                "duration_s": duration,
                "warmup_s": args["warmup_s"],
                "run_id_prefix": args["run_id_prefix"],
                "output_dir": args["output_dir"],
                "log_file": args["log_file"],
                "monitor_csv": args["monitor_csv"],
                "sustained_window_s": args["sustained_window_s"],
                "settle_s": 0.0 if failure else args["settle_s"],
                "failure": failure,
                "interface": args["interface"],
                "faults": faults,
                "late_after_ms": (args.get("thresholds") or {}).get("max_latency_ms") or 0.0,
                "trends": {key: args["trends"][key] for key in ("window_s", "warmup_s")}
                if args["trends"]
                else None,
                "config_file": args["config_file"],
            },
            task_vars=task_vars,
        )


def ran_for(args: dict, load: dict) -> float:
    """The level's length: its planned one, or until it was stopped early."""
    stopped = load.get("stopped_early_s")
    return min(float(stopped), args["duration_s"]) if stopped else args["duration_s"]


def _fault_args(args: dict, faults: list[dict]) -> dict:
    return {
        "faults": faults,
        "start_at": args["start_at"],
        "pidfile": args["pidfile"],
        "pipe": args["pipe"],
        "state_file": args["fault_state_file"],
        "progress_file": args["progress_file"],
        "config_file": args["config_file"],
        "output_dir": args["output_dir"],
        "expendable": args["expendable"],
    }


def _timelines(faults: list[dict], records: list[dict], load: dict) -> list[dict]:
    """Each fault with when it was applied, ended and (a kill, a restart) the Observer back,
    in seconds from the level's start (the load's first send), for the measure."""
    start = load.get("started_at") or 0.0
    by_number = {record["fault"]: record for record in records}
    timed = []
    for fault in faults:
        record = by_number.get(fault["fault"]) or {}
        offsets = {
            key + "_s": (round(record[key + "_at"] - start, 3) if record.get(key + "_at") else None)
            for key in ("applied", "ended", "back")
        }
        # A kill or restart's fault ends when the Observer is back.
        if fault["type"] in RESTARTING:
            offsets["ended_s"] = offsets["back_s"]
        timed.append(dict(fault, applied_s=offsets["applied_s"], ended_s=offsets["ended_s"],
                          back_at_s=offsets["back_s"], error=record.get("error"),
                          loss_window=record.get("loss_window")))  # fmt: skip
    return timed


def _fault_line(record: dict) -> str:
    if record.get("error"):
        return "%s: %s" % (record["name"], record["error"])
    line = "%s applied" % record["name"]
    if record.get("back_at"):
        line += ", Observer back after %.2f s (pid %s)" % (
            record["back_at"] - record["applied_at"],
            record.get("pid_after"),
        )
    elif record.get("ended_at") and record["ended_at"] != record["applied_at"]:
        line += ", reverted after %.2f s" % (record["ended_at"] - record["applied_at"])
    return line


def _offered_rate(args: dict, load: dict) -> float:
    """The level's mean offered rate: its rate, or what its shape's schedule held over its
    length."""
    shape = (args["shape"] or {}).get("type", "constant")
    planned = load.get("planned")
    if shape == "constant" or not planned or args["duration_s"] <= 0:
        return args["rate"]
    return round(planned / args["duration_s"], 3)


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
        load = ran.load
        metrics = dict(
            ran.measured,
            # The generator's own lateness is reported beside the Observer's latency, never
            # mixed in; with the shape it delivered, it tells whether the level was the one
            # meant (gate.generator_bound).
            send_lateness_ms=load.get("lateness_ms") or {},
            achieved_rate=load.get("achieved_rate") or 0.0,
            observer_pid=load.get("observer_pid"),
            shape=args["shape"] or {"type": "constant"},
            offered_rate=_offered_rate(args, load),
            delivery=load.get("delivery") or {},
            # With faults, the level's own freshness is over the snapshots outside their windows.
            freshness=ran.measured.get("freshness_outside_faults") or load.get("freshness"),
            restarts=load.get("restarts") or [],
            blocked_s=load.get("blocked_s", 0.0),
            sending_s=round(load.get("finished_at", 0.0) - load.get("started_at", 0.0), 3),
            duration_s=ran_for(args, load),
            planned_duration_s=args["duration_s"],
            stopped_early_s=load.get("stopped_early_s"),
            trend_settings=args["trends"],
        )
        try:
            level, line = judged_level(args["level"], metrics, args["thresholds"], args["limits"])
        except GateInputError as error:
            raise AnsibleActionFail("level %s: %s" % (args["level"], error)) from error
        for trend in level.get("trends") or []:
            display.display("[trend] %s L%s %s: %s" % (task_vars.get("inventory_hostname", "?"),
                            args["level"], trend["verdict"], trend["message"]))  # fmt: skip
        result.update(
            changed=False,
            load=ran.load,
            qts_stress_metrics=ran.measured,
            msg=line,
            passed=passed(level["verdict"]),
            qts_stress_level=level,
        )
        return result
