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
)

# A lab of its own for each test, so that make test runs them side by side (two jobs).
LABS = {
    "test_any_errors_fatal_stops_every_host_at_the_first_failure": Lab(
        name="pytest-stress", base_addr="127.0.0.241", port=2241
    ),
    "test_a_bad_day_each_fault_fails_its_own_host_only": Lab(
        name="pytest-stress-day", base_addr="127.0.0.244", port=2244
    ),
}
HOSTS = ["observer-01", "observer-02", "observer-03"]
VICTIM = "observer-02"
# Runs an Observer that dies on SIGTERM without draining, in the bad-day run.
DYING = "observer-03"
# A host of the inventory where nothing answers: a machine that is down.
DOWN_HOST, DOWN_ADDR = "observer-09", "127.0.0.249"
RAW_DATA = ("system_monitor.csv", "observer.log", "metrics.jsonl")
# Kill the Observer named by the pidfile, from inside the host (its own PID namespace).
KILL_OBSERVER = "sudo -n sh -c 'kill -KILL \"$(cat /run/qts_observer/observer.pid)\"'"

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture
def lab(request) -> Iterator[Lab]:
    """The test's three lab hosts (its run provisions them); always torn down."""
    test_lab = LABS[request.node.name]
    test_lab.run("down")
    try:
        test_lab.run("up", "--hosts", str(len(HOSTS)))
        assert sorted(host["name"] for host in test_lab.state()["hosts"]) == HOSTS
        yield test_lab
    finally:
        test_lab.run("down")
        assert not test_lab.processes()


def address(lab: Lab, host: str) -> str:
    return next(h["addr"] for h in lab.state()["hosts"] if h["name"] == host)


def kill_observer_mid_level_2(run: SmokeRun, lab: Lab) -> float:
    """SIGKILL the host's Observer once level 2 is sending there; the time of the kill."""
    run.wait_for(rf"\[progress\] {VICTIM} L2 .* sent [1-9][0-9]*/")
    killed_at = time.time()
    lab.ssh(address(lab, VICTIM), KILL_OBSERVER)
    return killed_at


def wait_for_restart(lab: Lab, killed_at: float, timeout_s: float = 30.0) -> float:
    """Seconds from the kill until systemd counts one automatic restart of the Observer."""
    deadline = time.monotonic() + timeout_s
    addr = address(lab, VICTIM)
    while True:
        restarts = lab.ssh(addr, "systemctl show --property=NRestarts --value qts-observer")
        if int(restarts.stdout) == 1:
            return time.time() - killed_at
        assert time.monotonic() < deadline, f"no restart within {timeout_s} s"
        time.sleep(0.5)


def assert_raw_data_fetched(run_dir: Path, hosts: list[str]) -> None:
    for host in hosts:
        for name in RAW_DATA:
            assert (run_dir / host / name).is_file(), f"{host}/{name} not fetched"


def assert_passed_every_level(report: dict, host: str, planned: int, verdict: str = "PASS") -> None:
    entry = report["hosts"][host]
    assert entry["verdict"] == verdict, entry
    assert len(entry["levels"]) == planned
    for level in entry["levels"]:
        assert level["verdict"] == "PASS", level["breaches"]
        assert level["sent"] == level["written"] == level["rate"] * level["duration_s"]
        assert level["lost"] == level["duplicated"] == level["modified"] == 0


def test_any_errors_fatal_stops_every_host_at_the_first_failure(lab, tmp_path):
    artifacts = tmp_path / "artifacts"
    levels = [lenient_level(20, 5), lenient_level(20, 12), lenient_level(20, 5)]
    run = SmokeRun(
        lab.inventory, artifacts, "-e", "stress_any_errors_fatal=true", *levels_args(levels)
    )
    kill_observer_mid_level_2(run, lab)
    assert run.wait() != 0, run.text[-4000:]

    report, _unused, run_dir = latest_report(artifacts)
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


