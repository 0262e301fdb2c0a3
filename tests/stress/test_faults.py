"""Faults during a level: how a plan's faults are checked, what each cost (counted from the
level's own send times and sightings), how each is judged, and the sender outliving a planned
kill of the real reference Observer (a real pipe, a real restart)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from ansible_collections.qts.observer.plugins.module_utils.fault_host import (
    FaultRun,
    Observer,
    StateFile,
    cpu_hierarchy,
    disk_full_reason,
    fill,
    refusal,
    revert_left,
)
from ansible_collections.qts.observer.plugins.module_utils.faults import (
    FAULT_TYPES,
    MIN_GAP_S,
    account,
    outages,
    plan_faults,
)
from ansible_collections.qts.observer.plugins.module_utils.gate import judge_fault, judge_run
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    LevelPlan,
    Outages,
    ProcessWatch,
    inject,
    open_pipe,
    process_start_time,
)
from ansible_collections.qts.observer.plugins.module_utils.measure import (
    read_ledger,
    scan_records,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import resolve_levels
from ansible_collections.qts.observer.plugins.module_utils.snapshots import run_id_prefix
from ansible_collections.qts.observer.plugins.modules.stress_fault import _level_start

OBSERVER_DIR = Path(__file__).resolve().parents[2] / "files" / "observer"
LEVELS = [{"rate": 10, "duration_s": 30}, {"rate": 50, "duration_s": 60}]
HOSTS = ["observer-01", "observer-02"]

pytestmark = pytest.mark.unit


def planned(*faults: dict) -> tuple[list[dict], list[str]]:
    return plan_faults(list(faults), LEVELS, HOSTS)


def test_a_planned_fault_is_resolved_named_and_given_its_hosts():
    (kill, pause), errors = planned(
        {"type": "kill", "level": 2, "at_s": 20},
        {"type": "pause", "level": 2, "at_s": 40, "duration_s": 5, "hosts": ["observer-02"]},
    )
    assert errors == []
    assert kill["name"] == "fault 1 (kill at 20 s of level 2)"
    assert kill["hosts"] == HOSTS and kill["max_recovery_s"] == 30.0
    assert kill["back_within_s"] == 60.0 and kill["max_lost"] is None
    assert pause["name"] == "fault 2 (pause 5 s at 40 s of level 2)"
    assert pause["hosts"] == ["observer-02"]
    # The sender waits for the Observer only around a kill or a restart.
    assert outages([kill, pause]) == [[19.0, 20.0 + 60.0]]


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"type": "crash", "level": 1, "at_s": 1}, "type must be one of kill, pause, cpu, io, restart, disk_full"),
        ({"type": "kill", "level": 3, "at_s": 1}, "level must be the number of one of the run's"),
        ({"type": "kill", "level": 1, "at_s": -1}, "at_s must be a number of seconds >= 0"),
        ({"type": "pause", "level": 1, "at_s": 1}, "duration_s must be a number of seconds > 0"),
        ({"type": "kill", "level": 1, "at_s": 1, "duration_s": 2}, "a kill has no duration"),
        ({"type": "pause", "level": 1, "at_s": 28, "duration_s": 2}, "must end before the level"),
        ({"type": "cpu", "level": 1, "at_s": 1, "duration_s": 2}, "quota_pct must be a percentage"),
        ({"type": "pause", "level": 1, "at_s": 1, "duration_s": 2, "quota_pct": 5},
         "quota_pct is for a cpu fault only"),
        ({"type": "io", "level": 1, "at_s": 1, "duration_s": 2}, "write_bps must be a whole number"),
        ({"type": "pause", "level": 1, "at_s": 1, "duration_s": 2, "write_bps": 5},
         "write_bps is for an io fault only"),
        ({"type": "disk_full", "level": 1, "at_s": 1}, "duration_s must be a number of seconds > 0"),
        ({"type": "kill", "level": 1, "at_s": 1, "hosts": ["nowhere"]}, "host 'nowhere' is not"),
        ({"type": "kill", "level": 1, "at_s": 1, "max_lost": -1}, "max_lost must be a whole"),
        ({"type": "kill", "level": 1, "at_s": 1, "max_recovery_s": 0}, "max_recovery_s must be"),
        ({"type": "kill", "level": 1, "at_s": 1, "when": 3}, "unknown key 'when'"),
    ],
)  # fmt: skip
def test_a_fault_that_cannot_be_planned_is_refused_by_its_place_and_reason(fault, message):
    faults, errors = planned(fault)
    assert faults == []
    assert len(errors) == 1 and errors[0].startswith("stress_faults[1]: ") and message in errors[0]


def test_faults_on_a_host_follow_one_another_with_a_gap_to_recover():
    _unused, errors = planned(
        {"type": "pause", "level": 2, "at_s": 10, "duration_s": 5},
        {"type": "kill", "level": 2, "at_s": 15 + MIN_GAP_S - 0.5},
    )
    assert len(errors) == 1 and "overlap on a host" in errors[0]
    # On other hosts, or far enough apart, they do not overlap.
    for second in (
        {"type": "kill", "level": 2, "at_s": 15 + MIN_GAP_S},
        {"type": "kill", "level": 2, "at_s": 12, "hosts": ["observer-02"]},
    ):
        first = {"type": "pause", "level": 2, "at_s": 10, "duration_s": 5, "hosts": ["observer-01"]}
        assert planned(first, second)[1] == []


def a_level(rate: float, seconds: int, delay_of) -> tuple[list[float], dict[int, float]]:
    """A constant level's intended send times and when each record became visible."""
    intended = [n / rate for n in range(int(rate * seconds))]
    visible = {}
    for n, due in enumerate(intended):
        delay = delay_of(n, due)
        if delay is not None:
            visible[n] = due + delay
    return intended, visible


