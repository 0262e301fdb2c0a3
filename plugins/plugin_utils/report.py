# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stress report: one host x level verdict table, report.json and the console summary.

Built on the controller from what each host's tasks recorded (its levels judged by the gate,
its run-wide criteria, its first failure, whether it was reached) and from the plan. Nothing
here judges a figure: the gate did. What it decides is how each host's parts combine into
the host's verdict, and the run's: PASS only when every host of the inventory passed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.trends import figure
from ansible_collections.qts.observer.plugins.module_utils.verdicts import (
    FAIL,
    NOT_MEASURED,
    NOT_RUN,
    PASS,
    UNREACHABLE,
    combine,
)

REASON_MAX_CHARS = 160
# report.json's layout. 2: a capacity step's breaches carry the gate's criteria (the same as a
# level's) and its "unmeasured" says "resources" for CPU and memory; 1 had no such field.
SCHEMA_VERSION = 2


def controller_identity() -> dict[str, str | None]:
    """What judged the run: the controller's ansible-core, Python and this collection."""
    # Imported here: the rest of this module is read without Ansible (make history, report).
    from ansible import release  # noqa: PLC0415

    return {
        "ansible_core": release.__version__,
        "python": platform.python_version(),
        "collection": collection_version(),
    }


def collection_version() -> str | None:
    """This collection's version: MANIFEST.json once installed, galaxy.yml in a checkout."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with open(os.path.join(root, "MANIFEST.json")) as handle:
            return json.load(handle)["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        pass
    try:
        with open(os.path.join(root, "galaxy.yml")) as handle:
            for line in handle:
                if line.startswith("version:"):
                    return line.split(":", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return None


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def fmt(value: Any, pattern: str = "%.1f") -> str:
    return pattern % value if is_number(value) else "-"


def plain(value: Any) -> str:
    """A measured value or limit in a message: numbers short, anything else as text."""
    if is_number(value):
        return "%g" % value
    if isinstance(value, Mapping):
        return ", ".join("%s %s" % (k, plain(v)) for k, v in value.items()) or "none"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def shorten(text: Any, limit: int = REASON_MAX_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def level_number(level: Mapping[str, Any]) -> int | None:
    number = level.get("level")
    return number if isinstance(number, int) and not isinstance(number, bool) else None


def breach_text(breach: Mapping[str, Any]) -> str:
    """``max_latency_ms 61.2 > 50``, for the verdict line."""
    name = breach.get("criterion", "breach")
    measured, limit = breach.get("measured"), breach.get("limit")
    if is_number(measured) and is_number(limit):
        return "%s %g %s %g" % (name, measured, "<" if name.startswith("min_") else ">", limit)
    return "%s: %s" % (name, shorten(plain(measured), 60))


def with_figures(text: str, measured: Any, limit: Any) -> str:
    """The text, with the measured value and the limit when there are any."""
    if measured is None and limit is None:
        return text
    return "%s (measured %s, limit %s)" % (text, plain(measured), plain(limit))


def empty_outcome() -> dict:
    """What the report knows of a host that recorded nothing."""
    return {
        "played": False,
        "unreachable": None,
        "failure": None,
        "levels": [],
        "final": None,
        "warnings": [],
        "phase": None,
        "collected": None,
        "failure_is_verdict": False,
        "capacity": None,
        "observer_identity": None,
    }


def host_verdict(outcome: Mapping[str, Any], planned: list[int]) -> tuple[str, str | None]:
    """The host's verdict and, when it is not PASS for a reason beyond its criteria, why."""
    if outcome.get("unreachable"):
        return UNREACHABLE, str(outcome["unreachable"])
    failure = outcome.get("failure")
    final = outcome.get("final")
    if not outcome.get("played"):
        return FAIL, failure or "the host did not take part in the run"
    if final is None:
        return FAIL, failure or (
            "no run-wide verdict: the host became unreachable or stopped during %s"
            % (outcome.get("phase") or "the run")
        )
    levels = outcome.get("levels") or []
    reported = {level_number(lv) for lv in levels}
    missing = [n for n in planned if n not in reported]
    verdict = combine([str(lv.get("verdict")) for lv in levels] + [str(final.get("verdict"))])
    if failure or missing:
        return FAIL, failure
    return verdict, None


