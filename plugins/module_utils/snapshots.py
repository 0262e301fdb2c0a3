# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Simulated ObservationSnapshots, as the load generator sends them.

Standard library only: this runs on the Observer hosts. The Observer's
``observation_snapshot.schema.json`` is the contract; the tests validate what this module
makes against that file. A seed and a level reproduce the same snapshots exactly (given the
same time base), so a failing level can be replayed.
"""

from __future__ import annotations

import random
import time

SOURCE = "stress_test_simulation"
SYMBOL = "STRESS_TEST"
BASE_PRICE = 100.0
HIGH_MEMORY_PCT = 70.0


def run_id_prefix(run_tag: str, level: int | None = None) -> str:
    """The run_ids of one run (``stress_<tag>L``) or of one of its levels
    (``stress_<tag>L<level>_``): the one format the generator, the measure and the check
    after the stop share."""
    return "stress_%sL%s" % (run_tag, "" if level is None else "%d_" % level)


def iso_utc(epoch_s: float) -> str:
    """``2026-11-27T16:20:13.123456+00:00``: ISO-8601 UTC with an explicit offset."""
    whole = int(epoch_s)
    micros = round((epoch_s - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%06d+00:00" % micros


class SnapshotGenerator:
    """Makes snapshot lines ``stress_<n>`` with the spec's realistic variation.

    ``prefix`` keeps run_ids unique across levels and runs (``stress_<prefix>_<n>``).
    Numbers are written with the spec's fixed decimals (``100.10``, ``45.0``), which also
    shows that the Observer keeps every byte as received.
    """

    def __init__(self, seed: int | str, prefix: str = "", start: int = 0) -> None:
        self._random = random.Random(seed)
        self._prefix = "stress_%s_" % prefix if prefix else "stress_"
        self._next = start

    def line(self, epoch_s: float) -> bytes:
        """One snapshot as a JSON line (with its newline), stamped ``epoch_s``."""
        rand = self._random
        price = BASE_PRICE + rand.uniform(-0.5, 0.5)
        volume = rand.randint(100, 10000)
        memory = round(rand.uniform(30.0, 80.0), 1)
        status = "high_memory" if memory >= HIGH_MEMORY_PCT else "running"
        stamp = iso_utc(epoch_s)
        run_id = "%s%d" % (self._prefix, self._next)
        self._next += 1
        return (
            '{"meta":{"run_id":"%s","timestamp":"%s","source":"%s"},'
            '"market_data":{"symbol":"%s","price":%.2f,"volume":%d,"timestamp":"%s"},'
            '"system_state":{"status":"%s","memory_usage":%.1f}}\n'
            % (run_id, stamp, SOURCE, SYMBOL, price, volume, stamp, status, memory)
        ).encode("ascii")