def test_a_pause_is_counted_from_the_first_snapshot_in_flight_to_the_recovery():
    # 100/s for 30 s, each record visible 0.1 s after its send; paused from 10 s to 13 s: what
    # was due then is seen at 13.05.
    def delay(_n, due):
        return 13.05 - due if 10.0 - 0.1 <= due < 13.0 else 0.1

    intended, visible = a_level(100, 30, delay)
    copies = dict.fromkeys(visible, 1)
    figures = account(
        {"type": "pause"}, {"applied_s": 10.0, "ended_s": 13.0}, intended=intended,
        visible=visible, copies=copies, modified=set(), sent=len(intended), level_end=30.0,
        late_ms=2000.0,
    )  # fmt: skip
    members = figures.pop("members")
    # From the first that may have been in flight (due 9.8 s, within twice the 0.1 s
    # visibility before the fault) to the recovery: 13 s is a whole second back in the band,
    # and two more after it.
    assert figures["window_s"] == [9.8, 13.0]
    assert figures["sent"] == len(members) == 320
    assert figures["lost"] == figures["duplicated"] == figures["modified"] == 0
    # Due from 9.9 s to 11.05 s: seen more than 2 s after their send.
    assert figures["late"] == sum(1 for n in members if visible[n] - intended[n] > 2.0) == 115
    assert figures["recovery_s"] == 0.0 and figures["drain_s"] == pytest.approx(0.05)
    assert figures["band_p99_ms"] == pytest.approx(200.0)


def test_a_kill_counts_its_losses_and_its_restart():
    # 50/s; killed at 20 s, back at 21.5 s: the 25 records held in its last half second lost,
    # what was sent while it was down seen once it was back.
    def delay(_n, due):
        if 19.5 <= due < 20.0:
            return None
        return 21.6 - due if 20.0 <= due < 21.5 else 0.3

    intended, visible = a_level(50, 40, delay)
    copies = dict.fromkeys(visible, 1)
    copies[10] = 2  # outside the window: not the kill's
    figures = account(
        {"type": "kill"}, {"applied_s": 20.0, "ended_s": 21.5, "back_at_s": 21.5},
        intended=intended, visible=visible, copies=copies, modified={1001}, sent=len(intended),
        level_end=40.0, late_ms=1000.0,
    )  # fmt: skip
    figures.pop("members")
    assert figures["back_s"] == 1.5 and figures["window_s"] == [19.4, 22.0]
    assert figures["lost"] == 25 and figures["duplicated"] == 0 and figures["modified"] == 1
    assert figures["recovery_s"] == 0.5
    judged = judge_fault(dict(figures, type="kill", max_lost=None, max_recovery_s=30.0,
                              back_within_s=60.0, counted=True, name="fault 1", back_at_s=21.5,
                              loss_window={"window_ms": 700.0, "max_buffer_size": 50000}), 50.0)  # fmt: skip
    assert judged["allowed_lost"] == math.ceil(50 * 0.7) == 35
    assert judged["verdict"] == "FAIL"
    assert [b["criterion"] for b in judged["breaches"]] == ["fault_modified"]


