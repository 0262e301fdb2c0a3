# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback: report a stress run (progress, host x level table, report.json, junit.xml).

The tasks decide PASS/FAIL; this callback only reports what they returned. Ansible gives
callbacks no supported way to fail a play, so nothing here may ever be the gate.
"""

from __future__ import annotations

# Ansible's convention puts DOCUMENTATION before the imports.

DOCUMENTATION = r"""
---
name: stress_report
type: aggregate
short_description: Report a qts.observer stress run (progress, table, report.json, junit.xml)
version_added: "1.0.0"
description:
  - Follows a stress run of C(playbooks/stress.yml) through the results of the collection's
    modules and reports it. It never decides a verdict itself; the tasks decide (a breach
    fails the host's task) and this callback reports what they returned.
  - While a level runs, prints one progress line per host each time the polling task is
    retried (C(qts_stress_progress)), and each early warning once per host, level and text.
  - "At the end of the playbook prints a host x level table, each host's run-wide criteria
    and the line C(STRESS VERDICT: PASS) or C(STRESS VERDICT: FAIL (reasons)), and writes
    C(report.json) and C(junit.xml) into the run's artifacts folder."
  - Stays silent and writes nothing when no task returned C(qts_stress_run) (for example a
    provisioning-only playbook).
  - The overall verdict is PASS only when every host is PASS. A host is PASS only when its
    run-wide verdict (C(qts_stress_host)) is PASS, every level it reported is PASS and every
    planned level was reported. An unreachable host, or one that failed before its final
    verdict, is not PASS.
author:
  - qts.observer contributors
requirements:
  - enable in configuration (C(callbacks_enabled = qts.observer.stress_report))
options:
  artifacts_dir:
    description:
      - Folder that receives O(report_file) and O(junit_file), created when missing.
      - By default the run's own folder (C(artifacts_dir) of C(qts_stress_run), which the
        planning task created); a run without that folder (check mode) then writes nothing.
    type: path
    env:
      - name: QTS_STRESS_ARTIFACTS_DIR
    ini:
      - section: callback_stress_report
        key: artifacts_dir
  show_progress:
    description:
      - Print a progress line for every poll of a running level. Early warnings are printed
        either way, once each.
    type: bool
    default: true
    env:
      - name: QTS_STRESS_SHOW_PROGRESS
    ini:
      - section: callback_stress_report
        key: show_progress
  report_file:
    description: Name of the JSON report, relative to the artifacts folder.
    type: str
    default: report.json
    env:
      - name: QTS_STRESS_REPORT_FILE
    ini:
      - section: callback_stress_report
        key: report_file
  junit_file:
    description: Name of the JUnit XML report, relative to the artifacts folder.
    type: str
    default: junit.xml
    env:
      - name: QTS_STRESS_JUNIT_FILE
    ini:
      - section: callback_stress_report
        key: junit_file
