"""Faults during load on the bundled supervisor's path (`make smoke` on this machine, as users
run it): each fault applied to the real reference Observer, counted, reverted and judged, its
counts checked against the test's own count from the ledger and the records; a team Observer
that drops what waited during a pause caught with the exact count; an interrupted run that
leaves nothing applied."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from stressrun import (
    ROOT,
    SmokeRun,
    latest_report,
    lenient_level,
    levels_args,
    local_install_root,
    make_smoke,
    user_env,
)

TEAM_OBSERVER = ROOT / "tests" / "observers" / "team_observer"
RUNBOOK = yaml.safe_load((ROOT / "examples" / "runbook-observer.yml").read_text())

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def faults_args(faults: list[dict], **variables) -> list[str]:
    return [
        "-e",
        "'" + json.dumps({"stress_faults": faults, **variables}, separators=(",", ":")) + "'",
    ]


def output_dir(root: Path) -> Path:
    return root / "opt" / "qts_observer" / "config" / "observer"


def own_count(
    run_dir: Path, host: str, level: dict, records_dir: Path
) -> tuple[list[float], set[int]]:
    """The level's snapshots as the test counts them itself: each one's intended send time
    (its ledger's send times) and the sequences found in the Observer's records files."""
    times = (run_dir / host / "L1.sent.jsonl.times").read_text().splitlines()
    assert times[0] == "sequence\tintended_s\tsent_s"
    intended = [float(line.split("\t")[1]) for line in times[1:]]
    assert len(intended) == len((run_dir / host / "L1.sent.jsonl").read_bytes().splitlines())
    pattern = re.compile(re.escape(level["run_id_prefix"].encode()) + rb'(\d+)"')
    found = set()
    for path in records_dir.iterdir():
        if path.name.startswith("observer") and path.suffix == ".jsonl":
            found.update(int(m.group(1)) for m in pattern.finditer(path.read_bytes()))
    return intended, found


def check_counts(fault: dict, intended: list[float], found: set[int]) -> set[int]:
    """The fault's sent and lost as the test counts them over its window: the sequences lost."""
    start, end = fault["window_s"]
    members = {n for n, due in enumerate(intended) if start <= due < end}
    lost = members - found
    assert (fault["sent"], fault["lost"]) == (len(members), len(lost)), fault
    return lost


def test_each_fault_is_applied_counted_reverted_and_judged_on_the_supervisor_path(tmp_path):
    """20/s for 40 s: a 3 s pause, a kill 25 ms after a send, a CPU cap of 5 % for 3 s; then a
    run asking for a graceful restart, which the bundled supervisor cannot make: refused
    before any level, naming the fault."""
    artifacts = tmp_path / "artifacts"
    faults = [
        {"type": "pause", "level": 1, "at_s": 4, "duration_s": 3},
        {"type": "kill", "level": 1, "at_s": 14.025},
        {"type": "cpu", "level": 1, "at_s": 25, "duration_s": 3, "quota_pct": 5},
    ]
    with local_install_root(tmp_path / "root") as root:
        done = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                          *levels_args([lenient_level(20, 40)]), *faults_args(faults))  # fmt: skip
        report, junit, run_dir = latest_report(artifacts)
        assert done.returncode == 0 and report["verdict"] == "PASS", done.stdout[-5000:]
        (level,) = report["hosts"]["localhost"]["levels"]
        intended, found = own_count(
            run_dir, "localhost", report["levels_planned"][0], output_dir(root)
        )
        pause, kill, cpu = level["faults"]
        lost = set()
        for fault in (pause, kill, cpu):
            assert fault["verdict"] == "PASS" and fault["applied_s"] is not None, fault
            lost |= check_counts(fault, intended, found)
            assert fault["duplicated"] == fault["modified"] == 0
            assert 0 <= fault["recovery_s"] <= fault["max_recovery_s"]
        # A pause and a cap lose nothing; a kill at most what the Observer held, its buffer's
        # 500 ms and its trigger's longest wait, 200 ms, at 20/s.
        assert pause["lost"] == cpu["lost"] == 0
        assert kill["allowed_lost"] == math.ceil(20 * 0.7) and kill["lost"] <= kill["allowed_lost"]
        # Every snapshot missing from the records is one of the kill's, and the level's own
        # figures are those of the rest.
        assert set(range(len(intended))) - found == lost
        assert level["sent"] + sum(f["sent"] for f in level["faults"]) == len(intended) == 800
        assert level["lost"] == 0 and level["written"] == level["sent"]
        # Paused 3 s: what was due meanwhile was seen late; back within 3 s of a kill.
        assert 2.9 < pause["ended_s"] - pause["applied_s"] < 4.0 and pause["late"] > 0
        assert 0 < kill["back_s"] < 30.0
        (restart,) = level["restarts"]
        stability = next(
            c for c in report["hosts"]["localhost"]["criteria"] if c["name"] == "stability"
        )
        assert "restarted by 1 planned fault(s): %d -> %d" % (
            restart["pid_before"], restart["pid_after"]) in stability["evidence"]  # fmt: skip
        # Nothing left applied: no state, and the cgroup the cap moved the Observer (the one
        # started after the kill) into is gone.
        assert not (root / "run" / "qts_observer" / "stress.faults.json").exists()
        assert not list(Path("/sys/fs/cgroup").glob("*/qts-stress-fault-%d" % restart["pid_after"]))
        cases = {
            c.get("name"): c
            for c in junit.iter("testcase")
            if c.get("classname") == "localhost.faults"
        }
        assert sorted(cases) == sorted(f["name"] for f in level["faults"])
        assert not any(c.find("failure") is not None for c in cases.values())
        assert "FAULTS" in done.stdout and "fault 2 (kill at 14.025 s of level 1)" in done.stdout
        page = (run_dir / "report.html").read_text()
        assert "<h3>Faults</h3>" in page and all(
            mark in page for mark in ("F1 pause", "F2 kill", "F3 cpu")
        )

        refused = make_smoke("inventories/local", tmp_path / "refused", "-e", f"qts_local_root={root}",
                             *levels_args([lenient_level(20, 10)]),
                             *faults_args([{"type": "restart", "level": 1, "at_s": 2, "duration_s": 1}]))  # fmt: skip
    report, _junit, _unused = latest_report(tmp_path / "refused")
    entry = report["hosts"]["localhost"]
    assert refused.returncode != 0 and entry["levels"] == [], refused.stdout[-3000:]
    assert "fault 1 (restart 1 s at 2 s of level 1): the Observer" in entry["message"]
    assert "a graceful restart needs systemd" in entry["message"]