def judged(**figures) -> dict:
    fault = {"type": "pause", "name": "fault 1", "max_lost": None, "max_recovery_s": 30.0,
             "back_within_s": 60.0, "counted": True, "applied_s": 5.0, "lost": 0,
             "duplicated": 0, "modified": 0, "recovery_s": 1.0, "band_p99_ms": 600.0}  # fmt: skip
    return judge_fault(dict(fault, **figures), 50.0)


def test_each_fault_is_judged_against_what_the_observer_promises():
    assert judged()["verdict"] == "PASS"
    # A pause loses nothing.
    lost = judged(lost=1)
    assert lost["verdict"] == "FAIL" and lost["breaches"][0]["criterion"] == "fault_lost"
    assert judged(recovery_s=31.0)["breaches"][0]["criterion"] == "fault_recovery"
    assert (
        judged(recovery_s=None)["breaches"][0]["message"] == "not recovered before the level ended"
    )
    # Without a band (records not followed) the recovery is not measured, never passed.
    assert judged(recovery_s=None, band_p99_ms=None)["verdict"] == "NOT MEASURED"
    # A kill of an Observer whose loss window is unknown: its loss is not judged.
    unknown = judged(type="kill", back_at_s=6.0, loss_window=None, lost=3)
    assert unknown["verdict"] == "NOT MEASURED" and unknown["allowed_lost"] is None
    assert judged(type="kill", back_at_s=6.0, max_lost=3, lost=3)["verdict"] == "PASS"
    # Not back: a failure; not applied: nothing measured.
    assert judged(type="kill", back_at_s=None, error="the Observer was not back within 60 s")[
        "breaches"][0]["criterion"] == "fault_back"  # fmt: skip
    assert judged(applied_s=None, error="not applied: the level ended before its moment")[
        "verdict"] == "NOT MEASURED"  # fmt: skip


def test_planned_restarts_keep_the_run_stable_only_as_a_chain_from_start_to_end():
    def stability(restarts, end_pid):
        # Nothing sent: only the stability criterion has anything to judge.
        level = {"rate": 5, "sent": 0, "written": 0, "lost": 0, "duplicated": 0, "modified": 0,
                 "restarts": restarts}  # fmt: skip
        criteria = judge_run([level], 1, baseline=None, recovery=None, shutdown=None,
                             start_pid=100, end_pid=end_pid)  # fmt: skip
        return next(c for c in criteria if c["name"] == "stability")

    chain = [{"pid_before": 100, "pid_after": 200}, {"pid_before": 200, "pid_after": 300}]
    assert stability(chain, 300)["verdict"] == "PASS"
    assert (
        "restarted by 2 planned fault(s): 100 -> 200, 200 -> 300"
        in stability(chain, 300)["evidence"]
    )
    # Another PID at the end than the planned restarts left: an unplanned restart.
    assert stability(chain, 400)["verdict"] == "FAIL"
    assert stability([], 200)["verdict"] == "FAIL"


# -- real processes -------------------------------------------------------------------------


class Restarting:
    """The reference Observer kept running as a service manager would: started again 0.3 s
    after it dies, on the same pipe, pidfile and output folder."""

    def __init__(self, work: Path, config: dict) -> None:
        self.work, self.stopping, self.processes = work, False, []
        (work / "config.json").write_text(json.dumps(config))
        os.mkfifo(work / "input.fifo")
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not (work / "observer.pid").exists():
            assert time.monotonic() < deadline, "the Observer did not start"
            time.sleep(0.05)

    def _run(self) -> None:
        work = self.work
        while not self.stopping:
            process = subprocess.Popen(
                [sys.executable, "observer.py", "--config", str(work / "config.json"),
                 "--input", str(work / "input.fifo"), "--output-dir", str(work / "out"),
                 "--pidfile", str(work / "observer.pid"), "--log-file", str(work / "observer.log")],
                cwd=OBSERVER_DIR,
            )  # fmt: skip
            self.processes.append(process)
            process.wait()
            time.sleep(0.3)

    @property
    def pid(self) -> int:
        return self.processes[-1].pid

    def stop(self) -> None:
        self.stopping = True
        self.processes[-1].send_signal(signal.SIGTERM)
        self.thread.join(timeout=30)


def reference_config(buffering: bool) -> dict:
    config = json.loads((OBSERVER_DIR / "config" / "stress_config.json").read_text())
    config["buffer"]["enable_buffering"] = buffering
    return config


