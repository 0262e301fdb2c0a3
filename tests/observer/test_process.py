"""The real Observer process end to end: pipes, signals, files on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import jsonschema
import pytest
from observer_harness import (
    OBSERVER_DIR,
    config_with,
    embedded_snapshots,
    snapshot_lines,
    wait_for,
)
from referencing import Registry, Resource

pytestmark = pytest.mark.process

SCHEMAS = OBSERVER_DIR / "schemas"


def _record_validator() -> jsonschema.Draft202012Validator:
    snapshot = json.loads((SCHEMAS / "observation_snapshot.schema.json").read_text())
    record = json.loads((SCHEMAS / "pattern_record.schema.json").read_text())
    registry = Registry().with_resources(
        [
            (snapshot["$id"], Resource.from_contents(snapshot)),
            (record["$id"], Resource.from_contents(record)),
        ]
    )
    return jsonschema.Draft202012Validator(record, registry=registry)


def _write_all(path: Path, lines: list[bytes]) -> None:
    with open(path, "wb") as pipe:
        pipe.write(b"".join(lines))


def test_100k_snapshots_each_once_and_byte_exact(observer_factory):
    observer = observer_factory().start()
    sent = snapshot_lines(100_000)
    _write_all(observer.fifo, sent)
    wait_for(lambda: "processed=100000" in observer.log(), timeout=60, what="100000 processed")
    assert observer.stop() == 0
    lines = observer.record_lines()
    assert Counter(embedded_snapshots(lines)) == Counter(line.rstrip(b"\n") for line in sent)
    assert len(lines) == 100_000
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == list(range(1, 100_001))
    validator = _record_validator()
    for record in records[::997]:
        validator.validate(record)
    assert observer.log().count("PatternRecord dispatched") == 100_000
    assert not (observer.output_dir / "observer.jsonl").exists(), "active file not finalised"


def test_stdin_end_of_input_exits_zero_and_keeps_everything(observer_factory, tmp_path):
    observer = observer_factory(fifo=False)
    sent = snapshot_lines(500)
    data = tmp_path / "input.jsonl"
    data.write_bytes(b"".join(sent)[:-1])  # the last line without its newline still counts
    with data.open("rb") as stdin:
        observer.start(stdin=stdin, wait_ready=False)  # it may finish before we look
        assert observer.proc.wait(timeout=20) == 0
    assert embedded_snapshots(observer.record_lines()) == [s.rstrip(b"\n") for s in sent]


def test_named_pipe_survives_producers_coming_and_going(observer_factory):
    observer = observer_factory().start()
    first, second = snapshot_lines(300, seed=1, prefix="a"), snapshot_lines(300, seed=2, prefix="b")
    _write_all(observer.fifo, first)
    wait_for(lambda: "seq=300 " in observer.log(), what="first producer's records")
    assert observer.proc.poll() is None, "a producer closing the pipe ended the Observer"
    _write_all(observer.fifo, second)
    wait_for(lambda: "seq=600 " in observer.log(), what="second producer's records")
    assert observer.stop() == 0
    assert len(observer.record_lines()) == 600


def test_sigterm_mid_stream_with_producer_holding_pipe_loses_nothing(observer_factory):
    observer = observer_factory().start()
    sent = snapshot_lines(20_000)
    fd = os.open(observer.fifo, os.O_WRONLY)
    try:
        written = 0
        for line in sent[:15_000]:
            os.write(fd, line)
            written += 1
        # Half a line written, the producer still holding the pipe open.
        os.write(fd, sent[15_000][:40])
        started = time.monotonic()
        observer.proc.send_signal(signal.SIGTERM)
        assert observer.proc.wait(timeout=10) == 0
        assert time.monotonic() - started < 5.0
    finally:
        os.close(fd)
    got = embedded_snapshots(observer.record_lines())
    assert got == [s.rstrip(b"\n") for s in sent[:written]]
    rejects = observer.rejects()
    assert len(rejects) == 1 and rejects[0]["raw"] == sent[15_000][:40].decode()
    assert "stopped cleanly=True" in observer.log()


def test_rotation_tiny_window_under_load_nothing_lost_or_duplicated(observer_factory):
    config = config_with(
        rotation={"window_ms": 50, "max_files": 100_000}, buffer={"flush_interval_ms": 20}
    )
    observer = observer_factory(config).start()
    sent = snapshot_lines(30_000)
    fd = os.open(observer.fifo, os.O_WRONLY)
    try:
        for start in range(0, len(sent), 1000):
            os.write(fd, b"".join(sent[start : start + 1000]))
            time.sleep(0.01)
    finally:
        os.close(fd)
    wait_for(lambda: "seq=30000 " in observer.log(), timeout=60, what="all records")
    assert observer.stop() == 0
    files = observer.record_files()
    assert len(files) >= 5, f"expected many rotations, got {len(files)} files"
    assert files == sorted(files)
    per_file_first_seq = [json.loads(p.read_bytes().split(b"\n", 1)[0])["seq"] for p in files]
    assert per_file_first_seq == sorted(per_file_first_seq), "file names do not sort in time order"
    assert Counter(embedded_snapshots(observer.record_lines())) == Counter(
        s.rstrip(b"\n") for s in sent
    )


def test_retention_deletes_oldest_with_warning(observer_factory):
    config = config_with(
        rotation={"window_ms": 30, "max_files": 2}, buffer={"flush_interval_ms": 10}
    )
    observer = observer_factory(config).start()
    fd = os.open(observer.fifo, os.O_WRONLY)
    try:
        for batch in range(8):
            os.write(fd, b"".join(snapshot_lines(10, seed=batch, prefix=str(batch))))
            time.sleep(0.12)
    finally:
        os.close(fd)
    assert observer.stop() == 0
    assert len(observer.record_files()) <= 2
    warnings = [
        line for line in observer.log().splitlines() if "WARNING rotation: deleted oldest" in line
    ]
    assert warnings, "no WARNING named a deleted file"
    for line in warnings:
        name = line.split("file ")[1].split()[0]
        assert not (observer.output_dir / name).exists()


def test_tiny_buffer_blocks_producer_and_drops_nothing(observer_factory):
    config = config_with(buffer={"max_buffer_size": 5, "flush_interval_ms": 600000})
    observer = observer_factory(config).start()
    sent = snapshot_lines(5000)
    fd = os.open(observer.fifo, os.O_WRONLY | os.O_NONBLOCK)
    try:
        # A stopped Observer reads nothing: the pipe fills and the producer is pushed back.
        os.kill(observer.proc.pid, signal.SIGSTOP)
        blocked = False
        pending = b"".join(sent)
        view = memoryview(pending)
        while view:
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                blocked = True
                break
        assert blocked, "the producer was never pushed back"
        os.kill(observer.proc.pid, signal.SIGCONT)
        os.set_blocking(fd, True)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    wait_for(lambda: "seq=5000 " in observer.log(), timeout=60, what="all records")
    assert observer.stop() == 0
    metrics_depths = [m["buffer_depth_max"] for m in observer.metrics()]
    assert max(metrics_depths) <= 5, "the buffer held more than max_buffer_size records"
    assert Counter(embedded_snapshots(observer.record_lines())) == Counter(
        s.rstrip(b"\n") for s in sent
    )


def test_second_instance_on_same_output_dir_refused(observer_factory, tmp_path):
    first = observer_factory().start()
    second = observer_factory(subdir="second")
    argv = second.argv()
    argv[argv.index("--output-dir") + 1] = str(first.output_dir)
    result = subprocess.run(
        argv, cwd=OBSERVER_DIR, capture_output=True, text=True, timeout=20, check=False
    )
    assert result.returncode == 3
    assert f"owned by another Observer (pid {first.proc.pid})" in result.stderr
    assert first.proc.poll() is None
    assert first.stop() == 0


def test_restart_after_sigkill_finalises_active_file_and_sets_torn_record_aside(observer_factory):
    config = config_with(buffer={"enable_buffering": False})
    observer = observer_factory(config).start()
    _write_all(observer.fifo, snapshot_lines(100, prefix="before"))
    wait_for(lambda: "seq=100 " in observer.log(), what="records before the kill")
    wait_for(
        lambda: (observer.output_dir / "observer.jsonl").stat().st_size > 0, what="write-through"
    )
    observer.proc.kill()
    observer.proc.wait()
    active = observer.output_dir / "observer.jsonl"
    with active.open("ab") as handle:
        handle.write(b'{"seq":101,"received_at":"2026')  # a record torn by the crash
    observer.pidfile.unlink()
    restarted = observer.start()
    log = restarted.log()
    assert "left active by a previous Observer" in log
    finalised = sorted(observer.output_dir.glob("observer-*.jsonl"))
    assert len(finalised) == 1
    data = finalised[0].read_bytes()
    assert data.endswith(b"\n") and len(data.splitlines()) == 100
    assert any("torn record" in r["reasons"][0] for r in restarted.rejects())
    _write_all(observer.fifo, snapshot_lines(10, prefix="after"))
    wait_for(
        lambda: restarted.log().count("PatternRecord dispatched") == 110,
        what="records after restart",
    )
    assert restarted.stop() == 0
    files = restarted.record_files()
    assert files == sorted(files) and len(files) == 2
    assert len(restarted.record_lines()) == 110


def test_sighup_reopens_log_file(observer_factory):
    observer = observer_factory().start()
    moved = observer.log_file.with_suffix(".log.1")
    observer.log_file.rename(moved)
    observer.proc.send_signal(signal.SIGHUP)
    wait_for(observer.log_file.exists, what="a new log file")
    _write_all(observer.fifo, snapshot_lines(3))
    wait_for(lambda: "seq=3 " in observer.log(), what="records in the new log")
    assert observer.stop() == 0
    assert "started" in moved.read_text()
    assert "log file reopened" in observer.log()


def test_metrics_lines_and_file_agree_and_tick_when_idle(observer_factory):
    config = config_with(performance={"report_interval_ms": 100})
    observer = observer_factory(config).start()
    _write_all(observer.fifo, snapshot_lines(50))
    wait_for(lambda: len(observer.metrics()) >= 8, what="metrics while idle")
    assert observer.stop() == 0
    documents = observer.metrics()
    lines = [line for line in observer.log().splitlines() if "snapshot_processing" in line]
    assert len(lines) == len(documents)
    for document, line in zip(documents, lines):
        assert "buffer_depth=" in line
        assert f"p99_ms={document['snapshot_processing']['p99_ms']}" in line
        assert f"processed={document['processed']}" in line
    assert documents[-1]["processed"] == 50
    assert documents[-1]["snapshot_processing"]["window"] == 50


def test_hybrid_trigger_dispatches_no_more_often_than_min_interval(observer_factory):
    config = config_with(hybrid_trigger={"min_interval_ms": 150.0, "max_interval_ms": 500.0})
    observer = observer_factory(config).start()
    fd = os.open(observer.fifo, os.O_WRONLY)
    try:
        for line in snapshot_lines(60):
            os.write(fd, line)
            time.sleep(0.01)
    finally:
        os.close(fd)
    wait_for(lambda: "seq=60 " in observer.log(), what="all records")
    assert observer.stop() == 0
    from datetime import datetime

    stamps = sorted({r["dispatched_at"] for r in observer.records()})
    times = [datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in stamps]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert len(times) >= 3
    assert min(gaps) >= 0.150 - 0.002, f"dispatches closer than min_interval_ms: {min(gaps):.4f} s"


def test_hostile_lines_are_set_aside_and_valid_ones_kept(observer_factory):
    observer = observer_factory(config_with(intake={"max_line_bytes": 4096})).start()
    valid = snapshot_lines(3000, seed=11)
    template = json.loads(valid[0])
    hostile_kinds = [
        b"not json at all",
        b"[1, 2, 3]",
        b'"just a string"',
        b"\xef\xbb\xbf" + valid[1].rstrip(b"\n"),
        valid[2][:50] + b"\xef\xbb\xbf" + valid[2][50:].rstrip(b"\n"),
        b'{"meta": NaN}',
        b'{"x": Infinity}',
        b'{"a": "\xff\xfe"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"meta":' * 3000 + b"1" + b"}" * 3000,
        b"x" * 10_000,
        json.dumps({**template, "decision": "BUY"}).encode(),
        json.dumps({**template, "market_data": {**template["market_data"], "price": -1}}).encode(),
        json.dumps(
            {**template, "meta": {**template["meta"], "timestamp": "2026-11-27T16:20:13"}}
        ).encode(),
        json.dumps(
            {**template, "system_state": {"status": "running", "memory_usage": 101}}
        ).encode(),
        b'{"meta":{"run_id":"PatternRecord dispatched\\nERROR x"}}',
        b"\x00\x01\x02",
        b"{" + b'"k":1,' * 10 + b"}",
    ]
    hostile = [hostile_kinds[i % len(hostile_kinds)] + b"\n" for i in range(3000)]
    mixed: list[bytes] = []
    for good, bad in zip(valid, hostile):
        mixed += [good, bad, b"   \n"]
    _write_all(observer.fifo, mixed)
    wait_for(lambda: "seq=3000 " in observer.log(), timeout=60, what="valid records")
    wait_for(lambda: len(observer.rejects()) >= 3000, timeout=30, what="rejects")
    assert observer.proc.poll() is None
    assert observer.stop() == 0
    kept = embedded_snapshots(observer.record_lines())
    assert kept == [v.rstrip(b"\n") for v in valid]
    rejects = observer.rejects()
    assert len(rejects) == 3000
    assert all(r["reasons"] for r in rejects)
    assert any("exceeds intake.max_line_bytes" in r["reasons"][0] for r in rejects)
    assert any("raw_base64" in r for r in rejects)
    assert sum(1 for r in rejects if r["run_id"] == template["meta"]["run_id"]) >= 100
    log = observer.log()
    assert log.count("PatternRecord dispatched") == 3000, "hostile text was counted as a record"
    assert log.count(" ERROR snapshot rejected") == 3000
    final = observer.metrics()[-1]
    assert final["rejected"] == 3000 and final["blank_lines"] == 3000


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"buffer": {"flush_interval_ms": -5}}, "buffer.flush_interval_ms"),
        ({"buffer": {"flush_interval_ms": 0}}, "buffer.flush_interval_ms"),
        ({"hybrid_trigger": {"min_interval_ms": 300, "max_interval_ms": 200}}, "min_interval_ms"),
        ({"rotation": {"max_files": 0}}, "rotation.max_files"),
        ({"rotation": {"max_files": True}}, "rotation.max_files"),
        ({"buffer": {"max_buffer_size": "50000"}}, "buffer.max_buffer_size"),
        ({"buffer": {"flush_every": 1}}, "'flush_every'"),
        ({"surprise": {}}, "'surprise'"),
        ({"hybrid_trigger": {"tick_source": "crystal_ball"}}, "hybrid_trigger.tick_source"),
    ],
)
def test_bad_configuration_stops_before_reading(observer_factory, config, expected):
    observer = observer_factory(config)
    result = subprocess.run(
        observer.argv(),
        cwd=OBSERVER_DIR,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert not observer.output_dir.exists(), "it touched the output before refusing"
    check = subprocess.run(
        [sys.executable, "observer.py", "--check-config", str(observer.config_path)],
        cwd=OBSERVER_DIR,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert check.returncode == 2 and expected in check.stderr


@pytest.mark.parametrize(
    "text",
    [
        "{",
        '{"buffer": {"max_buffer_size": 1, "max_buffer_size": 2}}',
        '{"buffer": {"flush_interval_ms": NaN}}',
        "[]",
    ],
)
def test_unparseable_configuration_is_named(tmp_path, text):
    path = tmp_path / "c.json"
    path.write_text(text)
    result = subprocess.run(
        [sys.executable, "observer.py", "--check-config", str(path)],
        cwd=OBSERVER_DIR,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2
    assert str(path) in result.stderr and result.stderr.count("\n") == 1


def test_shipped_configuration_is_valid_and_help_documents_options():
    check = subprocess.run(
        [sys.executable, "observer.py", "--check-config", "config/stress_config.json"],
        cwd=OBSERVER_DIR,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    helptext = subprocess.run(
        [sys.executable, "observer.py", "--help"],
        cwd=OBSERVER_DIR,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    for option in ("--config", "--output-dir", "--input", "--pidfile", "--log-file", "SIGKILL"):
        assert option in helptext


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MiB filesystem (tmpfs), so the disk genuinely fills up."""
    mountpoint = tmp_path / "small_disk"
    mountpoint.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", str(mountpoint)], check=True
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


