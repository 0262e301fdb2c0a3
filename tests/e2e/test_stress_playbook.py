"""End to end on the embedded default: `make smoke` against the real roles, Observer and
monitor on this machine (installed under a temporary root), judged and reported.

Every run leaves a report, whatever happened: each outcome here is one a CI job meets."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stressrun import (
    LAB_LEVELS,
    ROOT,
    SmokeRun,
    a_neighbour_keeps_one_core_busy,
    build_tarball,
    failure_messages,
    latest_report,
    lenient_level,
    levels_args,
    local_install_root,
    make_smoke,
    shell_env,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def local_root(tmp_path_factory) -> Iterator[Path]:
    """One install root for the module: the first run provisions, the others reuse it.
    The stress run stops the Observer; the monitor's supervisor is stopped here."""
    with local_install_root(tmp_path_factory.mktemp("qts_local")) as root:
        yield root


def local_smoke(local_root: Path, artifacts: Path, *extra: str):
    return make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={local_root}", *extra)


def test_make_smoke_passes_with_full_integrity(local_root, tmp_path):
    # The example's raised CPU, memory and recovery limits: a busy neighbour cannot fail this,
    # and the report says whose CPU it was.
    with a_neighbour_keeps_one_core_busy():
        result = local_smoke(local_root, tmp_path / "artifacts", "-e", f"@{LAB_LEVELS}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "STRESS VERDICT: PASS" in result.stdout
    for line in ("[progress] localhost L1", "[progress] localhost L2", "[level] localhost L2 PASS"):
        assert line in result.stdout
    assert "FAILED - RETRYING" not in result.stdout
    assert "sent 0/0" not in result.stdout and "cpu 0.0 %" not in result.stdout
    report, junit, run_dir = latest_report(tmp_path / "artifacts")
    assert report["verdict"] == "PASS"
    assert report["limits"]["max_cpu_pct"] == 100
    host = report["hosts"]["localhost"]
    assert [level["rate"] for level in host["levels"]] == [5, 50]
    for level in host["levels"]:
        assert level["verdict"] == "PASS", level["breaches"]
        assert level["sent"] == level["written"] == level["rate"] * level["duration_s"]
        assert level["lost"] == level["duplicated"] == level["modified"] == 0
        assert level["latency_ms"]["p99"] < level["thresholds"]["max_latency_ms"]
        assert level["samples"] >= 2 and level["observer_samples"] >= 2
        # The neighbour's core shows in the system's CPU, not in the Observer's share of it.
        one_core = 100.0 / level["cpu_count"]
        assert level["cpu_pct"]["sustained"] >= 0.8 * one_core, level["cpu_pct"]
        assert level["observer_cpu_pct"]["sustained"] / level["cpu_count"] < 0.5 * one_core
    assert {c["name"]: c["verdict"] for c in host["criteria"]} == dict.fromkeys(
        (
            "stability", "scaling", "resources", "error_rate", "integrity",
            "graceful_degradation", "recovery", "contract", "clean_shutdown",
        ),
        "PASS",
    )  # fmt: skip
    assert not junit.findall(".//failure")
    assert all(case.get("time") for case in junit.iter("testcase"))
    # This run's data only, fetched whole; the host keeps none of the run's files.
    sent = sum(level["sent"] for level in host["levels"])
    log = (run_dir / "localhost" / "observer.log").read_text()
    assert log.count("PatternRecord dispatched") == sent
    for name in ("system_monitor.csv", "metrics.jsonl", "L1.sent.jsonl", "L2.sent.jsonl"):
        assert (run_dir / "localhost" / name).stat().st_size > 0, name
    assert host["artifacts"]["problems"] == []
    assert not list((local_root / "run" / "qts_observer" / "stress").iterdir())


def test_impossible_threshold_fails_names_the_breach_and_still_reports(local_root, tmp_path):
    levels = [lenient_level(20, 5, min_throughput=1, max_latency_ms=0.001)]
    result = local_smoke(local_root, tmp_path / "artifacts", *levels_args(levels))
    assert result.returncode != 0
    assert "p99 processing latency" in result.stdout and "not under 0.001 ms" in result.stdout
    report, junit, _unused = latest_report(tmp_path / "artifacts")
    assert report["verdict"] == "FAIL"
    (level,) = report["hosts"]["localhost"]["levels"]
    (breach,) = [b for b in level["breaches"] if b["criterion"] == "max_latency_ms"]
    assert breach["limit"] == 0.001 and breach["measured"] > 0.001
    assert level["lost"] == 0
    assert any("0.001" in message for message in failure_messages(junit))
    # The judging tasks print their verdict in one line, not their results as YAML.
    assert "qts_stress_host:" not in result.stdout and "qts_stress_level:" not in result.stdout


def test_bad_variables_are_refused_before_anything_starts_with_a_report(local_root, tmp_path):
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
        "-e",
        "stress_any_errors_fatal=maybe",
        *levels_args(levels, limits={"max_cpu": 90}),
    )
    assert result.returncode != 0
    for problem in (
        "stress_levels[1].rate must be greater than 0",
        "missing threshold 'max_memory_pct'",
        "stress_any_errors_fatal must be a boolean",
        "stress_limits: unknown limit 'max_cpu'",
    ):
        assert problem in result.stdout, problem
    assert "Install the Observer" not in result.stdout, "provisioning ran before the plan"
    report, junit, _unused = latest_report(tmp_path / "artifacts")
    assert report["verdict"] == "FAIL"
    assert report["reasons"][0].startswith("run refused before it started: ")
    assert report["hosts"]["localhost"]["verdict"] == "NOT RUN"
    assert "STRESS VERDICT: FAIL (run refused before it started" in result.stdout
    assert any("stress_limits" in message for message in failure_messages(junit))


