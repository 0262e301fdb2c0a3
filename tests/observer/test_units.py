"""Unit tests of the Observer's parts, on real files where files are involved."""

from __future__ import annotations

import json
import math
import os
import time
from datetime import datetime, timezone

import pytest
from observer_harness import DEFAULT_CONFIG, OBSERVER_DIR, snapshot_lines
from qts_observer.clock import file_stamp, utc_stamp
from qts_observer.config import ConfigError, parse_config
from qts_observer.contract import SnapshotContract
from qts_observer.intake import LineSplitter
from qts_observer.metrics import percentile
from qts_observer.output import ACTIVE_NAME, RecordWriter, finalised_files
from qts_observer.trigger import HybridTrigger

pytestmark = pytest.mark.unit


def test_missing_keys_take_the_schema_defaults():
    settings = parse_config("{}", "test")
    assert settings.min_interval_s == pytest.approx(0.020)
    assert settings.max_interval_s == pytest.approx(0.200)
    assert settings.flush_interval_s == pytest.approx(0.5)
    assert settings.max_buffer_size == 50_000
    assert settings.window_s == pytest.approx(600.0)
    assert settings.max_files == 20
    assert settings.metrics_history_size == 10_000
    assert settings.max_line_bytes == 1 << 20
    partial = parse_config('{"buffer": {"max_buffer_size": 7}}', "test")
    assert partial.max_buffer_size == 7 and partial.flush_interval_s == pytest.approx(0.5)


def test_schema_defaults_equal_the_shipped_configuration():
    # tests/collection/test_role_specs.py checks the shipped file against the spec's text.
    assert parse_config(json.dumps(DEFAULT_CONFIG), "shipped") == parse_config("{}", "defaults")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"rotation": {"max_files": 0}}', "rotation.max_files"),
        ('{"hybrid_trigger": {"min_interval_ms": 0}}', "hybrid_trigger.min_interval_ms"),
        ('{"hybrid_trigger": {"max_interval_ms": -1}}', "hybrid_trigger.max_interval_ms"),
        ('{"buffer": {"enable_buffering": "yes"}}', "buffer.enable_buffering"),
        ('{"performance": {"metrics_history_size": 2.5}}', "performance.metrics_history_size"),
        ('{"buffer": []}', "buffer"),
        ('{"buffer": {"typo": 1}}', "'typo'"),
    ],
)
def test_bad_values_are_named_in_one_line(text, needle):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cfg.json")
    message = str(caught.value)
    assert needle in message and "\n" not in message and message.startswith("cfg.json: ")


def test_splitter_bounds_memory_and_reports_oversized_lines():
    splitter = LineSplitter(max_line_bytes=100, sample_bytes=10)
    lines, oversized = splitter.feed(b"short\n" + b"x" * 80)
    assert lines == [b"short"] and not oversized
    for _unused in range(1000):  # a 1 MB line arrives in pieces: never held whole
        lines, oversized = splitter.feed(b"y" * 1000)
        assert not lines and not oversized
        assert splitter.partial_bytes <= 100
    lines, oversized = splitter.feed(b"zz\nnext\nta")
    assert lines == [b"next"]
    assert len(oversized) == 1
    assert oversized[0].sample == b"x" * 10 and oversized[0].length == 80 + 1_000_000 + 2
    assert splitter.finish() == (b"ta", None)


def test_splitter_oversized_line_inside_one_chunk():
    splitter = LineSplitter(max_line_bytes=10, sample_bytes=4)
    lines, oversized = splitter.feed(b"ok\n" + b"a" * 50 + b"\nfine\n")
    assert lines == [b"ok", b"fine"]
    assert [(o.sample, o.length) for o in oversized] == [(b"aaaa", 50)]


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.99, 0.0),
        ([5.0], 0.5, 5.0),
        ([float(i) for i in range(1, 101)], 0.95, 95.0),
        ([float(i) for i in range(1, 101)], 0.99, 99.0),
        ([float(i) for i in range(1, 101)], 0.50, 50.0),
        ([1.0, 2.0, 3.0], 0.99, 3.0),
    ],
)
def test_percentile_is_nearest_rank(values, fraction, expected):
    assert percentile(values, fraction) == expected


