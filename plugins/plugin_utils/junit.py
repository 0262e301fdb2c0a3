# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""junit.xml of a stress report, for CI dashboards.

One testsuite per host, one testcase per level and criterion (the same names from run to run,
so trend views compare like with like whatever failed) and one per run-wide criterion. Every
testcase carries its time and its measured figures (properties and system-out), passing or
not. A criterion that could not be measured is a failure of type ``not_measured``: a CI job
must not show green for what nobody measured.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.verdicts import (
    FAIL,
    NOT_MEASURED,
    NOT_RUN,
    PASS,
    UNREACHABLE,
)

from .report import (
    dig,
    is_number,
    level_number,
    shorten,
    with_figures,
)

LEVEL_CRITERIA = ("throughput", "latency", "cpu", "memory", "integrity", "error_rate", "process")
# Breach names of plugins/module_utils/gate.py -> the testcase they fail.
BREACH_CRITERION = {
    "min_throughput": "throughput",
    "max_latency_ms": "latency",
    "max_visibility_ms": "latency",
    "max_cpu_pct": "cpu",
    "max_memory_pct": "memory",
    "integrity_lost": "integrity",
    "integrity_duplicated": "integrity",
    "integrity_modified": "integrity",
    "contract": "integrity",
    "contract_decision": "integrity",
    "error_rate": "error_rate",
    "process_failure": "process",
}
# What a level could not measure (gate.level_unmeasured) -> the testcases it leaves unjudged.
UNMEASURED_CRITERIA = {
    "load": ("throughput", "latency", "cpu", "memory", "integrity", "error_rate"),
    # The load generator did not deliver the level's shape: the Observer's throughput and
    # latency under it are not measured; what it lost or broke, and the machine, still are.
    "delivery": ("throughput", "latency"),
    "visibility": ("latency",),
    "latency": ("latency",),
    "resources": ("cpu", "memory"),
}
# XML 1.0 cannot carry these even escaped; log excerpts in messages may hold them.
_XML_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: Any) -> str:
    return _XML_INVALID.sub("?", str(text))


def level_figures(criterion: str, level: Mapping[str, Any]) -> dict[str, Any]:
    """The measured figures behind one level testcase."""
    thresholds = level.get("thresholds") or {}
    if criterion == "throughput":
        return {
            "throughput_per_s": level.get("throughput"),
            "offered_rate_per_s": level.get("rate"),
            "achieved_send_rate_per_s": level.get("achieved_rate"),
            "min_throughput": thresholds.get("min_throughput"),
        }
    if criterion == "latency":
        figures = {"%s_ms" % k: v for k, v in (level.get("latency_ms") or {}).items()}
        figures["source"] = level.get("latency_source") or "not measured"
        figures["max_latency_ms_limit"] = thresholds.get("max_latency_ms")
        figures["send_lateness_p99_ms"] = dig(level, "send_lateness_ms", "p99")
        return figures
    if criterion in ("cpu", "memory"):
        system = level.get("%s_pct" % criterion) or {}
        figures = {
            "sustained_pct": system.get("sustained"),
            "peak_pct": system.get("peak"),
            "limit_pct": thresholds.get("max_%s_pct" % criterion),
            "samples": level.get("samples"),
        }
        if criterion == "cpu":
            figures["observer_sustained_pct_of_one_core"] = dig(
                level, "observer_cpu_pct", "sustained"
            )
            figures["cpu_count"] = level.get("cpu_count")
        else:
            figures["observer_rss_peak_mb"] = dig(level, "observer_rss_mb", "peak")
            figures["memory_total_mb"] = level.get("memory_total_mb")
        return figures
    if criterion == "integrity":
        return {k: level.get(k) for k in ("sent", "written", "lost", "duplicated", "modified")}
    if criterion == "error_rate":
        return {k: level.get(k) for k in ("errors", "error_rate_pct", "validation_rate_pct")}
    return {"failure": level.get("failure") or "none", "observer_pid": level.get("observer_pid")}