def test_an_observer_writing_through_loses_nothing_when_killed(tmp_path):
    """The reference Observer without its buffer (enable_buffering false): killed 100 ms after
    a send, between two at 5/s, it loses nothing; its allowed loss is what its trigger may let
    wait, 200 ms at 5/s: one."""
    artifacts = tmp_path / "artifacts"
    with local_install_root(tmp_path / "root") as root:
        done = make_smoke(
            "inventories/local", artifacts, "-e", f"qts_local_root={root}",
            *levels_args([lenient_level(5, 20)]),
            *faults_args([{"type": "kill", "level": 1, "at_s": 6.1}],
                         observer_stress_config_overrides={"buffer": {"enable_buffering": False}}),
        )  # fmt: skip
        report, _junit, run_dir = latest_report(artifacts)
        assert done.returncode == 0 and report["verdict"] == "PASS", done.stdout[-5000:]
        (level,) = report["hosts"]["localhost"]["levels"]
        (kill,) = level["faults"]
        intended, found = own_count(
            run_dir, "localhost", report["levels_planned"][0], output_dir(root)
        )
    assert check_counts(kill, intended, found) == set() and kill["lost"] == 0
    assert kill["loss_window"] == {"window_ms": 200.0, "max_buffer_size": 50000}
    assert kill["allowed_lost"] == 1 and found == set(range(len(intended))) and len(found) == 100


