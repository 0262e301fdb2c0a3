"""Faults during load on a lab host booting systemd (tools/lab.py), over real SSH, `make smoke`
as users run it: a pause, a kill (systemd restarts the Observer), a graceful restart
(`systemctl stop`, then `start`) and its output filesystem full against the reference Observer, each counted and checked
against the test's own count from the ledger and the host's records; then a CPU cap and an
I/O cap asked on a host whose cgroups take `CPUQuota=` and `IOWriteBandwidthMax=` and enforce
nothing (a container's): refused before any level, each named with why, nothing applied."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from labkit import NEEDS_ROOT, Lab, is_root
from stressrun import latest_report, lenient_level, levels_args, make_smoke

LAB = Lab(name="pytest-faults", base_addr="127.0.0.226", port=2226)
HOST = "observer-01"
RECORDS = "/opt/qts_observer/config/observer"

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    LAB.run("down")
    try:
        LAB.run("up", "--hosts", "1")
        yield LAB
    finally:
        LAB.run("down")
        assert not LAB.processes()


def faults_args(faults: list[dict], **variables) -> list[str]:
    return [
        "-e",
        "'" + json.dumps({"stress_faults": faults, **variables}, separators=(",", ":")) + "'",
    ]


def host_found(lab: Lab, prefix: str) -> set[int]:
    """The sequences of the level found in the host's records files, read over SSH."""
    addr = lab.state()["hosts"][0]["addr"]
    text = lab.ssh(addr, "sudo -n sh -c 'cat %s/observer*.jsonl'" % RECORDS).stdout
    return {int(m.group(1)) for m in re.finditer(re.escape(prefix) + r'(\d+)"', text)}


def test_pause_kill_restart_and_a_full_disk_under_systemd_are_counted_and_caps_it_cannot_enforce_are_refused(
    lab, tmp_path
):
    # The output folder on a filesystem of its own, mounted before the Observer starts (its
    # unit's namespace sees it), and named expendable.
    addr = lab.state()["hosts"][0]["addr"]
    lab.ssh(addr, "sudo -n sh -c 'mkdir -p %s && mount -t tmpfs -o size=64m,mode=0755 tmpfs %s'"
            % (RECORDS, RECORDS))  # fmt: skip
    faults = [
        {"type": "pause", "level": 1, "at_s": 4, "duration_s": 3},
        {"type": "kill", "level": 1, "at_s": 14.025},
        {"type": "restart", "level": 1, "at_s": 25, "duration_s": 2},
        {"type": "disk_full", "level": 1, "at_s": 32, "duration_s": 3},
    ]
    done = make_smoke(lab.inventory, tmp_path / "artifacts", *levels_args([lenient_level(20, 40)]),
                      *faults_args(faults, stress_fault_expendable_filesystems=[RECORDS]))  # fmt: skip
    report, junit, run_dir = latest_report(tmp_path / "artifacts")
    assert done.returncode == 0 and report["verdict"] == "PASS", done.stdout[-5000:]
    (level,) = report["hosts"][HOST]["levels"]
    times = (run_dir / HOST / "L1.sent.jsonl.times").read_text().splitlines()[1:]
    intended = [float(line.split("\t")[1]) for line in times]
    found = host_found(lab, report["levels_planned"][0]["run_id_prefix"])
    lost_in_faults = set()
    for fault in level["faults"]:
        start, end = fault["window_s"]
        members = {n for n, due in enumerate(intended) if start <= due < end}
        assert (fault["sent"], fault["lost"]) == (len(members), len(members - found)), fault
        lost_in_faults |= members - found
        assert fault["verdict"] == "PASS" and fault["duplicated"] == fault["modified"] == 0
    pause, kill, restart, full = level["faults"]
    assert (
        pause["lost"] == restart["lost"] == full["lost"] == 0
        and kill["lost"] <= kill["allowed_lost"]
    )
    # Its failed writes were logged, as the fault's errors; nothing left filled.
    assert full["errors"] > 0 and level["errors"] == 0
    assert (
        lab.ssh(
            addr, "sudo -n test -e %s/.qts-stress-fault-filler" % RECORDS, check=False
        ).returncode
        == 1
    )
    assert set(range(len(intended))) - found == lost_in_faults
    # systemd restarted the killed Observer, and started the stopped one again.
    assert 0 < kill["back_s"] < 30 and 2.0 <= restart["back_s"] < 30
    pids = [r["pid_after"] for r in level["restarts"]]
    assert len(pids) == 2 and len(set(pids)) == 2
    assert report["hosts"][HOST]["observer"]["pid_end"] == pids[-1]
    cases = [c for c in junit.iter("testcase") if c.get("classname") == "%s.faults" % HOST]
    assert len(cases) == 4 and all(c.find("failure") is None for c in cases)

    caps = [{"type": "cpu", "level": 1, "at_s": 2, "duration_s": 2, "quota_pct": 10},
            {"type": "io", "level": 1, "at_s": 9, "duration_s": 2, "write_bps": 1048576}]  # fmt: skip
    refused = make_smoke(lab.inventory, tmp_path / "refused",
                         *levels_args([lenient_level(20, 15)]), *faults_args(caps))  # fmt: skip
    report, junit, _unused = latest_report(tmp_path / "refused")
    entry = report["hosts"][HOST]
    assert refused.returncode != 0 and entry["levels"] == [], refused.stdout[-3000:]
    cpu_refusal, io_refusal = entry["message"].removeprefix("refused: ").split("; ", 1)
    assert cpu_refusal.startswith("fault 1 (cpu 10 % 2 s at 2 s of level 1): ")
    assert cpu_refusal.endswith("CPUQuota= would be set and not enforced")
    assert io_refusal.startswith("fault 2 (io 1048576 B/s 2 s at 9 s of level 1): ")
    assert io_refusal.endswith("IOWriteBandwidthMax= would be set and not enforced")
    for prop in ("CPUQuotaPerSecUSec", "IOWriteBandwidthMax"):
        value = lab.ssh(addr, "systemctl show --property=%s --value qts-observer" % prop)
        assert value.stdout.strip() in ("infinity", ""), (prop, value.stdout)
    assert (
        lab.ssh(
            addr, "sudo -n test -e /run/qts_observer/stress.faults.json", check=False
        ).returncode
        == 1
    )