def _level_cases(level: Mapping[str, Any] | None, why_missing: str) -> list[dict]:
    if level is None:
        message = "level not run (%s)" % why_missing
        return [
            {"name": c, "failure": message, "type": "not_run", "detail": message}
            for c in LEVEL_CRITERIA
        ]
    failing: dict[str, list[Mapping[str, Any]]] = {}
    for breach in level.get("breaches") or []:
        if isinstance(breach, Mapping):
            name = str(breach.get("criterion", "unknown"))
            failing.setdefault(BREACH_CRITERION.get(name, name), []).append(breach)
    unmeasured: dict[str, str] = {}
    for item in level.get("not_measured") or []:
        if isinstance(item, Mapping):
            for criterion in UNMEASURED_CRITERIA.get(str(item.get("criterion")), ()):
                unmeasured.setdefault(criterion, str(item.get("reason")))
    duration = (level.get("finished_at") or 0) - (level.get("started_at") or 0)
    cases = []
    for criterion in list(LEVEL_CRITERIA) + [n for n in failing if n not in LEVEL_CRITERIA]:
        case: dict[str, Any] = {
            "name": criterion,
            "time": duration if is_number(duration) and duration > 0 else 0.0,
            "figures": level_figures(criterion, level),
        }
        if failing.get(criterion):
            breaches = failing[criterion]
            case["failure"] = "; ".join(
                with_figures(
                    str(b.get("message") or b.get("criterion")), b.get("measured"), b.get("limit")
                )
                for b in breaches
            )
            case["type"] = criterion
            case["detail"] = "\n".join(json.dumps(b, default=str) for b in breaches)
        elif criterion in unmeasured:
            case["failure"] = "NOT MEASURED: %s" % unmeasured[criterion]
            case["type"] = "not_measured"
            case["detail"] = case["failure"]
        cases.append(case)
    faults_failing = any(f.get("verdict") != PASS for f in level.get("faults") or [])
    faults_failing |= any(t.get("verdict") != PASS for t in level.get("trends") or [])
    if level.get("verdict") not in (PASS, NOT_MEASURED) and not failing and not faults_failing:
        message = "level verdict %s without a named breach" % level.get("verdict")
        cases.append({"name": "verdict", "failure": message, "type": "verdict", "detail": message})
    return cases


def _run_cases(entry: Mapping[str, Any], run_time: float) -> list[dict]:
    criteria = [c for c in entry.get("criteria") or [] if isinstance(c, Mapping)]
    if not criteria:
        message = "%s: %s" % (entry["verdict"], entry.get("message") or "no run-wide verdict")
        return [{"name": "verdict", "failure": message, "type": "verdict", "detail": message}]
    cases = []
    for criterion in criteria:
        case: dict[str, Any] = {
            "name": str(criterion.get("name")),
            "time": run_time,
            "figures": {
                "evidence": criterion.get("evidence"),
                "measured": json.dumps(criterion.get("measured"), default=str),
                "limit": json.dumps(criterion.get("limit"), default=str),
            },
        }
        if criterion.get("verdict") == NOT_MEASURED:
            case["failure"] = "NOT MEASURED: %s" % criterion.get("evidence")
            case["type"] = "not_measured"
            case["detail"] = case["failure"]
        elif criterion.get("verdict") != PASS:
            case["failure"] = with_figures(
                str(criterion.get("evidence") or criterion.get("name")),
                criterion.get("measured"),
                criterion.get("limit"),
            )
            case["type"] = case["name"]
            case["detail"] = json.dumps(criterion, default=str)
        cases.append(case)
    if entry.get("message") and entry["verdict"] != PASS:
        # Failed outside its criteria (a failed task, stopped by another host's failure).
        message = str(entry["message"])
        cases.append({"name": "verdict", "failure": message, "type": "verdict", "detail": message})
    return cases