def test_a_team_observer_dropping_what_waited_during_a_pause_is_caught_with_the_exact_count(
    tmp_path,
):
    """The runbook's team Observer, dropping any snapshot over 1 s old when it takes it in:
    paused 3 s, it loses what waited longer; the fault fails with the number the test counts
    from the ledger and the records, and the level's own figures stay clean."""
    artifacts = tmp_path / "artifacts"
    variables = {
        **RUNBOOK,
        "observer_source_dir": str(TEAM_OBSERVER),
        "observer_environment": {"QTS_OBSERVER_STANDALONE": "1", "TEAM_OBSERVER_FAULT": "stale"},
    }
    (tmp_path / "team.json").write_text(json.dumps(variables))
    with local_install_root(tmp_path / "root") as root:
        done = make_smoke(
            "inventories/local", artifacts, "-e", f"qts_local_root={root}", "-e", f"@{tmp_path / 'team.json'}",
            *levels_args([lenient_level(20, 25)]),
            *faults_args([{"type": "pause", "level": 1, "at_s": 5, "duration_s": 3}]),
        )  # fmt: skip
        report, junit, run_dir = latest_report(artifacts)
        (level,) = report["hosts"]["localhost"]["levels"]
        (pause,) = level["faults"]
        intended, found = own_count(
            run_dir, "localhost", report["levels_planned"][0], output_dir(root)
        )
    lost = check_counts(pause, intended, found)
    # Due from the pause's start to about 1 s before its end: 2 s at 20/s, and on a busy
    # machine some after it too, taken in more than 1 s late while the backlog drained; at
    # most the 3 s paused and the 1 s of staleness.
    assert 30 <= len(lost) <= 80 and pause["lost"] == len(lost), pause
    assert done.returncode != 0 and pause["verdict"] == "FAIL" and report["verdict"] == "FAIL"
    (breach,) = [b for b in pause["breaches"] if b["criterion"] == "fault_lost"]
    assert breach["measured"] == len(lost) and breach["limit"] == 0
    assert level["lost"] == 0 and set(range(len(intended))) - found == lost
    (case,) = [c for c in junit.iter("testcase") if c.get("classname") == "localhost.faults"]
    assert (
        case.find("failure").get("message").startswith("%d snapshot(s) lost, at most 0" % len(lost))
    )


def _fault_jobs() -> list[int]:
    jobs = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"AnsiballZ_stress_fault" in command:
                jobs.append(int(entry.name))
    return jobs