def _host_reasons(name: str, entry: Mapping[str, Any]) -> str:
    """Why a host is not PASS, for the one-line verdict: its breaches and failed criteria."""
    if entry["verdict"] in (UNREACHABLE, NOT_RUN):
        return "%s: %s" % (name, "unreachable" if entry["verdict"] == UNREACHABLE else "not run")
    reasons = []
    for level in entry["levels"]:
        if level.get("verdict") == PASS:
            continue
        number = level_number(level)
        texts = [breach_text(b) for b in level.get("breaches") or [] if isinstance(b, Mapping)]
        texts += [
            "NOT MEASURED %s" % u.get("criterion")
            for u in level.get("not_measured") or []
            if isinstance(u, Mapping)
        ]
        texts += [
            "trend %s %s" % (t.get("series"), t.get("verdict"))
            for t in level.get("trends") or []
            if isinstance(t, Mapping) and t.get("verdict") != PASS
        ]
        reasons.extend("L%s %s" % (number, text) for text in texts or [str(level.get("verdict"))])
    if entry["levels_not_run"] and entry["levels"]:
        reasons.append("%s not run" % ", ".join("L%d" % n for n in entry["levels_not_run"]))
    failed = [c for c in entry["criteria"] if c.get("verdict") == FAIL]
    unmeasured = [c for c in entry["criteria"] if c.get("verdict") == NOT_MEASURED]
    if failed:
        reasons.append("run-wide %s" % ", ".join(str(c.get("name")) for c in failed))
    if unmeasured:
        reasons.append("NOT MEASURED %s" % ", ".join(str(c.get("name")) for c in unmeasured))
    message = entry.get("message")
    if message and not entry.get("failure_is_verdict"):
        # Failed for a cause beyond its figures (a failed task, stopped because another host
        # failed, an Observer that was not running): say why first.
        reasons.insert(0, shorten(message))
    # Hosts are separated by "; " on the verdict line, so a host's reasons use ", ".
    return "%s: %s" % (name, ", ".join(reasons or [entry["verdict"]]))


def build_report(
    run: Mapping[str, Any],
    hosts: list[str],
    outcomes: Mapping[str, Mapping[str, Any]],
    *,
    refused: list[str] | None = None,
) -> dict:
    """report.json: the run, each host's verdict with its evidence, the run's verdict.

    ``hosts`` are the inventory's hosts of the run, in order; a host without an outcome
    recorded nothing. ``refused`` are the reasons the run was refused before it started.
    """
    planned = list(range(1, len(run.get("levels") or []) + 1))
    entries: dict[str, dict] = {}
    reasons: list[str] = []
    if refused:
        reasons.append("run refused before it started: %s" % "; ".join(refused))
    elif not hosts:
        reasons.append(str(run.get("no_hosts") or "no host to run on"))
    for name in hosts:
        outcome = {**empty_outcome(), **(outcomes.get(name) or {})}
        if refused:
            verdict, message = NOT_RUN, "the run was refused before it started"
        else:
            verdict, message = host_verdict(outcome, planned)
        levels = sorted(outcome["levels"] or [], key=lambda lv: level_number(lv) or 0)
        reported = {level_number(lv) for lv in levels}
        entry: dict[str, Any] = {"verdict": verdict}
        if message:
            entry["message"] = message
        entry["levels"] = levels
        entry["levels_not_run"] = [n for n in planned if n not in reported]
        entry["criteria"] = list((outcome["final"] or {}).get("criteria") or [])
        if (outcome["final"] or {}).get("observer") is not None:
            entry["observer"] = outcome["final"]["observer"]
        entry["warnings"] = list(outcome["warnings"] or [])
        entry["artifacts"] = outcome["collected"] or {}
        entry["failure_is_verdict"] = bool(outcome.get("failure_is_verdict"))
        entry["observer_identity"] = outcome.get("observer_identity")
        if run.get("capacity") is not None:
            entry["capacity"] = capacity_entry(outcome.get("capacity"))
        entries[name] = entry
        if verdict != PASS and not refused:
            reasons.append(_host_reasons(name, entry))
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.get("run_id"),
        "profile": run.get("profile"),
        "seed": run.get("seed"),
        "started_at": run.get("started_at"),
        "finished_at": now_utc(),
        "verdict": FAIL if reasons else PASS,
        "reasons": reasons,
        "artifacts_dir": run.get("artifacts_dir"),
        "levels_planned": list(run.get("levels") or []),
        "capacity_planned": run.get("capacity"),
        "timings": run.get("timings") or {},
        "limits": run.get("limits") or {},
        "hosts": entries,
    }


def capacity_entry(state: Any) -> dict:
    """A host's capacity search in the report: its result (with the curve), or why none."""
    if not isinstance(state, Mapping) or not state.get("result"):
        steps = len(state.get("steps") or []) if isinstance(state, Mapping) else 0
        return {"result": None, "message": "the search did not finish (%d step(s) run)" % steps}
    return {"result": dict(state["result"])}


# -- console --------------------------------------------------------------------------------


