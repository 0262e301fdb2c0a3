"""Captures of ObservationSnapshots as a user brings them to a replay level."""

from __future__ import annotations

import json
import random
from pathlib import Path

from ansible_collections.qts.observer.plugins.module_utils.snapshots import iso_utc


def write_capture(path: Path, count: int, mean_gap_s: float, seed: int = 3) -> list[float]:
    """A capture of ``count`` snapshots at random gaps (recorded in meta.timestamp), with the
    spacing and decimals of a foreign producer (not the generator's own byte layout)."""
    draw = random.Random(seed)
    moment, times, lines = 1_800_000_000.0, [], []
    for number in range(count):
        moment += draw.expovariate(1 / mean_gap_s)
        times.append(moment)
        stamp = iso_utc(moment)
        document = {
            "meta": {"run_id": "capture-%d" % number, "timestamp": stamp, "source": "feed A"},
            "market_data": {"symbol": "ES.Z6", "price": 6021.25 + number, "volume": 3,
                            "timestamp": stamp},
            "system_state": {"status": "running", "memory_usage": 41.5},
        }  # fmt: skip
        lines.append(json.dumps(document, indent=None, separators=(", ", ": ")))
    path.write_text("\n".join(lines) + "\n")
    return times