def test_a_bad_day_each_fault_fails_its_own_host_only(lab, tmp_path):
    """One fleet run, several faults at once, each judged on its own host: observer-02's
    Observer is SIGKILLed mid-level (systemd restarts it), observer-03 runs an Observer that
    dies on SIGTERM without draining, observer-09 is down. observer-01 is healthy and passes."""
    with socket.socket() as probe:
        assert probe.connect_ex((DOWN_ADDR, lab.port)) != 0, f"{DOWN_ADDR} must not answer"
    dying = tmp_path / "sigterm-dies"
    subprocess.run(
        [sys.executable, str(ROOT / "tests" / "support" / "sigterm_dies.py"),
         str(ROOT / "files" / "observer"), str(dying)],
        check=True,
    )  # fmt: skip
    inventory = tmp_path / "inventory"
    shutil.copytree(lab.inventory, inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / f"{DYING}.yml").write_text(f"observer_source_dir: {dying}\n")
    (inventory / "down.yml").write_text(
        f"observers:\n  hosts:\n    {DOWN_HOST}:\n      ansible_host: {DOWN_ADDR}\n"
    )
    artifacts = tmp_path / "artifacts"
    # Every host is told to start a level 60 s ahead (3 s by default): on a loaded runner,
    # launching the load job on three hosts over SSH took up to 16 s in CI, 12 s late on a
    # 3 s delay with more beside it, so 60 s leaves room (a host reached after
    # the agreed moment starts late, and its progress says so).
    run = SmokeRun(
        inventory,
        artifacts,
        "-e",
        "stress_start_delay_s=60",
        *levels_args([lenient_level(20, 5), lenient_level(20, 15)]),
    )
    killed_at = kill_observer_mid_level_2(run, lab)
    # systemd restarts it, seen live (the stop at the end of the run resets the counter).
    restarted_after = wait_for_restart(lab, killed_at)
    assert run.wait() != 0, run.text[-4000:]

    report, junit, run_dir = latest_report(artifacts)
    assert sorted(report["hosts"]) == [*HOSTS, DOWN_HOST]
    assert report["verdict"] == "FAIL"
    verdicts = {host: entry["verdict"] for host, entry in report["hosts"].items()}
    assert verdicts == {
        "observer-01": "PASS",
        VICTIM: "FAIL",
        DYING: "FAIL",
        DOWN_HOST: "UNREACHABLE",
    }

    # The crash: its level ends within 2 s, systemd restarts the Observer; nobody else crashed.
    level2 = report["hosts"][VICTIM]["levels"][1]
    assert level2["failure"].startswith("process failure"), level2
    assert level2["finished_at"] - killed_at < 2.0, "the level did not end within 2 s of the crash"
    assert restarted_after < 10.0, restarted_after
    # The stops: SIGTERM, judged by how each Observer really ended, the time measured.
    stops = {
        host: next(c for c in report["hosts"][host]["criteria"] if c["name"] == "clean_shutdown")
        for host in HOSTS
    }
    for host in ("observer-01", VICTIM):
        assert stops[host]["verdict"] == "PASS" and 0 < stops[host]["measured"] < 10, stops[host]
        assert "exit status 0 after" in stops[host]["evidence"], stops[host]
    assert stops[DYING]["verdict"] == "FAIL" and "killed by signal 15" in stops[DYING]["evidence"]
    # The healthy host and the dying one ran every level, in step with the others.
    for host in ("observer-01", DYING):
        assert_passed_every_level(report, host, planned=2, verdict=verdicts[host])
    for number in (0, 1):
        starts = [report["hosts"][host]["levels"][number]["started_at"] for host in HOSTS]
        assert max(starts) - min(starts) < 1.0, (starts, run.text[-6000:])
    assert report["hosts"][DOWN_HOST]["levels"] == []
    assert_raw_data_fetched(run_dir, HOSTS)

    # Each non-PASS host is named with its own cause, and only that.
    reasons = dict(reason.split(": ", 1) for reason in report["reasons"])
    assert set(reasons) == {VICTIM, DYING, DOWN_HOST}
    assert reasons[VICTIM].startswith("L2 process_failure: process failure"), reasons[VICTIM]
    assert reasons[DYING] == "run-wide clean_shutdown", reasons[DYING]
    assert reasons[DOWN_HOST] == "unreachable"
    assert "STRESS VERDICT: FAIL (" in run.text
    for host in HOSTS:
        assert f"[progress] {host} L2" in run.text
    junit_failures = {
        (case.get("classname") or "").split(".")[0]
        for case in junit.iter("testcase")
        if case.find("failure") is not None
    }
    assert junit_failures == {VICTIM, DYING, DOWN_HOST}
    assert any("process failure" in message for message in failure_messages(junit))
