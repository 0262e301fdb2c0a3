"""The stress run on several hosts at once, over real SSH, with faults: three lab hosts
(tools/lab.py: systemd-nspawn containers booting systemd, so the roles take their systemd
path), the real roles, Observers and monitors, `make smoke` as users run it.

Lab hosts share this machine's CPU (each monitor sees the whole machine), so the levels here
use lenient thresholds: only a crash, lost data, an unreachable host or an unclean stop can
fail them.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import NEEDS_ROOT, Lab, is_root
from stressrun import (
    ROOT,
    SmokeRun,
    failure_messages,
    latest_report,
    lenient_level,
    levels_args,
    make_smoke,
)

LAB = Lab(name="pytest-stress", base_addr="127.0.0.241", port=2241)
HOSTS = ["observer-01", "observer-02", "observer-03"]
VICTIM = "observer-02"
# A host of the inventory where nothing answers: a machine that is down.
DOWN_HOST, DOWN_ADDR = "observer-09", "127.0.0.249"
RAW_DATA = ("system_monitor.csv", "observer.log", "metrics.jsonl")
# Kill the Observer named by the pidfile, from inside the host (its own PID namespace).
KILL_OBSERVER = "sudo -n sh -c 'kill -KILL \"$(cat /run/qts_observer/observer.pid)\"'"

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lab() -> Iterator[dict[str, str]]:
    """Three lab hosts for the module (the first run provisions them); always torn down."""
    LAB.run("down")
    try:
        LAB.run("up", "--hosts", str(len(HOSTS)))
        addrs = {host["name"]: host["addr"] for host in LAB.state()["hosts"]}
        assert sorted(addrs) == HOSTS
        yield addrs
    finally:
        LAB.run("down")
        assert not LAB.processes()


def kill_observer_mid_level_2(run: SmokeRun, addr: str) -> float:
    """SIGKILL the host's Observer once level 2 is sending there; the time of the kill."""
    run.wait_for(rf"\[progress\] {VICTIM} L2 .* sent [1-9][0-9]*/")
    killed_at = time.time()
    LAB.ssh(addr, KILL_OBSERVER)
    return killed_at


def assert_raw_data_fetched(run_dir: Path, hosts: list[str]) -> None:
    for host in hosts:
        for name in RAW_DATA:
            assert (run_dir / host / name).is_file(), f"{host}/{name} not fetched"


def assert_passed_every_level(report: dict, host: str, planned: int) -> None:
    entry = report["hosts"][host]
    assert entry["verdict"] == "PASS", entry
    assert len(entry["levels"]) == planned
    for level in entry["levels"]:
        assert level["verdict"] == "PASS", level["breaches"]
        assert level["sent"] == level["written"] == level["rate"] * level["duration_s"]
        assert level["lost"] == level["duplicated"] == level["modified"] == 0


def test_one_observer_killed_fails_that_host_only(lab, tmp_path):
    artifacts = tmp_path / "artifacts"
    run = SmokeRun(
        LAB.inventory, artifacts, *levels_args([lenient_level(20, 5), lenient_level(20, 15)])
    )
    killed_at = kill_observer_mid_level_2(run, lab[VICTIM])
    assert run.wait() != 0, run.text[-4000:]

    report, junit, run_dir = latest_report(artifacts)
    assert sorted(report["hosts"]) == HOSTS
    assert report["verdict"] == "FAIL"
    victim = report["hosts"][VICTIM]
    assert victim["verdict"] == "FAIL"
    level2 = victim["levels"][1]
    assert level2["failure"].startswith("process failure"), level2
    assert level2["finished_at"] - killed_at < 2.0, "the level did not end within 2 s of the crash"
    for host in HOSTS:
        if host != VICTIM:
            assert_passed_every_level(report, host, planned=2)
    # The levels started together on every host.
    for number in (0, 1):
        starts = [report["hosts"][host]["levels"][number]["started_at"] for host in HOSTS]
        assert max(starts) - min(starts) < 1.0, starts
    assert_raw_data_fetched(run_dir, HOSTS)
    (reason,) = report["reasons"]  # the other hosts are not named
    assert reason.startswith(f"{VICTIM}: L2 process_failure: process failure"), reason
    assert f"STRESS VERDICT: FAIL ({reason}" in run.text
    for host in HOSTS:
        assert f"[progress] {host} L2" in run.text
    assert any("process failure" in message for message in failure_messages(junit))
    # systemd restarted the killed Observer (Restart=on-failure); the others never crashed.
    for host, addr in lab.items():
        restarts = LAB.ssh(addr, "systemctl show --property=NRestarts --value qts-observer").stdout
        assert int(restarts) == (1 if host == VICTIM else 0), (host, restarts)
    # Every stop was SIGTERM, judged by how the Observer really ended, its time measured.
    for host in HOSTS:
        (stop,) = [c for c in report["hosts"][host]["criteria"] if c["name"] == "clean_shutdown"]
        assert stop["verdict"] == "PASS" and 0 < stop["measured"] < 10, stop
        assert "exit status 0 after" in stop["evidence"], stop