def render_table(header: list[str], rows: list[list[str]], numeric: range) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def render(row: list[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [render(header), render(["-" * w for w in widths]), *(render(r) for r in rows)]


TABLE_HEADER = [
    "host", "level", "rate", "throughput", "p99 latency", "CPU", "Observer CPU", "memory",
    "Observer RSS", "errors", "lost", "verdict",
]  # fmt: skip


def _p99_cell(level: Mapping[str, Any]) -> str:
    """The p99 the level's latency is judged on: the Observer's own, else its records'
    visibility (marked "vis")."""
    if not level.get("written"):
        return fmt(None, "%.1f ms")
    own = dig(level, "latency_ms", "p99")
    if own is not None:
        return fmt(own, "%.1f ms")
    return fmt(dig(level, "freshness", "visibility_ms", "p99"), "%.1f ms vis")


def _level_row(name: str, number: int, level: Mapping[str, Any] | None) -> list[str]:
    if level is None:
        return [name, "L%d" % number, *["-"] * 9, NOT_RUN]
    cores = level.get("cpu_count") or 0
    observer_cpu = dig(level, "observer_cpu_pct", "sustained")
    return [
        name,
        "L%d" % number,
        fmt(level.get("rate"), "%g/s"),
        fmt(level.get("throughput"), "%.3f/s"),
        _p99_cell(level),
        fmt(dig(level, "cpu_pct", "sustained") if level.get("samples") else None, "%.1f %%"),
        fmt(observer_cpu / cores if is_number(observer_cpu) and cores else None, "%.1f %%"),
        fmt(dig(level, "memory_pct", "sustained") if level.get("samples") else None, "%.1f %%"),
        fmt(dig(level, "observer_rss_mb", "peak"), "%.0f MB"),
        fmt(level.get("errors"), "%d"),
        fmt(level.get("lost"), "%d"),
        str(level.get("verdict") or "-"),
    ]


def table_lines(report: Mapping[str, Any]) -> list[str]:
    if not report["hosts"]:
        return ["(no host)"]
    planned = list(range(1, len(report.get("levels_planned") or []) + 1))
    rows = []
    for name, entry in report["hosts"].items():
        by_number = {level_number(lv): lv for lv in entry["levels"]}
        if not entry["levels"] and (entry["verdict"] in (UNREACHABLE, NOT_RUN) or not planned):
            rows.append([name, "-", *["-"] * 9, entry["verdict"]])
            continue
        for number in sorted(set(planned) | {n for n in by_number if n is not None}):
            rows.append(_level_row(name, number, by_number.get(number)))
    return render_table(TABLE_HEADER, rows, numeric=range(2, 11))


CAPACITY_HEADER = [
    "host", "highest sustainable", "limited by", "first failing", "how it failed", "headroom",
    "steps",
]  # fmt: skip
CURVE_HEADER = [
    "offered", "achieved", "throughput", "p50", "p99", "max", "CPU", "w/o generator", "memory",
    "buffer", "lost", "sustainable",
]  # fmt: skip


def capacity_lines(report: Mapping[str, Any]) -> list[str]:
    """Each host's capacity search: the result, then its curve (steps by offered rate)."""
    hosts = {n: e["capacity"] for n, e in report["hosts"].items() if "capacity" in e}
    if not hosts:
        return []
    rows = []
    for name, entry in hosts.items():
        result = entry.get("result")
        if not result:
            rows.append([name, "-", "-", "-", "-", "-", entry.get("message") or "-"])
            continue
        rows.append([
            name,
            fmt(result.get("highest_sustainable_rate"), "%g/s"),
            str(result.get("limited_by") or "-"),
            fmt(result.get("first_failing_rate"), "%g/s"),
            str(result.get("failed_how") or "-"),
            fmt(result.get("headroom"), "%gx"),
            fmt(result.get("steps"), "%d"),
        ])  # fmt: skip
    lines = ["", "CAPACITY", *render_table(CAPACITY_HEADER, rows, numeric=range(1, 2))]
    for name, entry in hosts.items():
        result = entry.get("result")
        if not result:
            continue
        lines += ["", "%s: %s" % (name, result.get("summary"))]
        curve = [
            [
                fmt(point.get("rate"), "%g/s"),
                fmt(point.get("achieved_rate"), "%.1f/s"),
                fmt(point.get("throughput"), "%.1f/s"),
                *(fmt(dig(point, "latency_ms", key), "%.1f ms") for key in ("p50", "p99", "max")),
                fmt(dig(point, "cpu_pct", "sustained") if point.get("samples", 1) else None,
                    "%.1f %%"),
                fmt(point.get("cpu_excluding_generator_pct"), "%.1f %%"),
                fmt(dig(point, "memory_pct", "sustained"), "%.1f %%"),
                fmt(point.get("buffer_depth_max"), "%d"),
                fmt(point.get("lost"), "%d"),
                "yes" if point.get("sustainable") else "no: %s" % ", ".join(dict.fromkeys(
                    str(b.get("criterion")) for b in point.get("breaches") or [])),
            ]
            for point in result.get("curve") or []
        ]  # fmt: skip
        lines += ["  " + line for line in render_table(CURVE_HEADER, curve, range(0, 11))]
    return lines


FAULT_HEADER = ["host", "fault", "applied", "back", "sent", "lost", "allowed", "dup", "mod",
                "late", "recovery", "drain", "verdict"]  # fmt: skip


def fault_lines(report: Mapping[str, Any]) -> list[str]:
    """Each host's planned faults: when applied, what each cost, how long to recover."""
    rows = []
    for name, entry in report["hosts"].items():
        for level in entry["levels"]:
            for fault in level.get("faults") or []:
                rows.append([
                    name, str(fault.get("name")),
                    fmt(fault.get("applied_s"), "%.1f s"), fmt(fault.get("back_s"), "%.2f s"),
                    fmt(fault.get("sent"), "%d"), fmt(fault.get("lost"), "%d"),
                    fmt(fault.get("allowed_lost"), "%d"), fmt(fault.get("duplicated"), "%d"),
                    fmt(fault.get("modified"), "%d"), fmt(fault.get("late"), "%d"),
                    fmt(fault.get("recovery_s"), "%.2f s"), fmt(fault.get("drain_s"), "%.2f s"),
                    str(fault.get("verdict")),
                ])  # fmt: skip
    if not rows:
        return []
    return ["", "FAULTS", *render_table(FAULT_HEADER, rows, numeric=range(2, 12))]


TREND_HEADER = ["host", "level", "series", "slope/h", "95 % interval", "windows", "limit",
                "reaches it in", "verdict"]  # fmt: skip


def trend_lines(report: Mapping[str, Any]) -> list[str]:
    """Each host's trends (a soak's): the slope per hour with its interval, the limit and when
    the slope reaches it; then each trend's sentence."""
    rows, sentences = [], []
    for name, entry in report["hosts"].items():
        for level in entry["levels"]:
            for trend in level.get("trends") or []:
                unit = trend.get("unit", "")
                rows.append([
                    name, "L%s" % level_number(level), str(trend.get("series")),
                    fmt(trend.get("slope_per_h"), "%+.3g " + unit),
                    "%s to %s" % (fmt(trend.get("lower_per_h"), "%.3g"), fmt(trend.get("upper_per_h"), "%.3g"))
                    if is_number(trend.get("lower_per_h")) else "-",
                    fmt(trend.get("windows"), "%d"),
                    figure(trend["limit"]) + " " + unit if is_number(trend.get("limit")) else "-",
                    fmt(trend.get("hours_to_limit"), "%.1f h"), str(trend.get("verdict")),
                ])  # fmt: skip
                sentences.append("  %s L%s: %s" % (name, level_number(level), trend.get("message")))
    if not rows:
        return []
    return ["", "TRENDS", *render_table(TREND_HEADER, rows, numeric=range(3, 8)), *sentences]


def criteria_lines(criteria: list) -> list[str]:
    items = [c for c in criteria if isinstance(c, Mapping)]
    width = max((len(str(c.get("name"))) for c in items), default=0)
    return [
        "  %-*s  %-12s  %s" % (width, c.get("name"), c.get("verdict"), c.get("evidence", ""))
        for c in items
    ]


def verdict_line(report: Mapping[str, Any]) -> str:
    if report["verdict"] == PASS:
        return "STRESS VERDICT: PASS"
    return "STRESS VERDICT: FAIL (%s)" % "; ".join(report["reasons"])


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """The end-of-run summary: table, each host's criteria, the verdict, where the files are."""
    lines = [
        "",
        "STRESS REPORT run %s (profile %s, seed %s)"
        % (report["run_id"], report["profile"], report["seed"]),
        "",
        *table_lines(report),
        *fault_lines(report),
        *trend_lines(report),
        *capacity_lines(report),
    ]
    for name, entry in report["hosts"].items():
        lines.append("")
        head = "%s: %s" % (name, entry["verdict"])
        if entry.get("message"):
            head += " (%s)" % shorten(entry["message"], 300)
        lines.append(head)
        lines.extend(criteria_lines(entry["criteria"]))
        problems = (entry.get("artifacts") or {}).get("problems") or []
        lines.extend("  raw data: %s" % shorten(p, 300) for p in problems)
    lines += ["", verdict_line(report), "stress artifacts: %s" % (report["artifacts_dir"] or "-")]
    return lines