def _regression_cases(entry: Mapping[str, Any], fails: bool) -> list[dict]:
    """A testcase per regression check; a regression (or a check that could not be made) is
    a failure when regressions fail the run (``stress_fail_on_regression``), else it is shown
    in the testcase's figures only."""
    cases = []
    for check in (entry.get("regression") or {}).get("checks") or []:
        case: dict[str, Any] = {
            "name": "L%s %s" % (check.get("level"), check.get("metric")),
            "figures": {key: check.get(key) for key in (
                "baseline_run", "baseline", "current", "change_pct", "p_value", "direction",
                "verdict", "message")},
        }  # fmt: skip
        if check.get("verdict") == FAIL and fails:
            case.update(
                failure=check.get("message"), type="regression", detail=check.get("message")
            )
        elif check.get("verdict") == NOT_MEASURED and fails:
            case.update(failure="NOT MEASURED: %s" % check.get("message"), type="not_measured",
                        detail=check.get("message"))  # fmt: skip
        cases.append(case)
    return cases


FAULT_FIGURES = ("type", "level", "at_s", "duration_s", "applied_s", "ended_s", "back_s", "sent",
                 "lost", "allowed_lost", "duplicated", "modified", "late", "recovery_s",
                 "drain_s", "window_s", "error")  # fmt: skip


def _fault_cases(host: str, planned: list[Mapping[str, Any]], levels: Mapping) -> list[dict]:
    """A testcase per planned fault of the host: its counts, failed as it was judged, or not
    run with its level."""
    cases = []
    for level_plan in planned:
        for fault in level_plan.get("faults") or []:
            if host not in (fault.get("hosts") or []):
                continue
            level = levels.get(fault.get("level")) or {}
            judged = next((f for f in level.get("faults") or [] if f.get("fault") == fault.get("fault")),
                          None)  # fmt: skip
            case: dict[str, Any] = {"name": str(fault.get("name"))}
            if judged is None:
                message = "not run: %s" % (
                    level.get("failure") or "its level did not run to its measure"
                )
                case.update(failure=message, type="not_run", detail=message)
                cases.append(case)
                continue
            case["figures"] = {key: judged.get(key) for key in FAULT_FIGURES}
            if judged.get("verdict") == FAIL:
                texts = [with_figures(str(b.get("message")), b.get("measured"), b.get("limit"))
                         for b in judged.get("breaches") or []]  # fmt: skip
                case.update(failure="; ".join(texts), type="fault",
                            detail="\n".join(json.dumps(b, default=str) for b in judged["breaches"]))  # fmt: skip
            elif judged.get("verdict") == NOT_MEASURED:
                message = "NOT MEASURED: %s" % "; ".join(
                    str(u.get("reason")) for u in judged.get("not_measured") or []
                )
                case.update(failure=message, type="not_measured", detail=message)
            cases.append(case)
    return cases


TREND_FIGURES = ("slope_per_h", "lower_per_h", "upper_per_h", "second_half_per_h", "fitted_end",
                 "limit", "limit_source", "hours_to_limit", "tolerance_per_h", "horizon_h",
                 "windows", "autocorrelation")  # fmt: skip


def _trend_cases(levels: Mapping) -> list[dict]:
    """A testcase per trend of each level that has them (``L<n>.<series>``): its slope and
    interval, failed or not measured as judged."""
    cases = []
    for number in sorted(n for n in levels if n is not None):
        for trend in levels[number].get("trends") or []:
            case: dict[str, Any] = {"name": "L%d.%s" % (number, trend.get("series")),
                                    "figures": {k: trend.get(k) for k in TREND_FIGURES if k in trend}}  # fmt: skip
            if trend.get("verdict") == FAIL:
                case.update(failure=str(trend.get("message")), type="trend",
                            detail="\n".join(json.dumps(b, default=str) for b in trend.get("breaches") or []))  # fmt: skip
            elif trend.get("verdict") == NOT_MEASURED:
                case.update(failure="NOT MEASURED: %s" % trend.get("message"), type="not_measured",
                            detail=str(trend.get("message")))  # fmt: skip
            cases.append(case)
    return cases


