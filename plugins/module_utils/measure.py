# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure one level from what the Observer host holds: the ledger of lines sent, the
Observer's records, metrics and log, and the system monitor's CSV. Standard library only.

Definitions (documented in the README, relied on by the gate):
  throughput      records of the level written, per second of the level's planned duration
  latency         the Observer's processing_latency_ms (receipt to dispatch), p50/p95/p99/max
  end-to-end      dispatched_at minus the snapshot's meta.timestamp (its scheduled send time)
  sustained       the highest mean over any rolling ``sustained_window_s`` of monitor samples
  errors          Observer log lines at ERROR or CRITICAL during the level
  lost            run_ids sent (in the ledger) and found in no records file
  duplicated      extra copies of a run_id across all records files
  modified        records whose embedded snapshot is not byte-identical to the line sent
  extra_fields    records carrying any top-level field beyond the PatternRecord metadata
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from datetime import datetime

from .stats import summary_ms, sustained

RECORD_FIELDS = frozenset(
    ("seq", "received_at", "dispatched_at", "processing_latency_ms", "snapshot")
)
SNAPSHOT_MARKER = b',"snapshot":'
_RUN_ID = re.compile(rb'"run_id":"([^"\\]+)"')
_RECORD_FILE = re.compile(r"^observer(-\d{8}T\d{6}\.\d{6}Z)?\.jsonl$")
LOG_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) ")