def test_unreachable_host_is_reported_and_the_others_run_to_the_end(lab, tmp_path):
    with socket.socket() as probe:
        assert probe.connect_ex((DOWN_ADDR, LAB.port)) != 0, f"{DOWN_ADDR} must not answer"
    inventory = tmp_path / "inventory"
    shutil.copytree(LAB.inventory, inventory)
    (inventory / "down.yml").write_text(
        f"observers:\n  hosts:\n    {DOWN_HOST}:\n      ansible_host: {DOWN_ADDR}\n"
    )
    artifacts = tmp_path / "artifacts"
    result = make_smoke(
        inventory, artifacts, *levels_args([lenient_level(20, 5), lenient_level(20, 5)])
    )
    assert result.returncode != 0, result.stdout[-4000:]

    report, junit, run_dir = latest_report(artifacts)
    assert sorted(report["hosts"]) == [*HOSTS, DOWN_HOST]
    assert report["hosts"][DOWN_HOST]["verdict"] == "UNREACHABLE"
    assert report["hosts"][DOWN_HOST]["levels"] == []
    for host in HOSTS:
        assert_passed_every_level(report, host, planned=2)
    assert_raw_data_fetched(run_dir, HOSTS)
    assert f"{DOWN_HOST}: unreachable" in result.stdout
    unreachable = [
        failure.get("message") or ""
        for case in junit.iter("testcase")
        if (case.get("classname") or "").startswith(f"{DOWN_HOST}.")
        for failure in case.iter("failure")
    ]
    assert unreachable and all("unreachable" in message.lower() for message in unreachable)


def test_any_errors_fatal_stops_every_host_at_the_first_failure(lab, tmp_path):
    artifacts = tmp_path / "artifacts"
    levels = [lenient_level(20, 5), lenient_level(20, 12), lenient_level(20, 5)]
    run = SmokeRun(
        LAB.inventory, artifacts, "-e", "stress_any_errors_fatal=true", *levels_args(levels)
    )
    kill_observer_mid_level_2(run, lab[VICTIM])
    assert run.wait() != 0, run.text[-4000:]

    report, _, run_dir = latest_report(artifacts)
    assert sorted(report["hosts"]) == HOSTS
    assert report["verdict"] == "FAIL"
    assert report["hosts"][VICTIM]["levels"][1]["failure"].startswith("process failure")
    for host in HOSTS:
        entry = report["hosts"][host]
        assert entry["verdict"] == "FAIL", entry
        assert len(entry["levels"]) == 2 and entry["levels_not_run"] == [3], entry
        assert f"[progress] {host} L3" not in run.text
        if host != VICTIM:
            assert "stopped by stress_any_errors_fatal: observer-02 failed" in entry["message"]
    (bystander,) = [r for r in report["reasons"] if r.startswith("observer-01: ")]
    assert "stopped by stress_any_errors_fatal" in bystander, bystander
    # The whole run stopped, yet every host was still stopped cleanly and its data fetched.
    assert_raw_data_fetched(run_dir, HOSTS)


def test_an_observer_that_dies_on_sigterm_fails_its_clean_shutdown(lab, tmp_path):
    """observer-03 runs an Observer that dies on SIGTERM without draining (systemd's own
    Result= still says success): its clean shutdown is a FAIL, the others' a measured PASS.
    Last in the module: it leaves that Observer on observer-03."""
    dying = tmp_path / "sigterm-dies"
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "support" / "sigterm_dies.py"),
         str(ROOT / "files" / "observer"), str(dying)],
        check=True,
    )  # fmt: skip
    inventory = tmp_path / "inventory"
    shutil.copytree(LAB.inventory, inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "observer-03.yml").write_text(f"observer_source_dir: {dying}\n")
    artifacts = tmp_path / "artifacts"
    result = make_smoke(inventory, artifacts, *levels_args([lenient_level(20, 5)]))
    assert result.returncode != 0, result.stdout[-4000:]

    report, _, _ = latest_report(artifacts)
    stops = {
        host: next(c for c in report["hosts"][host]["criteria"] if c["name"] == "clean_shutdown")
        for host in HOSTS
    }
    assert stops["observer-03"]["verdict"] == "FAIL", stops["observer-03"]
    assert "killed by signal 15" in stops["observer-03"]["evidence"]
    assert report["hosts"]["observer-03"]["verdict"] == "FAIL"
    for host in ("observer-01", "observer-02"):
        assert stops[host]["verdict"] == "PASS" and stops[host]["measured"] > 0, stops[host]
        assert report["hosts"][host]["verdict"] == "PASS"
    (reason,) = report["reasons"]
    assert reason == "observer-03: run-wide clean_shutdown", reason
