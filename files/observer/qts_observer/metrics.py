"""Processing metrics: latency percentiles over a sliding history, throughput, counters.

Reported at a fixed interval as one log line (containing ``snapshot_processing`` and
``buffer_depth``, as runbooks expect) and as one JSON line in ``metrics.jsonl`` carrying
exactly the same figures, so a stress run can read them back without parsing logs.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from .appendfile import AppendFile
from .clock import utc_stamp

METRICS_NAME = "metrics.jsonl"


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list (0.0 when empty)."""
    if not ordered:
        return 0.0
    # round() first: 0.95 * 100 is 95.00000000000001 in binary floating point.
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Counters:
    received: int = 0
    processed: int = 0
    rejected: int = 0
    flushes: int = 0
    rotations: int = 0
    blank_lines: int = 0
    buffer_depth_max: int = 0
    write_errors: int = 0
    latencies_ms: deque[float] = field(default_factory=deque)


class MetricsReporter:
    """Turns counters into a metrics line and a JSON document every interval."""

    def __init__(self, path: Path, history_size: int) -> None:
        self.path = path
        self.counters = Counters(latencies_ms=deque(maxlen=history_size))
        self.file = AppendFile(path)
        self._last_time = 0.0
        self._last_processed = 0

    def start(self, now: float) -> None:
        self._last_time = now

    def snapshot(self, now_mono: float, now_wall: float, buffer_depth: int, queue_depth: int):
        counters = self.counters
        ordered = sorted(counters.latencies_ms)
        elapsed = max(now_mono - self._last_time, 1e-9)
        interval_processed = counters.processed - self._last_processed
        self._last_time, self._last_processed = now_mono, counters.processed
        document = {
            "timestamp": utc_stamp(now_wall),
            "interval_s": round(elapsed, 6),
            "snapshot_processing": {
                "window": len(ordered),
                "p50_ms": round(percentile(ordered, 0.50), 3),
                "p95_ms": round(percentile(ordered, 0.95), 3),
                "p99_ms": round(percentile(ordered, 0.99), 3),
                "max_ms": round(ordered[-1] if ordered else 0.0, 3),
            },
            "throughput_per_s": round(interval_processed / elapsed, 3),
            "interval_processed": interval_processed,
            "buffer_depth": buffer_depth,
            "buffer_depth_max": max(counters.buffer_depth_max, buffer_depth),
            "queue_depth": queue_depth,
            "received": counters.received,
            "processed": counters.processed,
            "rejected": counters.rejected,
            "blank_lines": counters.blank_lines,
            "flushes": counters.flushes,
            "rotations": counters.rotations,
            "write_errors": counters.write_errors,
        }
        counters.buffer_depth_max = 0
        return document

    def write(self, document: dict) -> str:
        """Queue the JSON line (the caller flushes ``file``); return the log line's message."""
        self.file.queue(orjson.dumps(document) + b"\n")
        latency = document["snapshot_processing"]
        return (
            "metrics snapshot_processing"
            f" p50_ms={latency['p50_ms']} p95_ms={latency['p95_ms']}"
            f" p99_ms={latency['p99_ms']} max_ms={latency['max_ms']}"
            f" window={latency['window']}"
            f" throughput_per_s={document['throughput_per_s']}"
            f" buffer_depth={document['buffer_depth']}"
            f" buffer_depth_max={document['buffer_depth_max']}"
            f" queue_depth={document['queue_depth']}"
            f" received={document['received']} processed={document['processed']}"
            f" rejected={document['rejected']} flushes={document['flushes']}"
            f" rotations={document['rotations']} write_errors={document['write_errors']}"
        )
