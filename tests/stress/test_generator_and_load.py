"""The load generator and the open-loop injector, on a real named pipe with a real reader."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import jsonschema
import pytest
from ansible_collections.qts.observer.plugins.module_utils import injector
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    InjectionError,
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.progress import level_progress
from ansible_collections.qts.observer.plugins.module_utils.snapshots import (
    SnapshotGenerator,
    run_id_prefix,
)

pytestmark = pytest.mark.process

OBSERVER_DIR = Path(__file__).resolve().parents[2] / "files" / "observer"
SCHEMA = json.loads((OBSERVER_DIR / "schemas" / "observation_snapshot.schema.json").read_text())


@pytest.mark.unit
def test_generated_snapshots_follow_the_contract_and_vary():
    validator = jsonschema.Draft202012Validator(SCHEMA)
    generator = SnapshotGenerator(seed=3, prefix="T")
    documents = [json.loads(generator.line(1_800_000_000 + i * 0.2)) for i in range(3000)]
    for document in documents:
        validator.validate(document)
    run_ids = [d["meta"]["run_id"] for d in documents]
    assert len(set(run_ids)) == 3000 and run_ids[0] == "stress_T_0"
    prices = [d["market_data"]["price"] for d in documents]
    assert 99.5 <= min(prices) < 99.6 and 100.4 < max(prices) <= 100.5
    volumes = [d["market_data"]["volume"] for d in documents]
    assert min(volumes) >= 100 and max(volumes) <= 10000 and len(set(volumes)) > 2000
    statuses = {d["system_state"]["status"] for d in documents}
    assert statuses == {"running", "high_memory"}
    for d in documents:
        assert (d["system_state"]["status"] == "high_memory") == (
            d["system_state"]["memory_usage"] >= 70.0
        )
    assert len({d["meta"]["timestamp"] for d in documents}) == 3000
    assert all(d["meta"]["source"] == "stress_test_simulation" for d in documents)


@pytest.mark.unit
def test_a_levels_run_ids_carry_the_prefix_the_measure_looks_for():
    """The generator and the readers (measure, check after the stop) share one format."""
    first = json.loads(
        injector.LevelPlan(rate=5, duration_s=1, seed=1, level=3, run_tag="Ab1")
        .generator()
        .line(0.0)
    )
    assert first["meta"]["run_id"] == run_id_prefix("Ab1", 3) + "0" == "stress_Ab1L3_0"
    assert run_id_prefix("Ab1", 3).startswith(run_id_prefix("Ab1"))
    # Level 1's prefix does not take in level 12's run_ids.
    assert not (run_id_prefix("Ab1", 12) + "0").startswith(run_id_prefix("Ab1", 1))


@pytest.mark.unit
def test_same_seed_and_level_replay_the_same_bytes():
    def level_lines(seed, level):
        generator = LevelPlan(
            rate=10, duration_s=1, seed=seed, level=level, run_tag="R"
        ).generator()
        return [generator.line(1_800_000_000 + i / 10) for i in range(200)]

    assert level_lines(5, 2) == level_lines(5, 2)
    assert level_lines(5, 2) != level_lines(6, 2)
    assert level_lines(5, 2) != level_lines(5, 3)


class PipeReader:
    """A real reader on a real named pipe, timestamping every line it receives."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.arrivals: list[tuple[float, bytes]] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        import select

        partial = b""
        while not self._stop:
            if not select.select([self.fd], [], [], 0.05)[0]:
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            now = time.monotonic()
            lines = (partial + chunk).split(b"\n")
            partial = lines.pop()
            self.arrivals.extend((now, line) for line in lines)

    def close(self):
        time.sleep(0.1)
        self._stop = True
        self._thread.join()
        os.close(self.fd)


def test_injector_is_open_loop_flushes_each_line_and_keeps_a_ledger(tmp_path, sleeper):
    reader = PipeReader(str(tmp_path / "in.fifo"))
    fd = open_pipe(reader.path)
    plan = LevelPlan(rate=50, duration_s=2, seed=1, level=1, run_tag="X")
    ledger = tmp_path / "ledger.jsonl"
    progress = tmp_path / "progress.json"
    outcome = inject(plan, fd, ProcessWatch(sleeper.pid), str(ledger), str(progress))
    os.close(fd)
    reader.close()
    assert outcome.failure is None and outcome.sent == outcome.planned == 100
    received = [line for _unused, line in reader.arrivals]
    assert received == ledger.read_bytes().splitlines()
    # Lines arrive spread over the schedule, not in bursts: 100 lines at 20 ms intervals
    # would take about 2 s; a block-buffered sender would deliver them in a few lumps.
    arrival_times = [t for t, _unused in reader.arrivals]
    distinct_reads = len({round(t, 4) for t in arrival_times})
    assert distinct_reads >= 80
    assert arrival_times[-1] - arrival_times[0] >= 1.9
    summary = outcome.as_dict()
    assert summary["lateness_ms"]["max"] < 1000
    state = json.loads(progress.read_text())
    assert state["done"] is True and state["sent"] == 100


