"""Progress warnings worded as their bands, and the run's raw data cut to its span while the
monitor and the Observer go on writing."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tarfile
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.qts.observer.plugins.action.stress_collect import _unpack
from ansible_collections.qts.observer.plugins.module_utils.artifacts import (
    HOST_FILES,
    make_private_folder,
)
from ansible_collections.qts.observer.plugins.module_utils.collect import collect, pack
from ansible_collections.qts.observer.plugins.module_utils.progress import (
    level_progress,
    warnings_for,
)
from ansible_collections.qts.observer.plugins.module_utils.snapshots import iso_utc

pytestmark = pytest.mark.unit

HEADER = "Timestamp,CPU%,Memory%,Disk%,Network_Recv_MB,Network_Sent_MB,Observer_PID,Observer_CPU%,Observer_Memory_MB\n"


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (69.9, None),
        (70.0, "CPU sustained 70.0 % (early warning 70-80 %)"),
        (79.9, "CPU sustained 79.9 % (early warning 70-80 %)"),
        (80.0, "CPU sustained 80.0 % over the run-wide limit 80 % (fail signal above 90 %)"),
        (89.5, "CPU sustained 89.5 % over the run-wide limit 80 % (fail signal above 90 %)"),
        (90.0, "CPU sustained 90.0 % over the run-wide limit 80 % (fail signal above 90 %)"),
        (90.1, "FAIL SIGNAL: CPU sustained 90.1 % above 90 %"),
    ],
)
def test_cpu_warnings_match_their_bands(cpu, expected):
    warnings = warnings_for(cpu, 10.0, [], None)
    assert warnings == ([expected] if expected else [])


def test_memory_bands_and_raised_limits():
    assert warnings_for(None, 76.0, [], None) == ["memory sustained 76.0 % (early warning 75-85 %)"]
    assert warnings_for(None, 96.0, [], None) == ["FAIL SIGNAL: memory sustained 96.0 % above 95 %"]
    lab = {"warn_cpu_pct": 100, "max_cpu_pct": 100, "fail_cpu_pct": 100}
    assert warnings_for(95.0, None, [], None, lab) == []


def test_progress_before_the_first_sample_has_no_made_up_figures(tmp_path):
    progress = level_progress(
        str(tmp_path / "L1.progress.json"),
        str(tmp_path / "metrics.jsonl"),
        str(tmp_path / "monitor.csv"),
        since=time.time(),
        window_s=5.0,
        now=time.time(),
    )
    assert progress["started"] is False
    for key in ("sent", "planned", "written", "p99_ms", "cpu_pct", "memory_pct", "elapsed_s"):
        assert progress[key] is None, key
    assert progress["warnings"] == []


def _csv_row(moment: float) -> str:
    return f"{iso_utc(moment)},12.0,40.0,10.0,0,0,42,1.0,30.0\n"


def test_collect_cuts_to_the_span_while_the_files_grow(tmp_path):
    """The monitor appends a row every millisecond during the collection: each copy is a
    consistent prefix of its source, holds only the run's span, and never changes after."""
    monitor = tmp_path / "system_monitor.csv"
    log = tmp_path / "observer.log"
    metrics = tmp_path / "metrics.jsonl"
    start = time.time()
    before, during = start - 3600.0, start + 1.0
    monitor.write_text(HEADER + _csv_row(before) + _csv_row(during))
    log.write_text(
        f"{iso_utc(before).replace('+00:00', 'Z')} INFO PatternRecord dispatched run_id=old\n"
        f"{iso_utc(during).replace('+00:00', 'Z')} ERROR something broke\n"
        "Traceback (most recent call last):\n"
        f"{iso_utc(during).replace('+00:00', 'Z')} INFO PatternRecord dispatched run_id=new\n"
    )
    metrics.write_text(
        json.dumps({"timestamp": iso_utc(before)})
        + "\n"
        + json.dumps({"timestamp": iso_utc(during)})
        + "\n"
    )
    stop = threading.Event()

    def append_fast() -> None:
        with monitor.open("a") as handle:
            moment = during
            while not stop.is_set():
                moment += 0.001
                handle.write(_csv_row(moment)[:-1])  # half a row first: a write in progress
                handle.flush()
                handle.write("\n")
                handle.flush()

    writer = threading.Thread(target=append_fast)
    writer.start()
    try:
        time.sleep(0.05)
        sources = {
            "monitor_csv": str(monitor),
            "log": str(log),
            "metrics": str(metrics),
            "rejects": str(tmp_path / "rejects.jsonl"),
        }
        result = collect(sources, HOST_FILES, str(tmp_path / "collect"), start, start + 3600)
        copies = {key: Path(info["path"]).read_bytes() for key, info in result["files"].items()}
        time.sleep(0.05)
    finally:
        stop.set()
        writer.join()
    assert result["problems"] == []  # no rejects file: nothing was rejected, not a problem
    assert "rejects" not in result["files"]
    rows = copies["monitor_csv"].decode().splitlines()
    assert rows[0] == HEADER.strip() and len(rows) > 10
    assert all(row.count(",") == 8 for row in rows), "a torn row was copied"
    assert iso_utc(before) not in copies["monitor_csv"].decode()
    assert copies["log"].decode().splitlines() == [
        f"{iso_utc(during).replace('+00:00', 'Z')} ERROR something broke",
        "Traceback (most recent call last):",
        f"{iso_utc(during).replace('+00:00', 'Z')} INFO PatternRecord dispatched run_id=new",
    ]
    assert copies["metrics"].decode().count("\n") == 1
    # The copies did not move while the source went on growing.
    for key, info in result["files"].items():
        assert Path(info["path"]).read_bytes() == copies[key]
        assert info["bytes"] == len(copies[key])