def epoch(stamp: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp with ``Z`` or an offset."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def read_ledger(path: str) -> dict[bytes, bytes]:
    """run_id -> exact line sent (without its newline)."""
    sent: dict[bytes, bytes] = {}
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.rstrip(b"\n")
            match = _RUN_ID.search(line)
            if match:
                sent[match.group(1)] = line
    return sent


def record_files(output_dir: str) -> list[str]:
    names = sorted(n for n in os.listdir(output_dir) if _RECORD_FILE.match(n))
    # The active file holds the newest records: read it last.
    names.sort(key=lambda n: (n == "observer.jsonl", n))
    return [os.path.join(output_dir, n) for n in names]


def scan_records(output_dir: str, prefix: bytes) -> list[tuple[bytes, bytes, dict]]:
    """(run_id, embedded snapshot bytes, record) for every record of one level's prefix."""
    found = []
    for path in record_files(output_dir):
        with open(path, "rb") as handle:
            for raw in handle:
                line = raw.rstrip(b"\n")
                match = _RUN_ID.search(line)
                if not match or not match.group(1).startswith(prefix):
                    continue
                record = json.loads(line)
                index = line.find(SNAPSHOT_MARKER)
                embedded = line[index + len(SNAPSHOT_MARKER) : -1] if index >= 0 else b""
                found.append((match.group(1), embedded, record))
    return found


def integrity(sent: dict[bytes, bytes], found: list[tuple[bytes, bytes, dict]]) -> dict:
    copies = Counter(run_id for run_id, _, _ in found)
    modified = sum(
        1 for run_id, embedded, _ in found if run_id in sent and embedded != sent[run_id]
    )
    return {
        "sent": len(sent),
        "written": sum(1 for run_id in sent if copies[run_id]),
        "lost": sum(1 for run_id in sent if not copies[run_id]),
        "duplicated": sum(count - 1 for run_id, count in copies.items() if count > 1),
        "modified": modified,
        "unexpected": sum(1 for run_id in copies if run_id not in sent),
        "extra_fields": sorted({key for _, _, r in found for key in set(r) - RECORD_FIELDS}),
    }


def latencies(found: list[tuple[bytes, bytes, dict]]) -> dict:
    processing, end_to_end = [], []
    for _, _, record in found:
        processing.append(float(record.get("processing_latency_ms", 0.0)))
        try:
            stamp = record["snapshot"]["meta"]["timestamp"]
            end_to_end.append((epoch(record["dispatched_at"]) - epoch(stamp)) * 1000.0)
        except (KeyError, TypeError, ValueError):
            continue
    return {"latency_ms": summary_ms(processing), "e2e_latency_ms": summary_ms(end_to_end)}


def read_metrics(
    path: str, start: float, end: float = float("inf")
) -> tuple[dict | None, list[dict]]:
    """The Observer's last metrics report before ``start`` (a base for counters, or None)
    and its reports during [start, end]."""
    before, inside = None, []
    if not os.path.exists(path):
        return None, []
    with open(path, "rb") as handle:
        for line in handle:
            try:
                document = json.loads(line)
                moment = epoch(document["timestamp"])
            except (ValueError, KeyError):
                continue
            if moment < start:
                before = document
            elif moment <= end:
                inside.append(document)
    return before, inside


def metrics_window(path: str, start: float, end: float) -> dict:
    """Observer metrics reported during [start, end], counters relative to the report before."""
    before, inside = read_metrics(path, start, end)
    if not inside:
        return {
            "reports": 0,
            "buffer_depth_max": 0,
            "queue_depth_max": 0,
            "flushes": 0,
            "rejected": 0,
            "rotations": 0,
        }

    def delta(key: str) -> int:
        base = before[key] if before else 0
        return int(inside[-1].get(key, 0)) - int(base)

    return {
        "reports": len(inside),
        "buffer_depth_max": max(
            int(d.get("buffer_depth_max", d.get("buffer_depth", 0))) for d in inside
        ),
        "queue_depth_max": max(int(d.get("queue_depth", 0)) for d in inside),
        "flushes": delta("flushes"),
        "rejected": delta("rejected"),
        "rotations": delta("rotations"),
    }


def log_errors(path: str, start: float, end: float) -> int:
    """Observer log lines at ERROR or CRITICAL during [start, end]."""
    if not os.path.exists(path):
        return 0
    count = 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if "ERROR" not in line and "CRITICAL" not in line:
                continue
            match = LOG_STAMP.match(line)
            if match and start <= epoch(match.group(1)) <= end:
                count += 1
    return count


def _number(row: dict, key: str) -> float | None:
    try:
        return float(row[key])
    except (KeyError, TypeError, ValueError):
        return None


def monitor_window(path: str, start: float, end: float, window_s: float) -> dict:
    """System and Observer figures from the monitor's CSV rows within [start, end]."""
    cpu, memory, obs_cpu, obs_rss, pids = [], [], [], [], set()
    if os.path.exists(path):
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                try:
                    moment = epoch(row["Timestamp"])
                except (KeyError, ValueError):
                    continue
                if not start <= moment <= end:
                    continue
                for series, key in (
                    (cpu, "CPU%"),
                    (memory, "Memory%"),
                    (obs_cpu, "Observer_CPU%"),
                    (obs_rss, "Observer_Memory_MB"),
                ):
                    value = _number(row, key)
                    if value is not None:
                        series.append((moment, value))
                if row.get("Observer_PID"):
                    pids.add(row["Observer_PID"])
    return {
        "samples": len(cpu),
        "observer_samples": len(obs_cpu),
        "sustained_window_s": window_s,
        # To say how much of the machine's figures was the Observer's own.
        "cpu_count": os.cpu_count() or 1,
        "memory_total_mb": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1048576.0, 1
        ),
        "cpu_pct": {
            "sustained": sustained(cpu, window_s),
            "peak": max((v for _, v in cpu), default=0.0),
        },
        "memory_pct": {
            "sustained": sustained(memory, window_s),
            "peak": max((v for _, v in memory), default=0.0),
        },
        "observer_cpu_pct": {
            "sustained": sustained(obs_cpu, window_s),
            "peak": max((v for _, v in obs_cpu), default=0.0),
        },
        "observer_rss_mb": {"peak": max((v for _, v in obs_rss), default=0.0)},
        "observer_pids": sorted(pids),
    }
