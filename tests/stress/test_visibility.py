"""Freshness: the follower that stamps when each record appears in the records files, on real
files and a real named pipe read by a real process that holds its records back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from ansible_collections.qts.observer.plugins.module_utils.gate import judged_level
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    Follow,
    InjectionError,
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.visibility import (
    RecordFollower,
    freshness,
)
from figures import healthy_figures

pytestmark = pytest.mark.process

PATTERN = r"^observer(-\d+)?\.jsonl$"
THRESHOLDS = {"min_throughput": 4.0, "max_latency_ms": 300.0, "max_cpu_pct": 100.0,
              "max_memory_pct": 100.0}  # fmt: skip


def test_the_follower_stamps_each_new_record_once_across_a_rotation(tmp_path):
    active = tmp_path / "observer.jsonl"
    active.write_text('{"run_id":"stress_L1_0"}\n')  # before the level: not this level's news
    (tmp_path / "other.log").write_text('{"run_id":"stress_L1_5"}\n')  # not a records file
    follower = RecordFollower(str(tmp_path), PATTERN, "stress_L1_")
    assert follower.poll() == 0
    with active.open("a") as handle:
        handle.write('{"run_id":"stress_L1_1"}\n{"run_id":"stress_L1_1"}\n{"run_id":"stress_L12_')
        handle.flush()
        before = time.monotonic()
        assert follower.poll() == 1  # a copy is not a new sighting; half a line waits
        handle.write('3"}\n{"run_id":"stress_L1_2"}\n')
    assert follower.poll() == 1  # the other level's run_id is not this level's
    # A rotation: the active file renamed, a new one begun; what is appended to either is read.
    active.rename(tmp_path / "observer-1.jsonl")
    with (tmp_path / "observer-1.jsonl").open("a") as handle:
        handle.write('{"run_id":"stress_L1_3"}\n')
    active.write_text('{"run_id":"stress_L1_4"}\n')
    time.sleep(0.15)  # the folder is listed again every 0.1 s
    assert follower.poll() == 2
    assert sorted(follower.seen) == [1, 2, 3, 4]
    assert all(stamp >= before for stamp in follower.seen.values())


# An Observer in miniature: reads snapshots from the pipe and writes each one to its records
# file only when HOLD seconds have passed since it was read (a flush interval, in effect).
HOLDING_OBSERVER = textwrap.dedent(
    """
    import os, sys, time
    hold, fifo, out = float(sys.argv[1]), sys.argv[2], sys.argv[3]
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    held, partial = [], b""
    with open(out, "ab") as records:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = None
            now = time.monotonic()
            if chunk:
                *lines, partial = (partial + chunk).split(b"\\n")
                held += [(now, line) for line in lines]
            while held and now - held[0][0] >= hold:
                records.write(held.pop(0)[1] + b"\\n")
                records.flush()
            time.sleep(0.002)
    """
)


def pipe_of(fifo) -> int:
    """The holding Observer's input, once it has started and opened its end."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return open_pipe(str(fifo))
        except InjectionError:
            assert time.monotonic() < deadline, "the holding Observer never read its pipe"
            time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("hold_s", [0.0, 0.4])
def test_visibility_latency_follows_what_the_observer_holds_back(tmp_path, hold_s):
    fifo, records = tmp_path / "input.fifo", tmp_path / "observer.jsonl"
    os.mkfifo(fifo)
    observer = subprocess.Popen(
        [sys.executable, "-c", HOLDING_OBSERVER, str(hold_s), str(fifo), str(records)]
    )
    try:
        fd = pipe_of(fifo)
        plan = LevelPlan(rate=50, duration_s=3, seed=1, level=1, run_tag="V")
        follow = Follow(str(tmp_path), PATTERN, "stress_VL1_", 10.0, str(tmp_path / "seen.tsv"))
        ledger = tmp_path / "ledger.jsonl"
        outcome = inject(plan, fd, ProcessWatch(observer.pid), str(ledger), follow_spec=follow)
        os.close(fd)
    finally:
        observer.kill()
        observer.wait()
    fresh = outcome.freshness
    assert fresh["sent"] == fresh["visible"] == 150, fresh
    visible = fresh["visibility_ms"]
    # Each record is seen after what the Observer held it for, and within the follower's poll
    # and a loaded machine's scheduling of three processes after it.
    assert visible["p50"] >= hold_s * 1000.0
    assert visible["p50"] < hold_s * 1000.0 + 150.0, fresh
    # The backlog drained after the last send: about the hold.
    assert hold_s * 1000.0 <= fresh["drain_ms"] < hold_s * 1000.0 + 500.0
    # Judged on it when the Observer reports no latency of its own: under the level's limit
    # with no hold; over it when the records are held back past it.
    figures = dict(healthy_figures(50.0, 3.0), latency_ms=None, freshness=fresh)
    level, line = judged_level(1, figures, THRESHOLDS, {})
    assert level["latency_judged_on"].startswith("visibility latency")
    if hold_s:
        assert level["verdict"] == "FAIL", line
        assert level["breaches"][0]["criterion"] == "max_latency_ms"
        assert "p99 visibility latency (the Observer reports none of its own" in line
    else:
        assert level["verdict"] == "PASS", line