"""

import functools
import json
import os
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

if TYPE_CHECKING:
    from ansible.executor.task_result import CallbackTaskResult

RUN_KEY = "qts_stress_run"
PROGRESS_KEY = "qts_stress_progress"
LEVEL_KEY = "qts_stress_level"
HOST_KEY = "qts_stress_host"

PASSED = "PASS"
FAILED = "FAIL"
UNREACHABLE = "UNREACHABLE"

# One JUnit testcase per level and criterion, so that CI trend views compare like with like
# from run to run, whatever failed.
LEVEL_CRITERIA = ("throughput", "latency", "cpu", "memory", "integrity", "error_rate", "process")
# Breach names of plugins/module_utils/gate.py -> the JUnit criterion they fail.
BREACH_CRITERION = {
    "min_throughput": "throughput",
    "max_latency_ms": "latency",
    "max_cpu_pct": "cpu",
    "max_memory_pct": "memory",
    "integrity_lost": "integrity",
    "integrity_duplicated": "integrity",
    "integrity_modified": "integrity",
    "contract": "integrity",
    "error_rate": "error_rate",
    "process_failure": "process",
}
REASON_MAX_CHARS = 160
# XML 1.0 cannot carry these even escaped; log excerpts in messages may hold them.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Turn any exception of a hook into a warning: a callback crash must not hide the play."""

    @functools.wraps(method)
    def wrapper(self: CallbackModule, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            self._display.warning(
                "qts.observer.stress_report: %s failed (%s: %s); the stress report may be "
                "incomplete" % (method.__name__, type(exc).__name__, exc)
            )

    return wrapper


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _fmt(value: Any, pattern: str = "%.1f") -> str:
    return pattern % value if _is_number(value) else "-"


def _plain(value: Any) -> str:
    """A measured value or limit in a message: numbers short, anything else as text."""
    if _is_number(value):
        return "%g" % value
    if isinstance(value, Mapping):
        return ", ".join("%s %s" % (k, _plain(v)) for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _shorten(text: str, limit: int = REASON_MAX_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _payloads(result: Mapping[str, Any], key: str) -> Iterator[dict]:
    """The key's dicts in a result and, for a looped task, in each item's result.

    Looped tasks are read from their final aggregate result (item hooks are not used), so
    each item counts exactly once.
    """
    if isinstance(result.get(key), dict):
        yield result[key]
    items = result.get("results")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, dict) and isinstance(item.get(key), dict):
                yield item[key]


def _level_number(level: Mapping[str, Any]) -> int | None:
    number = level.get("level")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def _breach_text(breach: Mapping[str, Any]) -> str:
    """`max_latency_ms 61.2 > 50`, for the verdict line."""
    name = breach.get("criterion", "breach")
    measured, limit = breach.get("measured"), breach.get("limit")
    if _is_number(measured) and _is_number(limit):
        return "%s %g %s %g" % (name, measured, "<" if name.startswith("min_") else ">", limit)
    return "%s: %s" % (name, _shorten(_plain(measured), 60))


def _with_figures(text: str, measured: Any, limit: Any) -> str:
    """The text, with the measured value and the limit when there are any."""
    if measured is None and limit is None:
        return text
    return "%s (measured %s, limit %s)" % (text, _plain(measured), _plain(limit))


def _breach_message(breach: Mapping[str, Any]) -> str:
    text = str(breach.get("message") or breach.get("criterion", "breach"))
    return _with_figures(text, breach.get("measured"), breach.get("limit"))


@dataclass
class _Host:
    """What the tasks reported for one host."""

    levels: dict[int, dict] = field(default_factory=dict)
    final: dict | None = None
    unreachable: str | None = None
    failure: str | None = None  # first failed task that was not ignored
    ignored_failure: str | None = None
    warnings: list[dict] = field(default_factory=list)
    in_report: bool = False


@dataclass
class _HostVerdict:
    verdict: str
    message: str | None
    missing_levels: list[int]


class CallbackModule(CallbackBase):
    """Report a stress run from the results of the collection's modules."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "qts.observer.stress_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._run: dict | None = None
        self._hosts: dict[str, _Host] = {}
        self._seen_warnings: set[tuple[str, Any, str]] = set()
        self._artifacts_override: str | None = None
        self._show_progress = True
        self._report_file = "report.json"
        self._junit_file = "junit.xml"

    def set_options(self, task_keys=None, var_options=None, direct=None) -> None:
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._artifacts_override = self.get_option("artifacts_dir") or None
        self._show_progress = bool(self.get_option("show_progress"))
        self._report_file = self.get_option("report_file") or "report.json"
        self._junit_file = self.get_option("junit_file") or "junit.xml"

    # -- collecting -------------------------------------------------------------------------

    def _host(self, name: str) -> _Host:
        return self._hosts.setdefault(name, _Host())

    def _collect(self, result: CallbackTaskResult) -> str:
        """Record the stress payloads of one final task result; return the host's name."""
        name = result.host.get_name()
        data = result.result
        for run in _payloads(data, RUN_KEY):
            self._run = run
        for progress in _payloads(data, PROGRESS_KEY):
            self._progress(name, progress)
        for level in _payloads(data, LEVEL_KEY):
            number = _level_number(level)
            if number is not None:
                self._host(name).levels[number] = level
                self._host(name).in_report = True
        for final in _payloads(data, HOST_KEY):
            self._host(name).final = final
            self._host(name).in_report = True
        return name

    def _progress(self, name: str, progress: Mapping[str, Any]) -> None:
        # The host is under load, so it belongs in the report even if it dies right after.
        host = self._host(name)
        host.in_report = True
        level = progress.get("level")
        if self._show_progress:
            self._display.display(self._progress_line(name, progress))
        notes = [("warning", str(w)) for w in progress.get("warnings") or []]
        if progress.get("failure"):
            notes.append(("failure", str(progress["failure"])))
        for kind, text in notes:
            # Polls repeat every few seconds; a condition is news once per host and level.
            key = (name, level, kind + text)
            if key in self._seen_warnings:
                continue
            self._seen_warnings.add(key)
            host.warnings.append(
                {
                    "level": level,
                    "kind": kind,
                    "message": text,
                    "elapsed_s": progress.get("elapsed_s"),
                }
            )
            self._display.display(
                "[%s] %s L%s: %s" % (kind, name, level, text),
                color=C.COLOR_WARN if kind == "warning" else C.COLOR_ERROR,
            )
        # Display leaves flushing to the system: into a pipe (CI logs) progress would come out
        # in bursts long after the fact. Progress is only worth anything when it is current.
        sys.stdout.flush()

    @staticmethod
    def _progress_line(name: str, p: Mapping[str, Any]) -> str:
        line = (
            "[progress] %s L%s %s/s %ss/%ss sent %s/%s written %s p99 %s ms cpu %s %% mem %s %%"
            % (
                name,
                p.get("level", "?"),
                _fmt(p.get("rate"), "%g"),
                _fmt(p.get("elapsed_s"), "%.0f"),
                _fmt(p.get("duration_s"), "%.0f"),
                _fmt(p.get("sent"), "%d"),
                _fmt(p.get("planned"), "%d"),
                _fmt(p.get("written"), "%d"),
                _fmt(p.get("p99_ms")),
                _fmt(p.get("cpu_pct")),
                _fmt(p.get("memory_pct")),
            )
        )
        return line + " done" if p.get("done") else line

    @staticmethod
    def _task_message(result: CallbackTaskResult) -> str:
        data = result.result
        text = data.get("msg") or data.get("failure") or data.get("reason") or "task failed"
        return "%s: %s" % (result.task.get_name(), text)

    # -- hooks ------------------------------------------------------------------------------

    @_guarded
    def v2_runner_on_ok(self, result: CallbackTaskResult) -> None:
        self._collect(result)

    @_guarded
    def v2_runner_on_failed(self, result: CallbackTaskResult, ignore_errors: bool = False) -> None:
        name = self._collect(result)
        host = self._host(name)
        message = self._task_message(result)
        if ignore_errors:
            host.ignored_failure = host.ignored_failure or message
            # A crashed Observer (`failure`) is stress evidence even when the play goes on.
            host.in_report = host.in_report or bool(result.result.get("failure"))
        else:
            host.failure = host.failure or message
            host.in_report = True

    @_guarded
    def v2_runner_retry(self, result: CallbackTaskResult) -> None:
        name = result.host.get_name()
        for progress in _payloads(result.result, PROGRESS_KEY):
            self._progress(name, progress)

    @_guarded
    def v2_runner_on_unreachable(self, result: CallbackTaskResult) -> None:
        host = self._host(result.host.get_name())
        host.unreachable = host.unreachable or self._task_message(result)
        host.in_report = True

    def v2_runner_on_skipped(self, result: CallbackTaskResult) -> None:
        """Skipped tasks carry no stress evidence."""

    @_guarded
    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self._run is None:
            return
        report = self._build_report()
        for line in self._summary_lines(report):
            text, color = line if isinstance(line, tuple) else (line, None)
            self._display.display(text, color=color)
        self._write_artifacts(report)

    # -- verdicts ---------------------------------------------------------------------------

    def _planned_numbers(self) -> list[int]:
        levels = (self._run or {}).get("levels") or []
        return list(range(1, len(levels) + 1))

    def _host_verdict(self, host: _Host) -> _HostVerdict:
        missing = [n for n in self._planned_numbers() if n not in host.levels]
        if host.unreachable:
            return _HostVerdict(UNREACHABLE, host.unreachable, missing)
        failure = host.failure or host.ignored_failure
        if host.final is None:
            return _HostVerdict(FAILED, failure or "no run-wide verdict was reported", missing)
        levels_pass = all(lv.get("verdict") == PASSED for lv in host.levels.values())
        if host.final.get("verdict") == PASSED and levels_pass and not missing:
            return _HostVerdict(PASSED, None, missing)
        if host.final.get("verdict") == PASSED and levels_pass:
            # The gate said PASS but the callback never saw every level: report the gap.
            return _HostVerdict(
                FAILED, "levels not reported: %s" % self._level_list(missing), missing
            )
        return _HostVerdict(FAILED, failure, missing)

    @staticmethod
    def _level_list(numbers: list[int]) -> str:
        return ", ".join("L%d" % n for n in numbers)

    def _host_reasons(self, name: str, host: _Host, verdict: _HostVerdict) -> str:
        if verdict.verdict == UNREACHABLE:
            return "%s: unreachable" % name
        reasons = []
        for number in sorted(host.levels):
            level = host.levels[number]
            if level.get("verdict") == PASSED:
                continue
            breaches = level.get("breaches") or []
            texts = [_breach_text(b) for b in breaches if isinstance(b, Mapping)]
            texts = texts or [str(level.get("verdict") or "no verdict")]
            reasons.extend("L%d %s" % (number, text) for text in texts)
        if verdict.missing_levels and host.levels:
            reasons.append("%s not run" % self._level_list(verdict.missing_levels))
        if host.final is not None:
            failed = [
                str(c.get("name"))
                for c in host.final.get("criteria") or []
                if isinstance(c, Mapping) and c.get("verdict") != PASSED
            ]
            if failed:
                reasons.append("run-wide %s" % ", ".join(failed))
        if not reasons or host.final is None:
            reasons.append(_shorten(verdict.message or "failed"))
        elif host.failure and all(lv.get("verdict") == PASSED for lv in host.levels.values()):
            # Failed outside the levels (e.g. stopped because another host failed): say why.
            reasons.insert(0, _shorten(host.failure))
        # Hosts are separated by "; " on the verdict line, so a host's reasons use ", ".
        return "%s: %s" % (name, ", ".join(reasons))

    # -- report.json ------------------------------------------------------------------------

    def _build_report(self) -> dict:
        run = self._run or {}
        hosts: dict[str, dict] = {}
        reasons = []
        for name in sorted(n for n, h in self._hosts.items() if h.in_report):
            host = self._hosts[name]
            verdict = self._host_verdict(host)
            entry: dict[str, Any] = {"verdict": verdict.verdict}
            if verdict.message:
                entry["message"] = verdict.message
            entry["levels"] = [host.levels[n] for n in sorted(host.levels)]
            entry["levels_not_run"] = verdict.missing_levels
            entry["criteria"] = list((host.final or {}).get("criteria") or [])
            if host.final and host.final.get("observer") is not None:
                entry["observer"] = host.final["observer"]
            entry["warnings"] = host.warnings
            hosts[name] = entry
            if verdict.verdict != PASSED:
                reasons.append(self._host_reasons(name, host, verdict))
        if not hosts:
            reasons.append("no host reported any result")
        return {
            "run_id": run.get("run_id"),
            "profile": run.get("profile"),
            "seed": run.get("seed"),
            "started_at": run.get("started_at"),
            "finished_at": _now(),
            "verdict": FAILED if reasons else PASSED,
            "reasons": reasons,
            "artifacts_dir": self._artifacts_dir(),
            "levels_planned": list(run.get("levels") or []),
            "hosts": hosts,
        }

    def _artifacts_dir(self) -> str | None:
        return self._artifacts_override or (self._run or {}).get("artifacts_dir")

    # -- console ----------------------------------------------------------------------------

    def _summary_lines(self, report: dict) -> list[str | tuple[str, str]]:
        run = "STRESS REPORT run %s (profile %s, seed %s)" % (
            report["run_id"],
            report["profile"],
            report["seed"],
        )
        lines: list[str | tuple[str, str]] = ["", run, ""]
        lines.extend(self._table(report))
        for name, entry in report["hosts"].items():
            lines.append("")
            head = "%s: %s" % (name, entry["verdict"])
            if entry.get("message"):
                head += " (%s)" % _shorten(entry["message"], 300)
            lines.append((head, C.COLOR_OK if entry["verdict"] == PASSED else C.COLOR_ERROR))
            lines.extend(self._criteria_lines(entry["criteria"]))
        lines.append("")
        if report["verdict"] == PASSED:
            lines.append(("STRESS VERDICT: PASS", C.COLOR_OK))
        else:
            lines.append(
                ("STRESS VERDICT: FAIL (%s)" % "; ".join(report["reasons"]), C.COLOR_ERROR)
            )
        lines.append("stress artifacts: %s" % (report["artifacts_dir"] or "-"))
        return lines

    def _table(self, report: dict) -> list[str]:
        header = ["host", "level", "rate", "throughput", "p99 latency", "CPU", "memory"]
        header += ["errors", "lost", "verdict"]
        rows = []
        for name, entry in report["hosts"].items():
            by_number = {_level_number(lv): lv for lv in entry["levels"]}
            numbers = sorted(set(self._planned_numbers()) | {n for n in by_number if n is not None})
            if not entry["levels"]:
                rows.append([name, "-", "-", "-", "-", "-", "-", "-", "-", entry["verdict"]])
                continue
            for number in numbers:
                level = by_number.get(number)
                rows.append(self._level_row(name, number, level))
        return _render_table(header, rows, numeric=range(2, 9))

    @staticmethod
    def _level_row(name: str, number: int, level: Mapping[str, Any] | None) -> list[str]:
        if level is None:
            return [name, "L%d" % number, "-", "-", "-", "-", "-", "-", "-", "NOT RUN"]
        return [
            name,
            "L%d" % number,
            _fmt(level.get("rate"), "%g/s"),
            _fmt(level.get("throughput"), "%.3f/s"),
            _fmt(_dig(level, "latency_ms", "p99"), "%.1f ms"),
            _fmt(_dig(level, "cpu_pct", "sustained"), "%.1f %%"),
            _fmt(_dig(level, "memory_pct", "sustained"), "%.1f %%"),
            _fmt(level.get("errors"), "%d"),
            _fmt(level.get("lost"), "%d"),
            str(level.get("verdict") or "-"),
        ]

    @staticmethod
    def _criteria_lines(criteria: list) -> list[str]:
        items = [c for c in criteria if isinstance(c, Mapping)]
        width = max((len(str(c.get("name"))) for c in items), default=0)
        return [
            "  %-*s  %-4s  %s" % (width, c.get("name"), c.get("verdict"), c.get("evidence", ""))
            for c in items
        ]

    # -- files ------------------------------------------------------------------------------

    def _write_artifacts(self, report: dict) -> None:
        folder = report["artifacts_dir"]
        if not folder:
            self._display.warning("qts.observer.stress_report: the run has no artifacts folder")
            return
        if self._artifacts_override:
            os.makedirs(folder, exist_ok=True)
        elif not os.path.isdir(folder):
            # The planning task creates it; it does not in check mode, and then nothing is kept.
            self._display.warning(
                "qts.observer.stress_report: %s does not exist; report not written" % folder
            )
            return
        report_text = json.dumps(report, indent=2, default=str) + "\n"
        _write_atomic(os.path.join(folder, self._report_file), report_text.encode("utf-8"))
        junit = _junit(report, self._planned_numbers())
        _write_atomic(os.path.join(folder, self._junit_file), junit)


def _render_table(header: list[str], rows: list[list[str]], numeric: range) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def render(row: list[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [render(header), render(["-" * w for w in widths]), *(render(r) for r in rows)]


def _write_atomic(path: str, data: bytes) -> None:
    """Readers (CI, `artifacts/latest`) never see a half-written file."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# -- junit.xml ------------------------------------------------------------------------------


def _xml_text(text: Any) -> str:
    return _XML_INVALID.sub("?", str(text))


def _level_cases(number: int, level: Mapping[str, Any] | None, why_missing: str) -> list[tuple]:
    """(criterion, failure message or None, failure text) for each criterion of one level."""
    if level is None:
        message = "level not run (%s)" % why_missing
        return [(criterion, message, message) for criterion in LEVEL_CRITERIA]
    failing: dict[str, list[Mapping[str, Any]]] = {}
    for breach in level.get("breaches") or []:
        if isinstance(breach, Mapping):
            name = str(breach.get("criterion", "unknown"))
            failing.setdefault(BREACH_CRITERION.get(name, name), []).append(breach)
    names = list(LEVEL_CRITERIA) + [n for n in failing if n not in LEVEL_CRITERIA]
    cases = []
    for criterion in names:
        breaches = failing.get(criterion)
        if breaches:
            message = "; ".join(_breach_message(b) for b in breaches)
            detail = "\n".join(json.dumps(b, default=str) for b in breaches)
            cases.append((criterion, message, detail))
        else:
            cases.append((criterion, None, None))
    if level.get("verdict") != PASSED and not failing:
        # A failed level without a named breach must still show up as failed.
        message = "level verdict %s without a named breach" % level.get("verdict")
        cases.append(("verdict", message, message))
    return cases


def _run_cases(entry: Mapping[str, Any]) -> list[tuple]:
    criteria = [c for c in entry.get("criteria") or [] if isinstance(c, Mapping)]
    if not criteria:
        message = entry.get("message") or "no run-wide verdict was reported"
        return [("verdict", "%s: %s" % (entry["verdict"], message), message)]
    cases = []
    for criterion in criteria:
        if criterion.get("verdict") == PASSED:
            cases.append((str(criterion.get("name")), None, None))
        else:
            message = _with_figures(
                str(criterion.get("evidence") or criterion.get("name")),
                criterion.get("measured"),
                criterion.get("limit"),
            )
            cases.append((str(criterion.get("name")), message, json.dumps(criterion, default=str)))
    return cases


def _add_case(suite: ET.Element, classname: str, case: tuple) -> bool:
    name, message, detail = case
    element = ET.SubElement(suite, "testcase", classname=_xml_text(classname), name=_xml_text(name))
    if message is None:
        return False
    failure = ET.SubElement(element, "failure", message=_xml_text(message), type=_xml_text(name))
    failure.text = _xml_text(detail)
    return True


def _junit(report: Mapping[str, Any], planned: list[int]) -> bytes:
    root = ET.Element("testsuites", name="qts.observer stress %s" % report.get("run_id"))
    total = failed = 0
    for host, entry in report["hosts"].items():
        suite = ET.SubElement(root, "testsuite", name=_xml_text(host))
        properties = ET.SubElement(suite, "properties")
        for key in ("run_id", "profile", "seed"):
            ET.SubElement(properties, "property", name=key, value=_xml_text(report.get(key)))
        ET.SubElement(properties, "property", name="verdict", value=entry["verdict"])
        levels = {_level_number(lv): lv for lv in entry["levels"]}
        why = entry.get("message") or entry["verdict"]
        if entry["verdict"] == UNREACHABLE:
            why = "host unreachable: %s" % why
        cases = [
            ("%s.L%d" % (host, number), case)
            for number in sorted(set(planned) | {n for n in levels if n is not None})
            for case in _level_cases(number, levels.get(number), _shorten(why))
        ]
        cases += [("%s.run" % host, case) for case in _run_cases(entry)]
        failures = sum(_add_case(suite, classname, case) for classname, case in cases)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        total += len(cases)
        failed += failures
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
