"""End to end on the embedded default: `make smoke` against the real roles, Observer and
monitor on this machine (installed under a temporary root), judged and reported."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_root(tmp_path_factory) -> Iterator[Path]:
    """One install root for the module: the first run provisions, the others reuse it.
    The stress run stops the Observer; the monitor's supervisor is stopped here."""
    root = tmp_path_factory.mktemp("qts_local")
    yield root
    for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)


def make_smoke(local_root: Path, artifacts: Path, *extra: str, background: bool = False):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    args = " ".join(
        ["-e", f"qts_local_root={local_root}", "-e", f"stress_artifacts_dir={artifacts}", *extra]
    )
    argv = ["make", "--no-print-directory", "smoke", f"ARGS={args}"]
    if background:
        return subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def levels_args(levels: list[dict]) -> list[str]:
    """`-e` arguments overriding the profile's levels, quoted for make's shell."""
    return ["-e", "'" + json.dumps({"stress_levels": levels}, separators=(",", ":")) + "'"]


def latest_report(artifacts: Path) -> tuple[dict, ET.Element, Path]:
    run_dir = (artifacts / "latest").resolve()
    report = json.loads((run_dir / "report.json").read_text())
    junit = ET.parse(run_dir / "junit.xml").getroot()
    return report, junit, run_dir


def test_make_smoke_passes_with_full_integrity(local_root, tmp_path):
    result = make_smoke(local_root, tmp_path / "artifacts")
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
    levels = [
        {
            "rate": 20,
            "duration_s": 3,
            "thresholds": {
                "min_throughput": 1,
                "max_latency_ms": 0.001,
                "max_cpu_pct": 100,
                "max_memory_pct": 100,
            },
        }
    ]
    result = make_smoke(
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
    assert any("0.001" in (f.get("message") or "") for f in junit.iter("failure"))


def test_bad_levels_are_refused_before_anything_starts(local_root, tmp_path):
    levels = [
        {
            "rate": 0,
            "duration_s": 3,
            "thresholds": {"min_throughput": 1, "max_latency_ms": 5, "max_cpu_pct": 100},
        }
    ]
    result = make_smoke(
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
    levels = [
        {
            "rate": 20,
            "duration_s": 3,
            "thresholds": {
                "min_throughput": 19,
                "max_latency_ms": 100,
                "max_cpu_pct": 100,
                "max_memory_pct": 100,
            },
        },
        {
            "rate": 20,
            "duration_s": 20,
            "thresholds": {
                "min_throughput": 19,
                "max_latency_ms": 100,
                "max_cpu_pct": 100,
                "max_memory_pct": 100,
            },
        },
    ]
    process = make_smoke(
        local_root,
        artifacts,
        *levels_args(levels),
        background=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    pidfile = local_root / "run" / "qts_observer" / "observer.pid"
    deadline = time.monotonic() + 600
    # Kill only once level 2 is really sending (the pidfile's PID is then the one watched).
    sending = re.compile(r"\[progress\] localhost L2 .* sent ([1-9][0-9]*)/")
    while not any(sending.search(line) for line in output):
        assert process.poll() is None and time.monotonic() < deadline, "".join(output)[-4000:]
        time.sleep(0.2)
    victim = int(pidfile.read_text())
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    assert process.wait(timeout=600) != 0
    reader.join(timeout=10)
    text = "".join(output)
    report, junit, run_dir = latest_report(artifacts)
    host = report["hosts"]["localhost"]
    assert host["verdict"] == "FAIL"
    level2 = host["levels"][1]
    assert level2["verdict"] == "FAIL"
    assert level2["failure"].startswith("process failure")
    assert level2["finished_at"] - killed_at < 2.0, "the level did not end within 2 s of the crash"
    assert "process failure" in text
    criteria = {c["name"]: c["verdict"] for c in host["criteria"]}
    assert criteria["stability"] == "FAIL"
    assert any("process failure" in (f.get("message") or "") for f in junit.iter("failure"))
    for name in ("system_monitor.csv", "observer.log", "metrics.jsonl"):
        assert (run_dir / "localhost" / name).exists(), name