def _interrupt(pid: int) -> None:
    """Ctrl-C in the user's terminal: SIGINT to make and everything it started (the fault and
    load jobs on the host are daemons of their own, outside it, as with a real play)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, ValueError):
                continue
    family, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    for member in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGINT)


def _paused(pid: int) -> bool:
    return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0] == "T"


def _start_interrupted(root: Path, artifacts: Path, fault: dict, *extra: str) -> SmokeRun:
    """A run whose one fault (from 3 s to 11 s of its level) has been applied: its host's
    fault state file names it (written before the fault is applied; a busy machine's
    provisioning and progress lines take their time, the fault is what is waited for)."""
    state = root / "run" / "qts_observer" / "stress.faults.json"
    run = SmokeRun("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                   *levels_args([lenient_level(20, 30)]),
                   *faults_args([dict(fault, level=1, at_s=3, duration_s=8)]), *extra)  # fmt: skip
    run.wait_for(r"\[progress\] localhost L1 20/s")
    deadline = time.monotonic() + 120
    while not state.exists():
        assert run.process.poll() is None, "ended before its fault:\n%s" % run.text[-4000:]
        assert time.monotonic() < deadline, "no fault applied in time:\n%s" % run.text[-4000:]
        time.sleep(0.05)
    time.sleep(0.5)  # applied just after it was written down
    return run


def _cpu_cgroup_of(pid: int) -> str:
    lines = Path("/proc/%d/cgroup" % pid).read_text().splitlines()
    return next(
        line.split(":", 2)[2] for line in lines if "cpu" in line.split(":", 2)[1].split(",")
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="a CPU cap and a filesystem to fill need root")
def test_an_interrupted_run_leaves_no_cpu_cap_no_paused_observer_and_no_full_filesystem(tmp_path):
    """Interrupted (SIGINT, as Ctrl-C) during a CPU cap, the run's fault job still takes the cap
    off when its time is up. With the job killed too: a pause is left, and the documented
    command (the stress_fault module with no fault) continues the Observer; a full filesystem
    is left, and the next run empties it before anything else."""
    root = tmp_path / "root"
    state = root / "run" / "qts_observer" / "stress.faults.json"
    pidfile = root / "run" / "qts_observer" / "observer.pid"
    with a_small_filesystem(output_dir(root)) as records, local_install_root(root):
        expendable = [
            "-e",
            "'%s'" % json.dumps({"stress_fault_expendable_filesystems": [str(records)]}),
        ]
        run = _start_interrupted(root, tmp_path / "cpu", {"type": "cpu", "quota_pct": 5})
        pid = int(pidfile.read_text())
        # Where it was: where its supervisor still is.
        before = _cpu_cgroup_of(
            int(Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[1])
        )
        assert _cpu_cgroup_of(pid) == "/qts-stress-fault-%d" % pid and state.exists()
        _interrupt(run.process.pid)
        assert run.wait(timeout_s=120) != 0
        deadline = time.monotonic() + 60
        while _cpu_cgroup_of(pid) != before or state.exists():
            assert time.monotonic() < deadline, "the interrupted run left the Observer capped"
            time.sleep(0.5)
        assert not Path("/sys/fs/cgroup/cpu/qts-stress-fault-%d" % pid).exists()

        run = _start_interrupted(root, tmp_path / "pause", {"type": "pause"})
        pid = int(pidfile.read_text())
        assert _paused(pid) and json.loads(state.read_text())[0]["pid"] == pid
        for job in _fault_jobs():
            os.kill(job, signal.SIGKILL)
        _interrupt(run.process.pid)
        run.wait(timeout_s=120)
        time.sleep(10)  # past the pause's end: nobody is left to revert it
        assert _paused(pid) and state.exists()
        cleaned = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-i", "inventories/local",
             "-e", f"qts_local_root={root}", "-m", "qts.observer.stress_fault",
             "-a", f"state_file={state}"],
            cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
        assert "pause of pid %d: continued (SIGCONT)" % pid in cleaned.stdout
        assert not _paused(pid) and not state.exists()

        run = _start_interrupted(root, tmp_path / "full", {"type": "disk_full"}, *expendable)
        assert os.statvfs(records).f_bavail == 0 and state.exists()
        for job in _fault_jobs():
            os.kill(job, signal.SIGKILL)
        _interrupt(run.process.pid)
        run.wait(timeout_s=120)
        time.sleep(10)
        assert os.statvfs(records).f_bavail == 0 and (records / ".qts-stress-fault-filler").exists()
        following = make_smoke("inventories/local", tmp_path / "next", "-e", f"qts_local_root={root}",
                               *levels_args([lenient_level(5, 6)]))  # fmt: skip
        # The message names the folder; the console may fold a long line, so in two parts.
        assert "reverted what an earlier run left: disk_full of" in following.stdout
        assert "filler removed" in following.stdout
        assert not (records / ".qts-stress-fault-filler").exists() and not state.exists()
        assert following.returncode == 0, following.stdout[-4000:]


@contextlib.contextmanager
def a_small_filesystem(path: Path, size_mb: int = 64):
    """A tmpfs of its own on ``path`` (the Observer's output folder): expendable."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size_mb, "tmpfs", str(path)],
                   check=True)  # fmt: skip
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem to fill needs root")
def test_a_full_output_filesystem_loses_nothing_and_its_errors_are_the_faults(tmp_path):
    """The reference Observer's output folder on a filesystem of its own, named expendable,
    filled for 3 s: the Observer logs its failed writes, keeps what it could not write and
    writes it once there is room again: nothing lost, the errors counted in the fault's
    window, not the level's; the filler gone after."""
    artifacts = tmp_path / "artifacts"
    root = tmp_path / "root"
    with a_small_filesystem(output_dir(root)) as records, local_install_root(root):
        done = make_smoke(
            "inventories/local", artifacts, "-e", f"qts_local_root={root}",
            *levels_args([lenient_level(20, 25)]),
            *faults_args([{"type": "disk_full", "level": 1, "at_s": 5, "duration_s": 3}],
                         stress_fault_expendable_filesystems=[str(records)]),
        )  # fmt: skip
        report, _junit, run_dir = latest_report(artifacts)
        assert done.returncode == 0 and report["verdict"] == "PASS", done.stdout[-5000:]
        (level,) = report["hosts"]["localhost"]["levels"]
        (full,) = level["faults"]
        intended, found = own_count(run_dir, "localhost", report["levels_planned"][0], records)
        assert not (records / ".qts-stress-fault-filler").exists()
        assert os.statvfs(records).f_bavail > 0
    assert check_counts(full, intended, found) == set() and found == set(range(len(intended)))
    assert full["verdict"] == "PASS" and full["errors"] > 0 and level["errors"] == 0
    assert 2.9 < full["ended_s"] - full["applied_s"] < 5.0
    log = (run_dir / "localhost" / "observer.log").read_text()
    assert "writing records failed: No space left on device" in log
