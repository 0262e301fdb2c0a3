"""Soaks on this machine (`make smoke` with the soak profile, as users run it, shortened): a team
Observer leaking a known amount a minute is caught with its slope and the limit it reaches; a
sawtooth and a one-time growth are not trends; the real reference Observer, beside a neighbour
keeping a core busy, is not flagged, and a soak stopped early is judged on what ran."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import epoch
from stressrun import (
    LENIENT_LIMITS,
    ROOT,
    SmokeRun,
    a_neighbour_keeps_one_core_busy,
    latest_report,
    lenient_level,
    local_install_root,
    make_smoke,
    user_env,
)

TEAM_OBSERVER = ROOT / "tests" / "observers" / "team_observer"
RUNBOOK = yaml.safe_load((ROOT / "examples" / "runbook-observer.yml").read_text())
# Short soaks: windows of 10 s after 20 s (the team Observer fills nothing first).
SHORT_TRENDS = {"window_s": 10, "warmup_s": 20}

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def soak_args(tmp_path: Path, duration_s: int, **variables) -> list[str]:
    """`-e` arguments for one steady level of 25/s for ``duration_s`` with lenient CPU and
    memory limits (a busy machine cannot fail it), and ``variables`` (in a vars file: make's
    shell would split a JSON argument with spaces)."""
    path = tmp_path / "soak.json"
    path.write_text(json.dumps({"stress_levels": [lenient_level(25, duration_s)],
                                "stress_limits": LENIENT_LIMITS, **variables}))  # fmt: skip
    return ["-e", f"@{path}"]


def team(fault: str, **environment: str) -> dict:
    return {
        **RUNBOOK,
        "observer_source_dir": str(TEAM_OBSERVER),
        "observer_environment": {"QTS_OBSERVER_STANDALONE": "1", "TEAM_OBSERVER_FAULT": fault,
                                 **environment},
    }  # fmt: skip


def trends_of(report: dict) -> dict[str, dict]:
    (level,) = report["hosts"]["localhost"]["levels"]
    return {trend["series"]: trend for trend in level["trends"]}


def observer_rss(run_dir: Path, level: dict) -> list[float]:
    """The Observer's RSS (MB) the monitor sampled during the level, from the run's copy."""
    with (run_dir / "localhost" / "system_monitor.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [float(row["Observer_Memory_MB"]) for row in rows
            if row["Observer_Memory_MB"]
            and level["started_at"] <= epoch(row["Timestamp"]) <= level["finished_at"]]  # fmt: skip


def test_a_leak_of_6_mb_a_minute_is_caught_with_its_slope_and_the_limit_it_reaches(tmp_path):
    """A team Observer keeping 6 MB more every minute (360 MB/h), 120 s at 25/s: its RSS trend
    fails with a slope within 20 % of the truth, and names the 300 MB limit it reaches."""
    artifacts = tmp_path / "artifacts"
    variables = dict(team("leak", TEAM_OBSERVER_LEAK_MB_PER_MIN="6"), stress_profile="soak",
                     stress_soak_duration_s=120, stress_setup_wait_s=10, stress_final_cooldown_s=20,
                     stress_trends=dict(SHORT_TRENDS, limits={"rss_mb": 300}))  # fmt: skip
    (tmp_path / "leak.json").write_text(json.dumps(variables))
    with local_install_root(tmp_path / "root") as root:
        # The soak profile as `make soak` runs it (its spec level's thresholds), shortened.
        done = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                          "-e", f"@{tmp_path / 'leak.json'}")  # fmt: skip
    report, junit, _run_dir = latest_report(artifacts)
    rss = trends_of(report)["rss_mb"]
    assert done.returncode != 0 and report["verdict"] == "FAIL", done.stdout[-5000:]
    assert rss["verdict"] == "FAIL" and abs(rss["slope_per_h"] - 360.0) <= 0.2 * 360.0, rss
    assert rss["lower_per_h"] > 10.0 and rss["windows"] == 10 and rss["limit"] == 300.0
    assert [b["criterion"] for b in rss["breaches"]] == ["trend_rss_mb", "trend_rss_mb_limit"]
    assert re.search(r"reaches the 300 MB limit in 0\.\d h", rss["message"]), rss["message"]
    assert "[trend] localhost L1 FAIL: Observer RSS +" in done.stdout
    assert re.search(r"localhost\s+L1\s+rss_mb\s+\+3\d\d MB", done.stdout), done.stdout[-3000:]
    assert report["profile"] == "soak" and "L1 trend rss_mb FAIL" in report["reasons"][0]
    (case,) = [c for c in junit.iter("testcase") if c.get("name") == "L1.rss_mb"]
    assert case.get("classname") == "localhost.trends"
    assert case.find("failure").get("message").startswith("Observer RSS +3")
    # Kept in the run history, listed by `make history`.
    listed = make_history(artifacts / "history.sqlite")
    assert re.search(r"L1  trend rss_mb\s+\+3\d\d MB/h \(\d+ to \d+\)\s+FAIL", listed), listed


def make_history(db: Path) -> str:
    done = subprocess.run(["make", "--no-print-directory", "history", f"HISTORY={db}"], cwd=ROOT,
                          env=user_env(), capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    return done.stdout


@pytest.mark.parametrize(
    ("fault", "environment", "shown"),
    [
        # 24 MB over the second half of every 6 s, then freed: a buffer flushed.
        ("sawtooth", {}, lambda rss: max(rss) - min(rss) >= 15.0),
        # 40 MB more once, 40 s after its first snapshot (20 s after the warm-up), then flat.
        ("step", {"TEAM_OBSERVER_STEP_AFTER_S": "40"}, lambda rss: rss[-1] - rss[0] >= 35.0),
    ],
)
def test_a_sawtooth_and_a_one_time_growth_are_not_flagged(tmp_path, fault, environment, shown):
    """The team Observer's RSS saws up and down, or grows once and stays: 120 s at 25/s, beside a
    neighbour keeping a core busy; no trend fails, and the run passes."""
    artifacts = tmp_path / "artifacts"
    variables = dict(team(fault, **environment), stress_trends=SHORT_TRENDS)
    with a_neighbour_keeps_one_core_busy(), local_install_root(tmp_path / "root") as root:
        done = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                          *soak_args(tmp_path, 120, **variables))  # fmt: skip
    report, _junit, run_dir = latest_report(artifacts)
    (level,) = report["hosts"]["localhost"]["levels"]
    # The behaviour was there, in the monitor's samples.
    assert shown(observer_rss(run_dir, level)), observer_rss(run_dir, level)
    found = trends_of(report)
    assert {name: t["verdict"] for name, t in found.items()} == dict.fromkeys(found, "PASS"), [
        t["message"] for t in found.values()]  # fmt: skip
    assert done.returncode == 0 and report["verdict"] == "PASS", done.stdout[-5000:]
    assert found["rss_mb"]["windows"] == 10


def test_the_reference_observer_soaked_beside_a_busy_core_is_not_flagged_and_can_be_stopped_early(
    tmp_path,
):
    """The real reference Observer at 25/s, planned for 700 s and stopped once 300 s have run:
    judged on those 300 s (windows of 10 s after 200 s, its validator's memos filled), every
    trend passes, the page draws each series."""
    artifacts = tmp_path / "artifacts"
    variables = {"stress_trends": {"window_s": 10, "warmup_s": 200}}
    with a_neighbour_keeps_one_core_busy(), local_install_root(tmp_path / "root") as root:
        run = SmokeRun("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                       *soak_args(tmp_path, 700, **variables))  # fmt: skip
        stop = Path(run.wait_for(r"judge what ran: touch (\S+/stop)").group(1))
        run.wait_for(r"L1 25/s 3[0-9]{2}s/700s")
        stop.touch()
        run.wait_for(r"stopping early")
        returncode = run.wait()
    report, junit, run_dir = latest_report(artifacts)
    (level,) = report["hosts"]["localhost"]["levels"]
    found = trends_of(report)
    assert returncode == 0 and report["verdict"] == "PASS", run.text[-5000:]
    # Asked at the controller's next poll (every 5 s; later on a loaded runner).
    assert 300.0 <= level["stopped_early_s"] <= 345.0
    assert level["duration_s"] == level["stopped_early_s"]
    assert level["planned_duration_s"] == 700.0 and level["lost"] == 0
    assert level["sent"] == pytest.approx(25 * level["stopped_early_s"], abs=30)
    assert {name: t["verdict"] for name, t in found.items()} == dict.fromkeys(found, "PASS"), [
        t["message"] for t in found.values()]  # fmt: skip
    # Whole windows of 10 s after the 200 s: 10 to 14 of them.
    assert all(10 <= t["windows"] <= 14 for t in found.values())
    assert "TRENDS" in run.text and "[trend] localhost L1 PASS: Observer RSS" in run.text
    page = (run_dir / "report.html").read_text()
    for name in found:
        assert 'data-chart="soak-L1-%s"' % name in page
    assert len([c for c in junit.iter("testcase") if c.get("classname") == "localhost.trends"]) == 5
