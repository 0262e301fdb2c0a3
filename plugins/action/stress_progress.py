# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: follow a running level until its load ends, one progress line per poll.

The controller side of M(qts.observer.stress_progress): it runs the module on the host every
``interval_s`` (the module reads the host's progress, metrics and monitor files), prints one
line per poll and each warning once, and when the load is done collects the load job's result
(``async_status``, without printing anything). A retried ``until`` task would print
``FAILED - RETRYING`` at every poll; this prints only what an SRE wants to read, whatever
callbacks are enabled.
"""

from __future__ import annotations

import time
from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

MODULE = "qts.observer.stress_progress"
# Options of the action only; the rest goes to the module on the host.
ACTION_OPTIONS = ("job_id", "interval_s", "timeout_s", "host_label")
# After the load reports done, how long its async job may take to write its result.
COLLECT_TIMEOUT_S = 30.0


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
    return line + " done" if progress.get("done") else line


class ActionModule(ActionBase):
    """Poll the host's progress until the level's load is done, then collect its result."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp: str | None = None, task_vars: dict | None = None) -> dict:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        options = {key: args.pop(key, None) for key in ACTION_OPTIONS}
        if self._task.check_mode:
            result.update(skipped=True, msg="check mode: no load ran, nothing to follow")
            return result
        interval = float(options["interval_s"] or 5.0)
        deadline = time.monotonic() + float(options["timeout_s"] or 3600.0)
        host = options["host_label"] or task_vars.get("inventory_hostname", "?")
        seen: set[str] = set()
        warnings: list[dict] = []
        previous: Any = ()
        while True:
            polled = self._execute_module(module_name=MODULE, module_args=args, task_vars=task_vars)
            if polled.get("failed"):
                return polled
            progress = polled["qts_stress_progress"]
            display.display(progress_line(host, progress))
            self._note_warnings(host, progress, seen, warnings)
            if progress.get("done"):
                break
            # A running load rewrites its progress every second: no change since the last
            # poll means it may have died without a word. Its job then says why.
            stalled = progress.get("elapsed_s") == previous
            previous = progress.get("elapsed_s")
            ended = self._job_end(options["job_id"], task_vars) if stalled else None
            if ended is not None:
                # It may have finished between the poll and the question: look once more.
                again = self._execute_module(
                    module_name=MODULE, module_args=args, task_vars=task_vars
                )
                if (again.get("qts_stress_progress") or {}).get("done"):
                    progress = again["qts_stress_progress"]
                    self._note_warnings(host, progress, seen, warnings)
                    break
            if ended is not None or time.monotonic() >= deadline:
                result.update(
                    failed=True,
                    msg="level %s: the load ended without finishing: %s"
                    % (progress.get("level"), ended or "it did not end in time"),
                    qts_stress_progress=progress,
                    warnings_seen=warnings,
                )
                return result
            time.sleep(interval)
        load = self._collect(options["job_id"], task_vars) or progress.get("load") or {}
        result.update(qts_stress_progress=progress, warnings_seen=warnings, load=load)
        if load.get("failed") and not load.get("failure"):
            # Not a crash of the Observer (that is a measured outcome): the load itself failed.
            result.update(
                failed=True,
                msg="level %s: the load failed: %s"
                % (progress.get("level"), load.get("msg") or load.get("error") or "no reason"),
            )
        return result

    @staticmethod
    def _note_warnings(host: str, progress: dict, seen: set[str], warnings: list[dict]) -> None:
        """Each condition is news once per level: polls repeat every few seconds."""
        notes = [("warning", str(w)) for w in progress.get("warnings") or []]
        if progress.get("failure"):
            notes.append(("failure", str(progress["failure"])))
        for kind, text in notes:
            if kind + text in seen:
                continue
            seen.add(kind + text)
            warnings.append(
                {
                    "level": progress.get("level"),
                    "kind": kind,
                    "message": text,
                    "elapsed_s": progress.get("elapsed_s"),
                }
            )
            display.display("[%s] %s L%s: %s" % (kind, host, progress.get("level"), text))

    def _async_status(self, job_id: str, task_vars: dict, mode: str = "status") -> dict:
        async_dir = self._remote_expand_user(
            self.get_shell_option("async_dir", default="~/.ansible_async")
        )
        return self._execute_module(
            module_name="ansible.legacy.async_status",
            module_args={"jid": job_id, "mode": mode, "_async_dir": async_dir},
            task_vars=task_vars,
        )

    def _collect(self, job_id: str | None, task_vars: dict) -> dict | None:
        """The load job's own result, then its job file removed; None if it never came."""
        if not job_id:
            return None
        deadline = time.monotonic() + COLLECT_TIMEOUT_S
        while True:
            status = self._async_status(job_id, task_vars)
            if status.get("finished"):
                self._async_status(job_id, task_vars, mode="cleanup")
                return {k: v for k, v in status.items() if not k.startswith("_ansible")}
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.5)

    def _job_end(self, job_id: str | None, task_vars: dict) -> str | None:
        """Why the load job ended, if it has; None while it runs."""
        if not job_id:
            return None
        status = self._async_status(job_id, task_vars)
        if not status.get("finished"):
            return None
        return str(
            status.get("msg") or status.get("failure") or status.get("module_stderr") or "no reason"
        )[:2000]