@pytest.mark.unit
def test_a_self_reported_latency_above_the_visible_one_is_flagged():
    plan = LevelPlan(rate=10, duration_s=1, seed=1, level=1).schedule
    sent = list(plan.offsets)
    seen = {i: 100.0 + t + 0.020 for i, t in enumerate(sent)}  # each visible 20 ms after its due
    fresh = freshness(plan, sent, seen, mono_start=100.0, lateness_ms=[0.0] * 10, gave_up=200.0)
    assert fresh["visibility_ms"]["p99"] == pytest.approx(20.0, abs=0.01)
    honest = dict(healthy_figures(10.0, 1.0), freshness=fresh)
    honest["latency_ms"] = {"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 4.0}
    level, _unused = judged_level(1, honest, THRESHOLDS, {})
    assert level["flags"] == [] and level["latency_judged_on"] == "processing latency"
    boastful = dict(honest, latency_ms={"p50": 30.0, "p95": 40.0, "p99": 45.0, "max": 50.0})
    level, line = judged_level(1, boastful, THRESHOLDS, {})
    assert "flagged: the Observer's own p99 processing latency 45.000 ms is above" in line
    # A visibility limit of its own, for any Observer.
    level, line = judged_level(1, honest, dict(THRESHOLDS, max_visibility_ms=10.0), {})
    assert level["verdict"] == "FAIL" and "p99 visibility latency 20.000 ms not under 10 ms" in line


@pytest.mark.unit
def test_the_generators_lateness_and_records_never_seen_are_counted_fairly():
    plan = LevelPlan(rate=10, duration_s=1, seed=1, level=1).schedule
    due = list(plan.offsets)
    # The generator sent each 15 ms late; each record appeared 5 ms after it was sent; the
    # last one never did, and the follower gave up 2 s after the level's start.
    sent = [t + 0.015 for t in due]
    seen = {i: 100.0 + t + 0.005 for i, t in enumerate(sent[:9])}
    fresh = freshness(plan, sent, seen, mono_start=100.0, lateness_ms=[15.0] * 10, gave_up=102.0)
    assert fresh["visible"] == 9 and fresh["unseen"] == 1
    # From the intended time: the generator's 15 ms are in it. What the Observer took: 5 ms,
    # and the unseen record at least as late as the follower's end (2 s minus its due 0.9 s).
    assert fresh["visibility_ms"]["p50"] == pytest.approx(20.0, abs=0.01)
    assert fresh["observer_visibility_ms"]["p50"] == pytest.approx(5.0, abs=0.01)
    assert fresh["observer_visibility_ms"]["max"] == pytest.approx(1100.0 - 15.0, abs=0.01)
    figures = dict(healthy_figures(10.0, 1.0), latency_ms=None, freshness=fresh)
    level, line = judged_level(1, figures, THRESHOLDS, {})
    assert level["verdict"] == "FAIL"
    assert "(1 record(s) never seen, counted as seen when the follower gave up)" in line
    # A visibility limit with no sighting to judge it on is not measured, never a PASS.
    unfollowed = dict(healthy_figures(10.0, 1.0), freshness=None)
    level, line = judged_level(1, unfollowed, dict(THRESHOLDS, max_visibility_ms=10.0), {})
    assert level["verdict"] == "NOT MEASURED"
    assert "NOT MEASURED visibility: no record of the level was seen" in line


def test_a_records_file_idle_before_the_level_is_still_followed_when_it_grows(tmp_path):
    active, rotated = tmp_path / "observer.jsonl", tmp_path / "observer-1.jsonl"
    active.write_text("")
    rotated.write_text('{"run_id":"stress_L1_9"}\n')
    long_ago = time.time() - 3600
    os.utime(rotated, (long_ago - 60, long_ago - 60))
    os.utime(active, (long_ago, long_ago))
    follower = RecordFollower(str(tmp_path), PATTERN, "stress_L1_")
    assert follower.poll() == 0
    # The Observer, idle for an hour, writes the level's first record: seen at the next poll
    # (the newest file is followed however long it was idle).
    active.write_text('{"run_id":"stress_L1_0"}\n')
    assert follower.poll() == 1 and sorted(follower.seen) == [0]
    # A rotated file, an hour old, written to again: seen within a listing.
    with rotated.open("a") as handle:
        handle.write('{"run_id":"stress_L1_1"}\n')
    time.sleep(0.15)
    assert follower.poll() == 1 and sorted(follower.seen) == [0, 1]


@pytest.mark.slow
def test_an_observer_dying_before_writing_the_last_records_fails_the_level(tmp_path):
    fifo, records = tmp_path / "input.fifo", tmp_path / "observer.jsonl"
    os.mkfifo(fifo)
    # It holds every record 3 s: when the sending ends, the level's records are still held.
    observer = subprocess.Popen(
        [sys.executable, "-c", HOLDING_OBSERVER, "3.0", str(fifo), str(records)]
    )
    try:
        fd = pipe_of(fifo)
        plan = LevelPlan(rate=50, duration_s=1, seed=1, level=1, run_tag="D")
        follow = Follow(str(tmp_path), PATTERN, "stress_DL1_", 30.0, str(tmp_path / "seen.tsv"))
        # Killed half a second after the last send, while its records are held.
        threading.Timer(plan.duration_s + 0.6, observer.kill).start()
        began = time.monotonic()
        outcome = inject(plan, fd, ProcessWatch(observer.pid), str(tmp_path / "ledger"),
                         follow_spec=follow)  # fmt: skip
        took = time.monotonic() - began
        os.close(fd)
    finally:
        observer.kill()
        observer.wait()
    assert outcome.sent == 50
    assert outcome.failure.startswith("process failure: the Observer")
    assert "died before writing the level's last records" in outcome.failure
    # The follower stopped with it, long before its 30 s settle; what it saw is kept.
    assert took < 15, took
    assert outcome.freshness["visible"] == 0 and outcome.freshness["unseen"] == 50
    assert (tmp_path / "seen.tsv").read_text().startswith("sequence\tvisible_s")
