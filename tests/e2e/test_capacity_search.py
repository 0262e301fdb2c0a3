"""The capacity search end to end, as users run it (`make smoke` with stress_profile=capacity)
on this machine: against an Observer with a known limit, and with the real load generator
held under a CPU cap below the Observer's limit. Real processes, pipes, records and report.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from capped import generator_capped, needs_cpu_cap, provision_uncapped
from stressrun import (
    LAB_LEVELS,
    LENIENT_LIMITS,
    ROOT,
    latest_report,
    local_install_root,
    make_smoke,
)

TEAM_OBSERVER = ROOT / "tests" / "observers" / "team_observer"
PROFILE = ROOT / "examples" / "runbook-observer.yml"
PACE = 2000  # the paced team Observer reads at most this many snapshots a second

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def local_root(tmp_path: Path) -> contextlib.AbstractContextManager[Path]:
    """An install root for one run; its supervised services are stopped afterwards."""
    return local_install_root(tmp_path / "root")


def capacity_run(tmp_path: Path, root: Path, variables: dict, *extra: str):
    variables_file = tmp_path / "vars.json"
    variables_file.write_text(json.dumps(variables))
    artifacts = tmp_path / "artifacts"
    run = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}", *extra,
                     "-e", f"@{variables_file}")  # fmt: skip
    report, junit, _unused = latest_report(artifacts)
    return run, report, junit


def test_an_observer_paced_at_2000_per_s_is_found_within_10_pct_limited_by_throughput(tmp_path):
    # After the fixed levels (lab-levels.json: two short levels, limits a busy runner cannot
    # break), in the same run: the levels and run-wide criteria are still judged.
    variables = {
        "observer_source_dir": str(TEAM_OBSERVER),
        "observer_environment": {"QTS_OBSERVER_STANDALONE": "1",
                                 "TEAM_OBSERVER_MAX_RATE": str(PACE)},
        "stress_capacity_search": True,
        # What limits this Observer is its pace: a saturated runner (the other test jobs) may
        # delay the generator and the Observer's dispatch, which must not end the search first.
        "stress_capacity": {"start_rate": 250, "warmup_s": 1, "step_s": 4,
                            "generator_max_lateness_ms": 2000, "max_latency_ms": 5000},
        # A floor above the limit: the host fails, and names its capacity.
        "stress_min_capacity": 3000,
    }  # fmt: skip
    with local_root(tmp_path) as root:
        run, report, junit = capacity_run(
            tmp_path, root, variables, "-e", f"@{PROFILE}", "-e", f"@{LAB_LEVELS}"
        )
    entry = report["hosts"]["localhost"]
    result = entry["capacity"]["result"]
    assert result["ending"] == "narrowed", run.stdout[-3000:]
    assert result["limited_by"] == "throughput"
    assert abs(result["highest_sustainable_rate"] - PACE) <= 0.10 * PACE
    assert result["first_failing_rate"] > result["highest_sustainable_rate"]
    assert result["failed_how"] == "graceful degradation"
    assert "back-pressure" in result["failing_breaches"][0]["message"]
    # Every snapshot of every step, the failing ones too, was written: back-pressure, no drop.
    for point in result["curve"]:
        assert point["sent"] > 0 and point["lost"] == point["duplicated"] == 0, point
        assert point["written"] == point["sent"]
    # The curve: every step with its figures, in the console table too.
    assert {"rate", "achieved_rate", "throughput", "latency_ms", "cpu_pct", "memory_pct",
            "buffer_depth_max"} <= set(result["curve"][0])  # fmt: skip
    assert "CAPACITY" in run.stdout and "limited by" in run.stdout
    # The floor: a FAIL named in the verdict and in junit's capacity testcase.
    criteria = {c["name"]: c for c in entry["criteria"]}
    assert criteria["capacity"]["verdict"] == "FAIL" and criteria["capacity"]["limit"] == 3000
    assert criteria["integrity"]["verdict"] == "PASS"
    assert run.returncode != 0 and report["verdict"] == "FAIL"
    assert "run-wide capacity" in report["reasons"][0]
    # The levels ran first and passed; the run-wide criteria over them too.
    assert [lv["verdict"] for lv in entry["levels"]] == ["PASS", "PASS"]
    assert {"scaling", "resources", "error_rate", "graceful_degradation"} <= set(criteria)
    assert all(c["verdict"] == "PASS" for name, c in criteria.items() if name != "capacity")
    # The steps are levels numbered after the fixed ones: their run_ids never collide.
    assert min(point["step"] for point in result["curve"]) == 1
    case = junit.find(".//testcase[@classname='localhost.run'][@name='capacity']")
    assert case is not None and case.find("failure") is not None
    assert "floor 3000/s" in case.find("failure").get("message")


@needs_cpu_cap
def test_a_generator_capped_below_the_observer_is_reported_as_generator_bound(tmp_path):
    # The generator is held to 5 % of one CPU (1 ms each 20 ms): about 8000/s on this machine,
    # a quarter or less of what the reference Observer sustains even beside six busy loops
    # (a cap of 15 % reached about 30000/s, as close as the Observer's limit then). Only its
    # ceiling may end the search: a generator that cannot even deliver the start rate is an
    # unmeasured capacity, not this test's subject. So its first steps must pass whatever the
    # machine's load: throttled, and scheduled late beside busy jobs, a generator can send a
    # step's last lines 50 ms late, which is already 1 % short of a 4-second step. Short by
    # 10 %, or late by a second, is what only its ceiling does (it then sends half the rate,
    # seconds late). The throughput a step needs is lowered below that share, so that a
    # generator short by 10 % is never taken for an Observer that wrote too little.
    remote_tmp = tmp_path / "ansible-tmp"
    variables = {
        "stress_profile": "capacity",
        "stress_capacity": {"start_rate": 250, "warmup_s": 1, "step_s": 3, "max_latency_ms": 5000,
                            "generator_min_ratio": 0.9, "generator_max_lateness_ms": 1000,
                            "min_throughput_ratio": 0.85},
        "stress_limits": LENIENT_LIMITS,
        # This run's modules in a folder of its own: the cap finds its generator there.
        "ansible_remote_tmp": str(remote_tmp),
    }  # fmt: skip
    with local_root(tmp_path) as root:
        provision_uncapped(root)
        with generator_capped(remote_tmp, quota_us=1000, period_us=20000) as capped:
            run, report, _unused = capacity_run(
                tmp_path, root, variables, "--skip-tags", "provision"
            )
    # Every step's generator was capped (and the preparation's check that the Observer runs,
    # a run of the same module in check mode).
    steps = report["hosts"]["localhost"]["capacity"]["result"]["curve"]
    assert len(capped) >= len(steps), (capped, steps)
    result = report["hosts"]["localhost"]["capacity"]["result"]
    assert result["ending"] == "generator", run.stdout[-3000:]
    assert result["limited_by"] == "generator"
    assert result["summary"].startswith("limited by the load generator at ")
    last = max(result["curve"], key=lambda point: point["step"])
    assert last["breaches"][0]["criterion"] == "generator"
    # Held to 5 % of a core, the generator falls behind its schedule: it ends short of the
    # offered rate, or, when it caught up in bursts before the step ended, late (p99 over
    # a second). Either is the evidence of a generator-bound step; which one depends on how
    # the cap's periods fall on a busy machine.
    short = last["achieved_rate"] < 0.9 * last["rate"]
    late = last["lateness_ms"]["p99"] > 1000.0
    assert short or late, last
    assert result["generator_rate"] == last["achieved_rate"]
    # Not an Observer limit: nothing lost, and no Observer criterion named at that step.
    assert all(point["lost"] == 0 for point in result["curve"])
    # Its first step sustained, the capacity is measured: a PASS, with no floor to hold.
    assert result["highest_sustainable_rate"] >= 250, result["curve"]
    assert report["hosts"]["localhost"]["verdict"] == "PASS", report["reasons"]
    assert run.returncode == 0
