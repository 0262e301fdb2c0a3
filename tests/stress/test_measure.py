"""Measuring a level against the real Observer's files, and catching tampering."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.qts.observer.plugins.filter.observer_interface import resolve
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.measure import (
    integrity,
    latencies,
    log_errors,
    metrics_window,
    monitor_window,
    read_ledger,
    read_log,
    scan_records,
)

pytestmark = pytest.mark.process

OBSERVER_DIR = Path(__file__).resolve().parents[2] / "files" / "observer"
PREFIX = b"stress_ML1_"


@pytest.fixture(scope="module")
def level_run(tmp_path_factory):
    """One real level: the real Observer fed by the real injector, then stopped cleanly."""
    work = tmp_path_factory.mktemp("level")
    fifo = work / "input.fifo"
    os.mkfifo(fifo)
    pidfile = work / "observer.pid"
    observer = subprocess.Popen(
        [
            sys.executable,
            "observer.py",
            "--input",
            str(fifo),
            "--output-dir",
            str(work / "out"),
            "--pidfile",
            str(pidfile),
            "--log-file",
            str(work / "observer.log"),
        ],
        cwd=OBSERVER_DIR,
    )
    deadline = time.monotonic() + 20
    while not pidfile.exists():
        assert observer.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    fd = open_pipe(str(fifo))
    plan = LevelPlan(rate=200, duration_s=2, seed=4, level=1, run_tag="M")
    outcome = inject(plan, fd, ProcessWatch(observer.pid), str(work / "L1.sent.jsonl"))
    os.close(fd)
    time.sleep(1.2)  # past one metrics report and one flush
    observer.send_signal(signal.SIGTERM)
    assert observer.wait(timeout=10) == 0
    return work, outcome


def test_clean_level_is_complete_and_unchanged(level_run):
    work, outcome = level_run
    sent = read_ledger(str(work / "L1.sent.jsonl"))
    found = scan_records(str(work / "out"), PREFIX)
    figures = integrity(sent, found)
    assert figures == {
        "sent": 400,
        "written": 400,
        "lost": 0,
        "duplicated": 0,
        "modified": 0,
        "unexpected": 0,
        "extra_fields": [],
        "decision_fields": [],
    }
    lat = latencies(found)
    assert lat["latency_source"] == "records (processing_latency_ms)"
    assert 0 <= lat["latency_ms"]["p50"] <= lat["latency_ms"]["p99"] <= lat["latency_ms"]["max"]
    assert lat["e2e_latency_ms"]["p50"] >= lat["latency_ms"]["p50"] - 1.0
    window = metrics_window(
        str(work / "out" / "metrics.jsonl"), outcome.started_at - 1, outcome.finished_at + 5
    )
    assert window["reports"] >= 2 and window["flushes"] >= 1 and window["rejected"] == 0
    assert (
        log_errors(str(work / "observer.log"), outcome.started_at - 1, outcome.finished_at + 5) == 0
    )
    # The reference interface reads the reference Observer's own log lines: one dispatch line
    # per record, with its latency.
    log = read_log(str(work / "observer.log"), None, 0, time.time(), PREFIX)
    assert len(log["dispatched"]) == 400
    assert all(latency is not None for latency in log["dispatched"].values())


def _tampered(work, tmp_path, edit, interface=None):
    copy = tmp_path / "out"
    copy.mkdir(parents=True)
    for path in (work / "out").glob("observer-*.jsonl"):
        lines = path.read_bytes().splitlines(keepends=True)
        (copy / path.name).write_bytes(b"".join(edit(lines)))
    sent = read_ledger(str(work / "L1.sent.jsonl"))
    return integrity(sent, scan_records(str(copy), PREFIX, interface), interface)


def test_lost_duplicated_modified_and_extra_fields_are_counted(level_run, tmp_path):
    work, _unused = level_run
    lost = _tampered(work, tmp_path / "a", lambda lines: lines[3:])
    assert (lost["lost"], lost["written"]) == (3, 397)
    dup = _tampered(work, tmp_path / "b", lambda lines: [*lines, lines[0], lines[1]])
    assert dup["duplicated"] == 2 and dup["lost"] == 0
    mod = _tampered(
        work,
        tmp_path / "c",
        lambda lines: [lines[0].replace(b'"volume":', b'"volume": '), *lines[1:]],
    )
    assert mod["modified"] == 1

    def add_field(lines):
        record = json.loads(lines[5])
        record["decision"] = "BUY"
        return [*lines[:5], (json.dumps(record, separators=(",", ":")) + "\n").encode(), *lines[6:]]

    extra = _tampered(work, tmp_path / "d", add_field)
    assert extra["extra_fields"] == ["decision"]
    assert extra["decision_fields"] == ["decision"]


def test_a_reserialising_observer_is_compared_by_content(level_run, tmp_path):
    """Embedded by content, not bytes: spacing is no change, a price is."""
    work, _unused = level_run
    by_content = resolve({"embeds_verbatim": False})["interface"]
    spaced = _tampered(
        work,
        tmp_path / "a",
        lambda lines: [lines[0].replace(b'"volume":', b'"volume": '), *lines[1:]],
        by_content,
    )
    assert (spaced["modified"], spaced["written"]) == (0, 400)

    def reprice(lines):
        record = json.loads(lines[7])
        record["snapshot"]["market_data"]["price"] += 0.01
        return [*lines[:7], (json.dumps(record) + "\n").encode(), *lines[8:]]

    assert _tampered(work, tmp_path / "b", reprice, by_content)["modified"] == 1


@pytest.mark.unit
def test_monitor_window_reads_the_monitor_csv(tmp_path):
    csv_path = tmp_path / "monitor.csv"
    header = "Timestamp,CPU%,Memory%,Disk%,Network_Recv_MB,Network_Sent_MB,Observer_PID,Observer_CPU%,Observer_Memory_MB\n"
    rows = [
        f"2026-11-27T16:20:{second:02d}.000Z,{90.0 if second == 5 else 20.0},50.0,10.0,0,0,42,{5.0},{40.0 + second}\n"
        for second in range(30)
    ]
    csv_path.write_text(header + "".join(rows))
    start = 1_795_796_400.0  # 2026-11-27T16:20:00Z
    result = monitor_window(str(csv_path), start, start + 29, 10.0)
    assert result["samples"] == 30
    assert result["cpu_pct"]["peak"] == 90.0
    assert result["cpu_pct"]["sustained"] < 30.0  # one spike is not sustained
    assert result["observer_rss_mb"]["peak"] == 69.0
    assert result["observer_pids"] == ["42"]