def test_a_missing_inventory_is_a_fail_with_a_report(tmp_path):
    artifacts = tmp_path / "artifacts"
    (artifacts / "previous-run").mkdir(parents=True)
    (artifacts / "latest").symlink_to("previous-run")
    result = make_smoke(tmp_path / "no-such-inventory", artifacts)
    assert result.returncode != 0, result.stdout[-3000:]
    report, junit, run_dir = latest_report(artifacts)
    assert run_dir.name != "previous-run", "latest still points at an older run"
    assert report["verdict"] == "FAIL"
    assert report["hosts"] == {}
    assert report["reasons"][0].startswith("no host matched: group 'observers'")
    assert "STRESS VERDICT: FAIL (no host matched" in result.stdout
    assert failure_messages(junit) == [report["reasons"][0]]


def test_every_host_unreachable_is_a_fail_with_a_report(tmp_path):
    inventory = tmp_path / "hosts.yml"
    # Nothing listens on 127.0.0.250:2299: a host that is down.
    inventory.write_text(
        "observers:\n  hosts:\n    observer-down:\n      ansible_host: 127.0.0.250\n"
        "      ansible_port: 2299\n      ansible_ssh_common_args: -o ConnectTimeout=3\n"
    )
    result = make_smoke(inventory, tmp_path / "artifacts")
    assert result.returncode != 0
    report, junit, _unused = latest_report(tmp_path / "artifacts")
    assert report["verdict"] == "FAIL"
    entry = report["hosts"]["observer-down"]
    assert entry["verdict"] == "UNREACHABLE"
    assert "Connection refused" in entry["message"]
    assert "STRESS VERDICT: FAIL (observer-down: unreachable)" in result.stdout
    messages = failure_messages(junit)
    assert messages and all("unreachable" in m.lower() for m in messages), messages


def test_a_stopped_observer_is_refused_and_says_how_to_start_it(local_root, tmp_path):
    """`--tags stress` skips the provisioning that starts the Observer; the runs above ended
    by stopping it. Nothing may read PASS then: the run is refused, and says what to do."""
    pidfile = local_root / "run" / "qts_observer" / "observer.pid"
    assert local_root.exists() and not pidfile.exists(), "the Observer should be stopped here"
    result = local_smoke(
        local_root, tmp_path / "artifacts", "-e", f"@{LAB_LEVELS}", "--tags", "stress"
    )
    assert result.returncode != 0
    report, _unused, _unused = latest_report(tmp_path / "artifacts")
    entry = report["hosts"]["localhost"]
    assert entry["verdict"] == "FAIL"
    assert entry["message"].startswith("refused: the Observer is not running on localhost")
    assert "Start it with the provisioning" in entry["message"]
    assert entry["levels"] == []
    assert "PASS" not in {c["verdict"] for c in entry["criteria"]}
    assert {c["name"] for c in entry["criteria"] if c["verdict"] == "NOT MEASURED"} >= {
        "clean_shutdown", "resources", "error_rate", "contract", "integrity",
    }  # fmt: skip
    assert "[progress]" not in result.stdout


def test_observer_killed_during_a_level_fails_with_process_failure(local_root, tmp_path):
    artifacts = tmp_path / "artifacts"
    run = SmokeRun(
        "inventories/local",
        artifacts,
        "-e",
        f"qts_local_root={local_root}",
        *levels_args([lenient_level(20, 5), lenient_level(20, 20)]),
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


def test_the_installed_collection_reports_with_a_plain_ansible_cfg(local_root, tmp_path):
    """Built and installed with ansible-galaxy, run as `ansible-playbook qts.observer.stress`
    with a user's ansible.cfg that enables nothing: the same report, junit.xml and verdict,
    and one line at the start saying what enabling the callback would add."""
    galaxy = ROOT / ".venv" / "bin" / "ansible-galaxy"
    # Nothing of this checkout's Ansible settings: a user's machine has none of them.
    env = shell_env()
    tarball = build_tarball(tmp_path / "dist")
    collections = tmp_path / "collections"
    installed = subprocess.run(
        [str(galaxy), "collection", "install", "--force", str(tarball), "-p", str(collections)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (
        collections / "ansible_collections" / "qts" / "observer" / "playbooks" / "stress.yml"
    ).is_file()
    config = tmp_path / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {collections}\n")
    artifacts = tmp_path / "artifacts"
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ansible-playbook"), "qts.observer.stress",
            "-i", str(ROOT / "inventories" / "local"),
            "-e", "stress_profile=smoke", "-e", f"@{LAB_LEVELS}",
            "-e", f"qts_local_root={local_root}", "-e", f"stress_artifacts_dir={artifacts}",
        ],
        cwd=tmp_path, env={**env, "ANSIBLE_CONFIG": str(config)},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900,
        check=False,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out[-4000:] + result.stderr[-2000:]
    assert "STRESS VERDICT: PASS" in out
    assert "[progress] localhost L2" in out  # the progress lines need no callback
    assert "[level]" not in out  # the callback's lines: not enabled here
    hint = [
        line
        for line in (out + result.stderr).splitlines()
        if "callbacks_enabled = qts.observer.stress_report" in line
    ]
    assert len(hint) == 1, hint
    report, junit, run_dir = latest_report(artifacts)
    assert report["verdict"] == "PASS"
    assert [lv["rate"] for lv in report["hosts"]["localhost"]["levels"]] == [5, 50]
    assert junit.get("tests") and not junit.findall(".//failure")
    assert (run_dir / "localhost" / "observer.log").is_file()
