"""The run's report from what each host recorded: host verdicts, report.json's shape, the
console summary and junit.xml. The levels and criteria are judged by the real gate."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from types import MappingProxyType

import pytest
from ansible_collections.qts.observer.plugins.module_utils.gate import (
    judge_level,
    judge_run,
    level_unmeasured,
    verdict_of,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import profile_levels
from ansible_collections.qts.observer.plugins.plugin_utils.junit import LEVEL_CRITERIA, junit_xml
from ansible_collections.qts.observer.plugins.plugin_utils.report import (
    build_report,
    host_verdict,
    summary_lines,
    table_lines,
)
from figures import healthy_figures, with_changes

pytestmark = pytest.mark.unit

PLAN_LEVELS = profile_levels("smoke")[:2]  # 5/s and 10/s
RUN = {
    "run_id": "20261201T120000Z-ab12",
    "profile": "smoke",
    "seed": 7,
    "started_at": "2026-12-01T12:00:00Z",
    "artifacts_dir": "/artifacts/20261201T120000Z-ab12",
    "levels": PLAN_LEVELS,
    "hosts": ["observer-01", "observer-02", "observer-03", "observer-04"],
}
BASELINE = {"cpu_pct": {"sustained": 5.0}, "memory_pct": {"sustained": 40.0}, "samples": 5}
# Read-only (a default argument below): a mapping proxy, not a dict.
STOP = MappingProxyType(
    {
        "was_running": True,
        "stopped_cleanly": True,
        "exit_status": 0,
        "elapsed_s": 0.1,
        "timeout_s": 10,
    }
)


def metrics(number: int, **changes) -> dict:
    figures = healthy_figures(PLAN_LEVELS[number - 1]["rate"], 5)
    figures.update(
        latency_ms={"p50": 0.2, "p95": 0.4, "p99": 0.5, "max": 0.9},
        cpu_pct={"sustained": 8.0, "peak": 12.0},
        memory_pct={"sustained": 40.0, "peak": 40.5},
        observer_rss_mb={"peak": 22.0},
        started_at=1796000000.0 + 10 * number,
        finished_at=1796000005.0 + 10 * number,
    )
    return with_changes(figures, **changes)


def judged(number: int, **changes) -> dict:
    """A level as the stress_gate task returns it."""
    figures = metrics(number, **changes)
    breaches = judge_level(figures, PLAN_LEVELS[number - 1]["thresholds"])
    unmeasured = level_unmeasured(figures)
    return dict(
        figures,
        level=number,
        thresholds=PLAN_LEVELS[number - 1]["thresholds"],
        breaches=breaches,
        not_measured=unmeasured,
        verdict=verdict_of(bool(breaches), bool(unmeasured)),
    )


def final(levels: list[dict], shutdown: dict | None = STOP, pid_end: int = 10) -> dict:
    criteria = judge_run(
        levels,
        len(PLAN_LEVELS),
        baseline=BASELINE,
        recovery=BASELINE,
        shutdown=shutdown,
        start_pid=10,
        end_pid=pid_end,
    )
    verdicts = [c["verdict"] for c in criteria] + [lv["verdict"] for lv in levels]
    return {
        "verdict": verdict_of("FAIL" in verdicts, "NOT MEASURED" in verdicts),
        "criteria": criteria,
        "observer": {"pid_start": 10, "pid_end": pid_end},
    }


def played(levels: list[dict], **extra) -> dict:
    return {"played": True, "phase": "finish", "levels": levels, "final": final(levels), **extra}


def passing() -> dict:
    return played([judged(1), judged(2)])


def outcomes() -> dict:
    slow = [judged(1), judged(2, **{"latency_ms.p99": 91.3, "cpu_pct.sustained": 74.0})]
    return {
        "observer-01": passing(),
        "observer-02": played(slow),
        "observer-03": {
            "unreachable": "Failed to connect to the host via ssh: Connection timed out"
        },
        "observer-04": {
            "played": True,
            "phase": "level 1",
            "levels": [],
            "failure": "level 1: Follow level 1: the load failed: no Observer is reading /run/qts_observer/input.fifo",
        },
    }


def suites(report: dict) -> dict[str, ET.Element]:
    root = ET.fromstring(junit_xml(report))
    return {suite.get("name"): suite for suite in root.findall("testsuite")}


def failures(suite: ET.Element) -> dict[tuple[str, str], tuple[str, str]]:
    return {
        (case.get("classname"), case.get("name")): (failure.get("type"), failure.get("message"))
        for case in suite.findall("testcase")
        if (failure := case.find("failure")) is not None
    }


def test_each_host_has_its_verdict_and_the_run_fails_on_any():
    report = build_report(RUN, RUN["hosts"], outcomes())
    verdicts = {name: host["verdict"] for name, host in report["hosts"].items()}
    assert verdicts == {
        "observer-01": "PASS",
        "observer-02": "FAIL",
        "observer-03": "UNREACHABLE",
        "observer-04": "FAIL",
    }
    assert report["verdict"] == "FAIL"
    assert [r.split(":")[0] for r in report["reasons"]] == [
        "observer-02",
        "observer-03",
        "observer-04",
    ]
    assert report["reasons"][0] == (
        "observer-02: L2 max_latency_ms 91.3 > 75, L2 max_cpu_pct 74 > 60, "
        "run-wide graceful_degradation"  # p99 0.5 -> 91.3 ms: a collapse, by the real gate
    )
    assert report["reasons"][1] == "observer-03: unreachable"
    assert report["reasons"][2].startswith("observer-04: level 1: Follow level 1: the load failed")
    assert report["hosts"]["observer-04"]["levels_not_run"] == [1, 2]
    assert "Connection timed out" in report["hosts"]["observer-03"]["message"]
    for key in ("run_id", "profile", "seed", "started_at", "artifacts_dir"):
        assert report[key] == RUN[key]


def test_every_host_passing_is_a_pass():
    report = build_report(RUN, ["observer-01"], {"observer-01": passing()})
    assert report["verdict"] == "PASS" and report["reasons"] == []
    assert summary_lines(report)[-2] == "STRESS VERDICT: PASS"
    # Readers of report.json know which layout they read (2: capacity steps in the gate's words).
    assert report["schema_version"] == 2


@pytest.mark.parametrize(
    ("outcome", "verdict", "reason"),
    [
        # A level the gate judged PASS but never reported is not a pass.
        (played([judged(1)]), "FAIL", "L2 not run"),
        # Judged levels, then the host vanished before its run-wide verdict.
        (
            {"played": True, "phase": "level 2", "levels": [judged(1)]},
            "FAIL",
            "no run-wide verdict: the host became unreachable or stopped during level 2",
        ),
        # In the inventory but never part of the run (recorded nothing).
        ({}, "FAIL", "the host did not take part in the run"),
        # Stopped because another host failed: its levels passed, the message says why.
        (
            {
                **played([judged(1)]),
                "failure": "stopped by stress_any_errors_fatal: observer-02 failed or became unreachable",
            },
            "FAIL",
            "stopped by stress_any_errors_fatal: observer-02 failed",
        ),
        # Nothing to measure at the stop: NOT MEASURED, never PASS.
        (
            {
                **passing(),
                "final": final([judged(1), judged(2)], shutdown=dict(STOP, was_running=False)),
            },
            "NOT MEASURED",
            "NOT MEASURED clean_shutdown",
        ),
        # A level without monitor samples.
        (played([judged(1, samples=0), judged(2)]), "NOT MEASURED", "L1 NOT MEASURED resources"),
    ],
)
def test_no_host_passes_on_missing_evidence(outcome, verdict, reason):
    report = build_report(RUN, ["observer-01"], {"observer-01": outcome})
    assert report["hosts"]["observer-01"]["verdict"] == verdict
    assert report["verdict"] == "FAIL"
    assert reason in report["reasons"][0], report["reasons"]


def test_a_refused_run_reports_every_host_not_run():
    errors = ["stress_levels[1].rate must be greater than 0, got 0"]
    report = build_report(RUN, RUN["hosts"], {}, refused=errors)
    assert report["verdict"] == "FAIL"
    assert report["reasons"] == ["run refused before it started: " + errors[0]]
    assert {h["verdict"] for h in report["hosts"].values()} == {"NOT RUN"}
    run_suite = suites(report)["run"]
    assert failures(run_suite) == {("run", "plan"): ("refused", report["reasons"][0])}


def test_no_host_matched_is_a_fail_with_a_report():
    run = {
        **RUN,
        "hosts": [],
        "levels": [],
        "no_hosts": "no host matched: group 'observers' holds no host",
    }
    report = build_report(run, [], {})
    assert report["verdict"] == "FAIL"
    assert report["reasons"] == ["no host matched: group 'observers' holds no host"]
    assert table_lines(report) == ["(no host)"]
    assert "STRESS VERDICT: FAIL (no host matched" in summary_lines(report)[-2]
    assert list(suites(report)) == ["run"]


def test_console_table_and_criteria():
    report = build_report(RUN, RUN["hosts"], outcomes())
    lines = summary_lines(report)
    assert "STRESS REPORT run 20261201T120000Z-ab12 (profile smoke, seed 7)" in lines
    (header,) = [line for line in lines if line.startswith("host ")]
    for column in (
        "rate",
        "throughput",
        "p99 latency",
        "CPU",
        "Observer CPU",
        "memory",
        "Observer RSS",
    ):
        assert column in header
    (row,) = [line for line in lines if line.startswith("observer-02  L2")]
    assert row.split() == ["observer-02", "L2", "10/s", "10.000/s", "91.3", "ms", "74.0", "%", "0.5", "%",
                           "40.0", "%", "22", "MB", "0", "0", "FAIL"]  # fmt: skip
    assert [line.split()[-1] for line in lines if line.startswith("observer-03  -")] == [
        "UNREACHABLE"
    ]
    assert [line.split()[-2:] for line in lines if line.startswith("observer-04  L2")] == [
        ["NOT", "RUN"]
    ]
    assert lines[-1] == "stress artifacts: /artifacts/20261201T120000Z-ab12"
    assert lines[-2].startswith("STRESS VERDICT: FAIL (observer-02: L2 max_latency_ms 91.3 > 75")


def test_junit_has_a_case_per_level_criterion_with_time_and_figures():
    report = build_report(RUN, RUN["hosts"], outcomes())
    by_host = suites(report)
    passing_suite = by_host["observer-01"]
    cases = passing_suite.findall("testcase")
    assert len(cases) == 2 * len(LEVEL_CRITERIA) + 9
    assert failures(passing_suite) == {}
    for case in cases:
        assert float(case.get("time")) >= 0
        assert case.find("properties") is not None and case.find("system-out") is not None
    latency = next(
        c for c in cases if (c.get("classname"), c.get("name")) == ("observer-01.L1", "latency")
    )
    assert float(latency.get("time")) == 5.0
    properties = {p.get("name"): p.get("value") for p in latency.find("properties")}
    assert properties["p99_ms"] == "0.5" and properties["max_latency_ms_limit"] == "50.0"

    failed = failures(by_host["observer-02"])
    assert failed[("observer-02.L2", "latency")] == (
        "latency",
        "p99 processing latency 91.300 ms not under 75 ms (measured 91.3, limit 75)",
    )
    assert failed[("observer-02.L2", "cpu")][1].startswith("sustained CPU 74.0 % not under 60 %")
    unreachable = failures(by_host["observer-03"])
    assert len(unreachable) == 2 * len(LEVEL_CRITERIA) + 1
    assert "host unreachable" in unreachable[("observer-03.L1", "process")][1]


def test_junit_names_what_was_not_measured():
    outcome = played([judged(1, samples=0), judged(2)])
    report = build_report(RUN, ["observer-01"], {"observer-01": outcome})
    failed = failures(suites(report)["observer-01"])
    assert failed[("observer-01.L1", "cpu")][0] == "not_measured"
    assert failed[("observer-01.L1", "memory")][0] == "not_measured"
    assert failed[("observer-01.run", "resources")][0] == "not_measured"
    assert ("observer-01.L1", "latency") not in failed


def test_host_text_is_made_xml_safe():
    outcome = copy.deepcopy(outcomes()["observer-02"])
    outcome["levels"][1]["breaches"][0]["message"] = "latency \x1b[31m<high> & \x00rising\x1b[0m"
    report = build_report(RUN, ["observer-02"], {"observer-02": outcome})
    message = failures(suites(report)["observer-02"])[("observer-02.L2", "latency")][1]
    assert message.startswith("latency ?[31m<high> & ?rising?[0m")


def test_a_failure_beyond_the_figures_is_named_even_beside_a_breach():
    """A host stopped by another's failure, whose own first level breached a limit: both are
    said. A level's own failing verdict is not said twice."""
    breached = [judged(1, **{"cpu_pct.sustained": 95.0})]
    stopped = {
        **played(breached),
        "failure": "stopped by stress_any_errors_fatal: observer-02 failed or became unreachable",
    }
    crashed = {
        **played([judged(1), judged(2, failure="process failure: the Observer (pid 7) died")]),
        "failure": "level 2 (10/s) FAIL: process failure: the Observer (pid 7) died",
        "failure_is_verdict": True,
    }
    report = build_report(
        RUN, ["observer-01", "observer-02"], {"observer-01": stopped, "observer-02": crashed}
    )
    bystander, victim = report["reasons"]
    assert bystander.startswith(
        "observer-01: stopped by stress_any_errors_fatal: observer-02 failed"
    )
    assert "L1 max_cpu_pct 95 > 40" in bystander
    assert victim.startswith("observer-02: L2 process_failure: process failure")
    assert victim.count("process failure: the Observer (pid 7) died") == 1