def test_a_load_launched_after_the_agreed_start_says_it_ran_out_of_step(tmp_path, sleeper):
    """The controller took longer than stress_start_delay_s to launch a host's load: it
    still runs, and its progress warns that it began late and what to raise."""
    reader = PipeReader(str(tmp_path / "in.fifo"))
    fd = open_pipe(reader.path)
    warnings = {}
    for name, start_at in (("late", time.time() - 3.0), ("in step", time.time() + 0.3)):
        progress = tmp_path / f"{name}.progress.json"
        plan = LevelPlan(rate=20, duration_s=0.5, seed=1, level=1, start_at=start_at)
        outcome = inject(
            plan, fd, ProcessWatch(sleeper.pid), str(tmp_path / "ledger"), str(progress)
        )
        assert outcome.failure is None and outcome.sent == 10
        state = level_progress(
            str(progress),
            str(tmp_path / "metrics.jsonl"),
            str(tmp_path / "monitor.csv"),
            since=start_at,
            window_s=5.0,
            now=time.time(),
        )
        warnings[name] = state["warnings"]
    os.close(fd)
    reader.close()
    assert len(warnings["late"]) == 1, warnings
    assert warnings["late"][0].startswith("the load began 3.")
    assert "raise it" in warnings["late"][0] and "stress_start_delay_s" in warnings["late"][0]
    assert warnings["in step"] == []


def test_injector_counts_lateness_instead_of_skipping(tmp_path, sleeper, monkeypatch):
    reader = PipeReader(str(tmp_path / "in.fifo"))
    fd = open_pipe(reader.path)
    plan = LevelPlan(rate=1000, duration_s=0.5, seed=1, level=1)
    slow_line = SnapshotGenerator.line

    def stalled_line(self, epoch_s):  # a generator that stalls once, for 300 ms
        if not hasattr(self, "_stalled"):
            self._stalled = True
            time.sleep(0.3)
        return slow_line(self, epoch_s)

    monkeypatch.setattr(SnapshotGenerator, "line", stalled_line)
    outcome = inject(plan, fd, ProcessWatch(sleeper.pid), str(tmp_path / "ledger"), None)
    os.close(fd)
    reader.close()
    assert outcome.sent == 500, "late snapshots were skipped"
    assert outcome.as_dict()["lateness_ms"]["max"] >= 250
    assert len(reader.arrivals) == 500


def test_injector_ends_within_two_seconds_when_the_process_dies(tmp_path, sleeper):
    reader = PipeReader(str(tmp_path / "in.fifo"))
    fd = open_pipe(reader.path)
    plan = LevelPlan(rate=20, duration_s=30, seed=1, level=1)
    killer = threading.Timer(1.0, sleeper.kill)
    killer.start()
    started = time.monotonic()
    outcome = inject(plan, fd, ProcessWatch(sleeper.pid), str(tmp_path / "ledger"), None)
    ended = time.monotonic()
    os.close(fd)
    reader.close()
    assert outcome.failure and outcome.failure.startswith("process failure")
    assert ended - started < 1.0 + 2.0
    assert 0 < outcome.sent < outcome.planned


def test_pipe_without_reader_and_dead_pid_are_clear_errors(tmp_path, sleeper):
    path = tmp_path / "nobody.fifo"
    os.mkfifo(path)
    with pytest.raises(InjectionError, match="no Observer is reading"):
        open_pipe(str(path))
    plain = tmp_path / "plain"
    plain.write_text("")
    with pytest.raises(InjectionError, match="not a named pipe"):
        open_pipe(str(plain))
    sleeper.kill()
    sleeper.wait()
    with pytest.raises(InjectionError, match="not running"):
        ProcessWatch(sleeper.pid)
    pidfile = tmp_path / "pid"
    pidfile.write_text("garbage")
    with pytest.raises(InjectionError, match="not a PID"):
        injector.read_pidfile(str(pidfile))