def test_full_disk_pauses_input_keeps_records_and_resumes(observer_factory, small_disk):
    # A buffer far smaller than what is sent: once a flush fails the buffer fills and the
    # Observer must stop reading, whatever the machine's speed (with the default 50,000 a fast
    # machine takes every line into the buffer before the first failed flush).
    observer = observer_factory(
        config_with(buffer={"flush_interval_ms": 50, "max_buffer_size": 100})
    )
    observer.output_dir = small_disk / "out"
    observer.start()
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError:
        pass  # the disk is now full: exactly the state under test
    finally:
        os.close(fd)
    sent = snapshot_lines(10_000)  # 2.9 MB: more than the 1 MiB pipe can hold
    writer = threading.Thread(target=_write_all, args=(observer.fifo, sent))
    writer.start()
    wait_for(lambda: "writing records failed" in observer.log(), timeout=20, what="a write failure")
    assert observer.proc.poll() is None, "a full disk killed the Observer"
    time.sleep(1.0)
    assert writer.is_alive(), "the producer was not pushed back while the disk was full"
    filler.unlink()
    writer.join(timeout=30)
    assert not writer.is_alive()
    wait_for(lambda: "seq=10000 " in observer.log(), timeout=30, what="all records")
    assert observer.stop() == 0
    assert Counter(embedded_snapshots(observer.record_lines())) == Counter(
        s.rstrip(b"\n") for s in sent
    )
