"""End to end on the embedded default: `make smoke` against the real roles, Observer and
monitor on this machine (installed under a temporary root), judged and reported."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stressrun import (
    SmokeRun,
    failure_messages,
    latest_report,
    lenient_level,
    levels_args,
    make_smoke,
)


@pytest.fixture(scope="module")
def local_root(tmp_path_factory) -> Iterator[Path]:
    """One install root for the module: the first run provisions, the others reuse it.
    The stress run stops the Observer; the monitor's supervisor is stopped here."""
    root = tmp_path_factory.mktemp("qts_local")
    yield root
    for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)


def local_smoke(local_root: Path, artifacts: Path, *extra: str):
    return make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={local_root}", *extra)


def test_make_smoke_passes_with_full_integrity(local_root, tmp_path):
    result = local_smoke(local_root, tmp_path / "artifacts")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "STRESS VERDICT: PASS" in result.stdout
    for line in ("[progress] localhost L1", "[progress] localhost L4"):
        assert line in result.stdout
    report, junit, run_dir = latest_report(tmp_path / "artifacts")
    assert report["verdict"] == "PASS"
    host = report["hosts"]["localhost"]
    assert [level["rate"] for level in host["levels"]] == [5, 10, 25, 50]
    for level in host["levels"]:
        assert level["verdict"] == "PASS", level["breaches"]
        assert level["sent"] == level["written"] == level["rate"] * level["duration_s"]
        assert level["lost"] == level["duplicated"] == level["modified"] == 0
        assert level["latency_ms"]["p99"] < level["thresholds"]["max_latency_ms"]
    assert {c["name"]: c["verdict"] for c in host["criteria"]}["integrity"] == "PASS"
    assert not junit.findall(".//failure")
    for name in ("system_monitor.csv", "observer.log", "metrics.jsonl"):
        assert (run_dir / "localhost" / name).stat().st_size > 0, name


def test_impossible_threshold_fails_names_the_breach_and_still_reports(local_root, tmp_path):
    levels = [lenient_level(20, 3, min_throughput=1, max_latency_ms=0.001)]
    result = local_smoke(
        local_root,
        tmp_path / "artifacts",
        *levels_args(levels),
    )
    assert result.returncode != 0
    assert "p99 processing latency" in result.stdout and "not under 0.001 ms" in result.stdout
    report, junit, _ = latest_report(tmp_path / "artifacts")
    assert report["verdict"] == "FAIL"
    (level,) = report["hosts"]["localhost"]["levels"]
    (breach,) = [b for b in level["breaches"] if b["criterion"] == "max_latency_ms"]
    assert breach["limit"] == 0.001 and breach["measured"] > 0.001
    assert level["lost"] == 0
    assert any("0.001" in message for message in failure_messages(junit))


def test_bad_levels_are_refused_before_anything_starts(local_root, tmp_path):
    levels = [
        {
            "rate": 0,
            "duration_s": 3,
            "thresholds": {"min_throughput": 1, "max_latency_ms": 5, "max_cpu_pct": 100},
        }
    ]
    result = local_smoke(
        local_root,
        tmp_path / "artifacts",
        *levels_args(levels),
    )
    assert result.returncode != 0
    assert "stress_levels[1].rate must be greater than 0" in result.stdout
    assert "missing threshold 'max_memory_pct'" in result.stdout
    assert "Install the Observer" not in result.stdout, (
        "provisioning ran before the plan was validated"
    )


def test_observer_killed_during_a_level_fails_with_process_failure(local_root, tmp_path):
    artifacts = tmp_path / "artifacts"
    run = SmokeRun(
        "inventories/local",
        artifacts,
        "-e",
        f"qts_local_root={local_root}",
        *levels_args([lenient_level(20, 3), lenient_level(20, 20)]),
    )
    # Kill only once level 2 is really sending (the pidfile's PID is then the one watched).
    run.wait_for(r"\[progress\] localhost L2 .* sent [1-9][0-9]*/")
    victim = int((local_root / "run" / "qts_observer" / "observer.pid").read_text())
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    assert run.wait() != 0
    report, junit, run_dir = latest_report(artifacts)
    host = report["hosts"]["localhost"]
    assert host["verdict"] == "FAIL"
    level2 = host["levels"][1]
    assert level2["verdict"] == "FAIL"
    assert level2["failure"].startswith("process failure")
    assert level2["finished_at"] - killed_at < 2.0, "the level did not end within 2 s of the crash"
    assert "process failure" in run.text
    criteria = {c["name"]: c["verdict"] for c in host["criteria"]}
    assert criteria["stability"] == "FAIL"
    assert any("process failure" in message for message in failure_messages(junit))
    for name in ("system_monitor.csv", "observer.log", "metrics.jsonl"):
        assert (run_dir / "localhost" / name).exists(), name