def test_collect_reports_a_missing_file_without_failing(tmp_path):
    result = collect(
        {"log": str(tmp_path / "nope.log")}, HOST_FILES, str(tmp_path / "out"), 0.0, time.time()
    )
    assert result["files"] == {}
    assert result["problems"] == [
        f"observer.log: {tmp_path / 'nope.log'} does not exist on the host"
    ]


def test_the_copies_and_ledgers_are_packed_into_one_private_archive_by_name(tmp_path):
    (tmp_path / "collect").mkdir()
    log = tmp_path / "collect" / "observer.log"
    log.write_text("a line\n")
    ledger = tmp_path / "L1.sent.jsonl"
    ledger.write_text('{"run_id": "x"}\n' * 3)
    archive = tmp_path / "collect.tar.gz"
    packed = pack([str(log), str(ledger)], str(archive))
    assert packed == {
        "path": str(archive),
        "members": ["observer.log", "L1.sent.jsonl"],
        "bytes": archive.stat().st_size,
        # What the action checks the fetched copy against (Ansible's checksum: SHA-1).
        "checksum": hashlib.sha1(archive.read_bytes()).hexdigest(),
    }
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert not (tmp_path / "collect.tar.gz.partial").exists()
    with tarfile.open(archive) as tar:
        assert tar.getnames() == ["observer.log", "L1.sent.jsonl"]
        assert tar.extractfile("L1.sent.jsonl").read() == ledger.read_bytes()


def test_the_controller_unpacks_files_only_and_nothing_outside_the_host_folder(tmp_path):
    """What the stress_collect action unpacks: the archive's files by name, no owner kept; a
    member that would land outside the host's folder refuses the archive."""
    log = tmp_path / "observer.log"
    log.write_text("a line\n")
    os.chown(log, 65534, 65534)
    archive = tmp_path / "collect.tar.gz"
    pack([str(log)], str(archive))
    folder = tmp_path / "host"
    folder.mkdir()
    assert _unpack(str(archive), str(folder)) == ["observer.log"]
    assert (folder / "observer.log").read_text() == "a line\n"
    assert (folder / "observer.log").stat().st_uid == os.getuid()

    hostile = tmp_path / "hostile.tar.gz"
    with tarfile.open(hostile, "w:gz") as tar:
        tar.add(log, arcname="../escaped.log")
    with pytest.raises(tarfile.TarError, match="outside"):
        _unpack(str(hostile), str(folder))
    assert not (tmp_path / "escaped.log").exists()


def test_the_work_folder_and_its_missing_parents_are_private_whatever_the_umask(tmp_path):
    (tmp_path / "run").mkdir(mode=0o755)
    folder = tmp_path / "run" / "stress" / "20261205T230028Z-b5d9"
    previous = os.umask(0o022)
    try:
        make_private_folder(str(folder))
        make_private_folder(str(folder))  # made already: nothing to do
    finally:
        os.umask(previous)
    for made in (folder, folder.parent):
        assert stat.S_IMODE(made.stat().st_mode) == 0o700, made
    # A parent that was there is left as it was.
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
    (tmp_path / "a_file").write_text("in the way")
    with pytest.raises(OSError):
        make_private_folder(str(tmp_path / "a_file" / "below"))


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (-20.0, 5.0),  # long before the start: one interval, the host says it waits
        (-3.0, 8.0),  # within an interval of the start: the first poll an interval into it
        (0.3, 4.7),  # on the level's own clock: at 5.0 ...
        (90.4, 4.6),  # ... at 95.0, not 95.4
        (95.3, 5.7),  # the tick at 100.0 is in the last half interval: the end's poll, at 101.0
        (97.6, 3.4),  # a late poll: the same
        (101.2, 5.0),  # the end's poll said not done: one interval again
    ],
)  # fmt: skip
def test_polls_keep_the_level_clock_and_wait_for_its_end(now, expected):
    from ansible_collections.qts.observer.plugins.action.stress_level import until_next_poll

    assert until_next_poll(now, 5.0, start_at=0.0, level_end=100.0) == pytest.approx(expected)


@pytest.mark.parametrize("lead_s", [0.5, 2.0, 4.9])
def test_a_level_shorter_than_an_interval_and_a_half_is_polled_once_after_its_end(lead_s):
    """A level of 5 s (or 7 s) polled every 5 s: once, a second after its end, wherever
    the agreed start falls within the interval."""
    from ansible_collections.qts.observer.plugins.action.stress_level import (
        END_POLL_DELAY_S,
        until_next_poll,
    )

    for duration in (5.0, 7.0):
        called, start_at = 1000.0, 1000.0 + lead_s
        polled_at = called + until_next_poll(called, 5.0, start_at, start_at + duration)
        assert polled_at == pytest.approx(start_at + duration + END_POLL_DELAY_S)