def test_hybrid_trigger_holds_then_releases_at_min_interval():
    trigger = HybridTrigger(enabled=True, min_interval_s=0.02, max_interval_s=0.2)
    assert not trigger.dispatch_due(0.0, pending=0)
    assert trigger.dispatch_due(0.0, pending=1)
    trigger.dispatched(0.0)
    assert not trigger.dispatch_due(0.019, pending=5)
    assert trigger.next_deadline(pending=5) == pytest.approx(0.02)
    assert trigger.dispatch_due(0.02, pending=5)
    assert trigger.next_deadline(pending=0) == pytest.approx(0.2)
    assert trigger.tick_due(0.2) and not trigger.tick_due(0.19)
    immediate = HybridTrigger(enabled=False, min_interval_s=0.02, max_interval_s=0.2)
    immediate.dispatched(0.0)
    assert immediate.dispatch_due(0.0001, pending=1)


def test_timestamps_are_iso_utc_and_file_stamps_sort():
    moment = datetime(2026, 11, 27, 16, 20, 13, 999_999, tzinfo=timezone.utc).timestamp()
    assert utc_stamp(moment) == "2026-11-27T16:20:13.999999Z"
    assert utc_stamp(1_800_000_000.9999996).endswith(".000000Z")
    stamps = [file_stamp(moment + delta) for delta in (0, 1e-6, 0.5, 86400)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4


def test_finalising_never_overwrites_an_existing_file(tmp_path):
    writer = RecordWriter(tmp_path, rotation=True, window_s=3600, max_files=10, warn=print)
    writer.open()
    opened = writer._opened_at
    clash = tmp_path / f"observer-{file_stamp(opened)}.jsonl"
    clash.write_bytes(b"someone else's bytes\n")
    writer.write(memoryview(b'{"seq":1}\n'))
    final = writer.close()
    assert clash.read_bytes() == b"someone else's bytes\n"
    assert final != clash and final.read_bytes() == b'{"seq":1}\n'
    assert finalised_files(tmp_path) == sorted([clash, final])
    assert not (tmp_path / ACTIVE_NAME).exists()


def test_recovery_names_crashed_file_by_its_first_record(tmp_path):
    active = tmp_path / ACTIVE_NAME
    active.write_bytes(b'{"seq":1,"received_at":"2026-01-02T03:04:05.000006Z"}\n{"seq":2,"rec')
    writer = RecordWriter(tmp_path, rotation=True, window_s=60, max_files=5, warn=print)
    final, torn = writer.recover()
    assert final.name == "observer-20260102T030405.000006Z.jsonl"
    assert torn == b'{"seq":2,"rec'
    assert final.read_bytes() == b'{"seq":1,"received_at":"2026-01-02T03:04:05.000006Z"}\n'


def test_empty_window_is_not_rotated_into_an_empty_file(tmp_path):
    writer = RecordWriter(tmp_path, rotation=True, window_s=0.01, max_files=5, warn=print)
    writer.open()
    time.sleep(0.02)
    assert writer.rotation_due(time.time())
    assert writer.rotate() is None
    assert finalised_files(tmp_path) == []
    assert writer.close() is None and os.listdir(tmp_path) == []


def test_generated_snapshots_pass_the_contract_and_the_observer_keeps_decimals():
    contract = SnapshotContract()
    for line in snapshot_lines(2000):
        document = json.loads(line)
        assert contract.is_valid(document), contract.reasons(document)
        assert contract.reasons(document) == []
    assert math.isfinite(json.loads(snapshot_lines(1)[0])["market_data"]["price"])
    assert (OBSERVER_DIR / "schemas" / "observation_snapshot.schema.json").exists()