@pytest.mark.process
@pytest.mark.parametrize("buffering", [True, False])
def test_the_sender_outlives_a_planned_kill_and_only_the_held_records_are_lost(tmp_path, buffering):
    """10/s for 8 s, the Observer killed 50 ms after the send due at 3 s: buffering, it loses
    what it held since its last flush (500 ms of records, and the 200 ms its trigger may let
    pending work wait); writing through, nothing. The sender sends to the new Observer once it
    reads."""
    observer = Restarting(tmp_path, reference_config(buffering))
    state = StateFile(str(tmp_path / "faults.json"))
    plan = LevelPlan(rate=10, duration_s=8, seed=3, level=1, run_tag="F", start_at=time.time() + 1)
    fault = {"fault": 1, "name": "fault 1", "type": "kill", "at_s": 3.05, "duration_s": 0.0,
             "back_within_s": 30.0}  # fmt: skip
    run = FaultRun(fault, pidfile=str(tmp_path / "observer.pid"), pipe=str(tmp_path / "input.fifo"),
                   state=state, stop=lambda: False)  # fmt: skip
    killer = threading.Thread(target=run.run, args=(plan.start_at,))
    killer.start()
    fd = open_pipe(str(tmp_path / "input.fifo"))
    first = observer.pid
    try:
        outcome = inject(plan, fd, ProcessWatch(first), str(tmp_path / "L1.sent.jsonl"),
                         outages=Outages([[2.0, 40.0]], str(tmp_path / "observer.pid"),
                                         str(tmp_path / "input.fifo")))  # fmt: skip
    finally:
        os.close(fd)
        killer.join(timeout=60)
        time.sleep(1.0)  # past one flush of the new Observer
        observer.stop()
    assert outcome.failure is None and outcome.sent == 80
    (restart,) = outcome.restarts
    assert restart["pid_before"] == first == run.record["pid_before"]
    assert restart["pid_after"] == observer.processes[1].pid == run.record["pid_after"]
    assert 3.0 < restart["died_s"] < restart["back_s"] < 30.0
    sent = read_ledger(str(tmp_path / "L1.sent.jsonl"))
    written = {r for r, _unused, _unused in scan_records(str(tmp_path / "out"),
                                                         run_id_prefix("F", 1).encode())}  # fmt: skip
    missing = sorted(int(r.rsplit(b"_", 1)[1]) for r in sent if r not in written)
    if buffering:
        # Held since the last flush: due within 0.7 s before the kill at 3.05 s.
        assert all(2.35 <= n / 10 <= 3.05 for n in missing), missing
    else:
        assert missing == []
    assert state.read() == []


@pytest.mark.process
def test_a_pause_and_a_cpu_cap_are_reverted_and_what_a_killed_job_left_is_reverted_next(
    tmp_path,
):
    """SIGSTOP then SIGCONT; a CPU cap that moves the Observer into a cgroup of its own and
    back; and a pause whose job died before reverting it, continued by the next job."""
    observer = Restarting(tmp_path, reference_config(True))
    state = StateFile(str(tmp_path / "faults.json"))
    pidfile, pipe = str(tmp_path / "observer.pid"), str(tmp_path / "input.fifo")
    try:
        pid = observer.pid
        pause = {"fault": 1, "name": "fault 1", "type": "pause", "at_s": 0.0, "duration_s": 1.0,
                 "back_within_s": 30.0}  # fmt: skip
        seen = []

        def watch_state() -> None:
            time.sleep(0.5)
            seen.append(_state_of(pid))

        watcher = threading.Thread(target=watch_state)
        watcher.start()
        record = FaultRun(pause, pidfile=pidfile, pipe=pipe, state=state,
                          stop=lambda: False).run(time.time())  # fmt: skip
        watcher.join()
        assert seen == ["T"] and record["error"] is None
        assert 0.9 < record["ended_at"] - record["applied_at"] < 5.0
        assert _state_of(pid) != "T" and state.read() == []

        if cpu_hierarchy(pid) is not None:
            before = _cpu_cgroup(pid)
            cpu = {"fault": 2, "name": "fault 2", "type": "cpu", "at_s": 0.0, "duration_s": 1.0,
                   "quota_pct": 5, "back_within_s": 30.0}  # fmt: skip
            during = []
            timer = threading.Timer(0.5, lambda: during.append(_cpu_cgroup(pid)))
            timer.start()
            record = FaultRun(cpu, pidfile=pidfile, pipe=pipe, state=state,
                              stop=lambda: False).run(time.time())  # fmt: skip
            timer.join()
            assert record["error"] is None and during == ["/qts-stress-fault-%d" % pid]
            assert _cpu_cgroup(pid) == before and state.read() == []

        # A job killed mid-pause left it applied: the next one continues the Observer.
        os.kill(pid, signal.SIGSTOP)
        state.add({"type": "pause", "pid": pid, "start_time": process_start_time(pid)})
        assert revert_left(state) == ["pause of pid %d: continued (SIGCONT)" % pid]
        assert _state_of(pid) != "T" and state.read() == []
    finally:
        observer.stop()