def test_the_report_reads_each_host_from_its_outcome_alone():
    """stress_verdict reads a host's stress_outcome and nothing else of the host."""
    from ansible_collections.qts.observer.plugins.action.stress_verdict import host_outcome

    opened = {"phase": "plan", "unreachable": None, "failure": None, "failure_is_verdict": False,
              "levels": [], "warnings": [], "capacity": None, "final": None,
              "observer_identity": None, "collected": None}  # fmt: skip
    unreachable = host_outcome({"stress_outcome": dict(opened, unreachable="ssh: refused")})
    assert unreachable["played"] and unreachable["unreachable"] == "ssh: refused"
    report = build_report(RUN, ["observer-01"], {"observer-01": unreachable})
    assert report["hosts"]["observer-01"]["verdict"] == "UNREACHABLE"
    # A host that never opened its record did not take part, whatever else it holds.
    silent = host_outcome({"__stress_failure": "ignored", "stress_outcome": None})
    assert not silent["played"] and silent["levels"] == [] and silent["failure"] is None
    stopped = host_outcome({"stress_outcome": dict(opened, phase="level 2", failure="boom",
                                                   failure_is_verdict=True)})  # fmt: skip
    verdict, message = host_verdict(stopped, [1, 2])
    assert verdict == "FAIL" and message == "boom" and stopped["failure_is_verdict"]