def _add_case(suite: ET.Element, classname: str, case: Mapping[str, Any]) -> bool:
    element = ET.SubElement(
        suite,
        "testcase",
        classname=xml_text(classname),
        name=xml_text(case["name"]),
        time="%.3f" % float(case.get("time") or 0.0),
    )
    figures = case.get("figures") or {}
    if figures:
        properties = ET.SubElement(element, "properties")
        for key, value in figures.items():
            ET.SubElement(properties, "property", name=xml_text(key), value=xml_text(value))
    if case.get("failure") is not None:
        failure = ET.SubElement(
            element, "failure", message=xml_text(case["failure"]), type=xml_text(case["type"])
        )
        failure.text = xml_text(case.get("detail") or case["failure"])
    if figures:
        out = ET.SubElement(element, "system-out")
        out.text = xml_text(", ".join("%s=%s" % (k, v) for k, v in figures.items()))
    return case.get("failure") is not None


def _host_run_time(entry: Mapping[str, Any]) -> float:
    levels = entry.get("levels") or []
    starts = [lv["started_at"] for lv in levels if is_number(lv.get("started_at"))]
    ends = [lv["finished_at"] for lv in levels if is_number(lv.get("finished_at"))]
    return max(ends) - min(starts) if starts and ends else 0.0


def _run_suite(root: ET.Element, report: Mapping[str, Any]) -> tuple[int, int]:
    """The run's own testcase when it never reached a host: refused, or no host matched."""
    suite = ET.SubElement(root, "testsuite", name="run", time="0")
    message = "; ".join(report.get("reasons") or []) or "the run did not reach any host"
    _add_case(
        suite,
        "run",
        {"name": "plan", "failure": message, "type": "refused", "detail": message, "time": 0.0},
    )
    for key, value in (("tests", 1), ("failures", 1), ("errors", 0), ("skipped", 0)):
        suite.set(key, str(value))
    return 1, 1


def junit_xml(report: Mapping[str, Any]) -> bytes:
    root = ET.Element("testsuites", name=xml_text("qts.observer stress %s" % report.get("run_id")))
    planned = list(range(1, len(report.get("levels_planned") or []) + 1))
    total = failed = 0
    hosts = report.get("hosts") or {}
    if not hosts or all(e["verdict"] == NOT_RUN for e in hosts.values()):
        total, failed = _run_suite(root, report)
    for host, entry in hosts.items():
        run_time = _host_run_time(entry)
        suite = ET.SubElement(root, "testsuite", name=xml_text(host), time="%.3f" % run_time)
        properties = ET.SubElement(suite, "properties")
        for key in ("run_id", "profile", "seed"):
            ET.SubElement(properties, "property", name=key, value=xml_text(report.get(key)))
        ET.SubElement(properties, "property", name="verdict", value=entry["verdict"])
        levels = {level_number(lv): lv for lv in entry["levels"]}
        why = entry.get("message") or entry["verdict"]
        if entry["verdict"] == UNREACHABLE:
            why = "host unreachable: %s" % why
        cases = [
            ("%s.L%d" % (host, number), case)
            for number in sorted(set(planned) | {n for n in levels if n is not None})
            for case in _level_cases(levels.get(number), shorten(why))
        ]
        cases += [("%s.faults" % host, case)
                  for case in _fault_cases(host, report.get("levels_planned") or [], levels)]  # fmt: skip
        cases += [("%s.trends" % host, case) for case in _trend_cases(levels)]
        cases += [("%s.run" % host, case) for case in _run_cases(entry, run_time)]
        fails = bool((report.get("history") or {}).get("fail_on_regression"))
        cases += [("%s.regression" % host, case) for case in _regression_cases(entry, fails)]
        failures = sum(_add_case(suite, classname, case) for classname, case in cases)
        for key, value in (
            ("tests", len(cases)),
            ("failures", failures),
            ("errors", 0),
            ("skipped", 0),
        ):
            suite.set(key, str(value))
        total += len(cases)
        failed += failures
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", "0")
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