def _state_of(pid: int) -> str:
    return Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()[0]


def _cpu_cgroup(pid: int) -> str:
    for line in Path("/proc/%d/cgroup" % pid).read_text().splitlines():
        _number, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
    return ""


def test_the_shipped_example_applies_each_fault_once_during_the_specs_top_level():
    example = yaml.safe_load((OBSERVER_DIR.parents[1] / "examples" / "faults.yml").read_text())
    levels = resolve_levels(example["stress_profile"], None)
    faults, errors = plan_faults(example["stress_faults"], levels, HOSTS)
    assert errors == []
    assert sorted(f["type"] for f in faults) == sorted(FAULT_TYPES)
    assert {f["level"] for f in faults} == {len(levels)} and levels[-1]["rate"] == 50


@pytest.mark.process
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a filesystem to fill needs root")
def test_only_a_filesystem_named_expendable_is_filled_and_the_filler_is_removed(tmp_path):
    """The host's root filesystem is never filled; a filesystem of its own is, once named:
    every free block taken (a write fails with ENOSPC), then given back."""
    folder = tmp_path / "records"
    folder.mkdir()
    assert "root filesystem: never filled" in disk_full_reason(str(folder), [str(folder)])
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], check=True)
    try:
        assert "is not named in stress_fault_expendable_filesystems" in disk_full_reason(
            str(folder), []
        )
        assert disk_full_reason(str(folder / "."), [str(folder)]) is None
        state = StateFile(str(tmp_path / "faults.json"))
        entry = {"type": "disk_full", "filler": str(folder / ".qts-stress-fault-filler")}
        state.add(entry)
        fill(entry["filler"])
        assert os.statvfs(folder).f_bavail == 0
        with pytest.raises(OSError, match="No space left"):
            (folder / "record.jsonl").write_bytes(b"x" * 8192)
        # What a job killed mid-fault left is reverted by the next one.
        assert revert_left(state) == ["disk_full of %s: filler removed" % folder]
        assert (
            os.statvfs(folder).f_bavail > 0 and not (folder / ".qts-stress-fault-filler").exists()
        )
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


@pytest.mark.process
def test_an_io_cap_or_a_restart_without_systemd_is_refused_by_name_and_reason(tmp_path):
    """This machine runs no systemd and has no cgroup v2 io controller: an I/O cap and a
    graceful restart of an Observer it runs are refused, each saying why."""
    observer = Restarting(tmp_path, reference_config(True))
    try:
        found = Observer(str(tmp_path / "observer.pid"))
        io = {"fault": 1, "name": "fault 1 (io 1048576 B/s 5 s at 2 s of level 1)", "type": "io"}
        restart = {"fault": 2, "name": "fault 2 (restart at 9 s of level 1)", "type": "restart"}
        assert refusal(io, found, (str(tmp_path / "out"), [])) == (
            "fault 1 (io 1048576 B/s 5 s at 2 s of level 1): an I/O limit needs the Observer "
            "to be a systemd service (IOWriteBandwidthMax=)"
        )
        assert refusal(restart, found).endswith("a graceful restart needs systemd")
        assert refusal({"fault": 3, "name": "f3", "type": "pause"}, found) is None
    finally:
        observer.stop()


def test_a_faults_moment_counts_from_the_levels_first_send_even_when_it_began_late(tmp_path):
    """The load may begin later than agreed on a busy host; the sender counts the level from
    its first send, and so do the faults (read from the level's progress file)."""
    progress = tmp_path / "L1.progress.json"
    agreed = time.time()
    params = {"start_at": agreed, "progress_file": str(progress)}
    # A progress file left by an earlier level is not this level's start.
    progress.write_text(json.dumps({"started_at": agreed - 60.0, "done": False}))
    threading.Timer(0.3, lambda: progress.write_text(
        json.dumps({"started_at": agreed + 1.6, "done": False}))).start()  # fmt: skip
    assert _level_start(params) == agreed + 1.6
    # A level whose load failed before its first send: no fault is applied.
    progress.write_text(json.dumps({"done": True, "failed": True}))
    assert _level_start(params) is None
    assert _level_start({"start_at": agreed, "progress_file": None}) == agreed
