"""A team's own Observer, as the runbook knows it: a test double that shares no code with the
collection's reference Observer (files/observer).

Run from its install directory as ``python observer.py``: snapshots (JSON lines) on standard
input, its configuration in ``config/stress_config.json``, its records in
``config/observer/observer.jsonl``, its log on standard error. Its record is its own shape:

    {"id": 7, "observed_run": "<run_id>", "data": {<the snapshot, parsed>},
     "observer": {"at": "<ISO time>", "took_ms": 0.21}}

and its log its own format (``2026-12-01 22:10:11,123 [INFO] ...``): one ``PatternRecord
dispatched observed_run=<run_id> took_ms=<ms>`` line per record, a ``stats
snapshot_processing p99_ms=<ms> buffer_depth=<n>`` line every second, ``[ERROR]`` for a line
that is not a snapshot. No pidfile, no metrics file. SIGTERM: write what is held, exit 0.

Faults, for the tests (environment variable TEAM_OBSERVER_FAULT):
  drop     one snapshot in 100 is dispatched to nobody: not written, not logged
  alter    every price is changed by +0.01 before it is written
  signal   every record carries a "signal" field (decision logic in an Observer)
  abrupt   SIGTERM ends it at once, without writing what it holds
  stale    a snapshot older than TEAM_OBSERVER_STALE_MS (1000) when it is taken in (its
           meta.timestamp against the clock) is dropped: not written, not logged; what waited
           in the pipe while it was paused is lost

Memory, for the soak tests (TEAM_OBSERVER_FAULT too; each block is written to, so it is
resident, and freed blocks go back to the system at once):
  leak      keeps TEAM_OBSERVER_LEAK_MB_PER_MIN (6) more every minute, in a block a second
  sawtooth  grows by TEAM_OBSERVER_SAWTOOTH_MB (24) over the second half of every
            TEAM_OBSERVER_SAWTOOTH_S (6) seconds and frees it all at its end (a buffer flushed)
  step      TEAM_OBSERVER_STEP_AFTER_S (40) seconds after its first snapshot, keeps
            TEAM_OBSERVER_STEP_MB (40) more, once, then stays flat

TEAM_OBSERVER_MAX_RATE=<n> makes it read at most n lines per second (a known limit, for the
capacity search): what is offered beyond it waits in the pipe, as with any slow reader.
"""

import json
import logging
import os
import queue
import signal
import sys
import threading
import time
from datetime import datetime, timezone

FAULT = os.environ.get("TEAM_OBSERVER_FAULT", "")
MAX_RATE = float(os.environ.get("TEAM_OBSERVER_MAX_RATE") or 0)
STALE_S = float(os.environ.get("TEAM_OBSERVER_STALE_MS") or 1000) / 1000.0
BURST_S = 0.05  # after an idle spell, at most this much reading ahead of the pace
log = logging.getLogger("team-observer")


def settings() -> dict:
    with open(os.path.join("config", "stress_config.json")) as handle:
        config = json.load(handle)
    buffer = config.get("buffer", {})
    return {
        "flush_s": float(buffer.get("flush_interval_ms", 500.0)) / 1000.0,
        "max_buffer": int(buffer.get("max_buffer_size", 50000)),
    }


class Writer:
    """Holds records and writes them every flush interval, or when the buffer is full."""

    def __init__(self, path: str, flush_s: float, max_buffer: int) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (held for the process)
        self.flush_s = flush_s
        self.max_buffer = max_buffer
        self.held: list[str] = []
        self.lock = threading.Lock()
        self.latencies: list[float] = []

    def add(self, line: str, took_ms: float) -> None:
        with self.lock:
            self.held.append(line)
            self.latencies.append(took_ms)
            full = len(self.held) >= self.max_buffer
        if full:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            lines, self.held = self.held, []
        if lines:
            self.file.write("".join(lines))
            self.file.flush()
            os.fsync(self.file.fileno())

    def stats(self) -> None:
        with self.lock:
            latencies, self.latencies = sorted(self.latencies), []
            depth = len(self.held)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0
        log.info("stats snapshot_processing p99_ms=%.3f buffer_depth=%d", p99, depth)


def record(number: int, snapshot: dict, took_ms: float) -> str:
    if FAULT == "alter":
        snapshot["market_data"]["price"] = round(snapshot["market_data"]["price"] + 0.01, 2)
    document = {
        "id": number,
        "observed_run": snapshot["meta"]["run_id"],
        "data": snapshot,
        "observer": {"at": datetime.now(timezone.utc).isoformat(), "took_ms": round(took_ms, 3)},
    }
    if FAULT == "signal":
        document["signal"] = "BUY" if snapshot["market_data"]["price"] >= 100.0 else "SELL"
    return json.dumps(document) + "\n"


MIB = 1024 * 1024


def _block(megabytes: float) -> bytearray:
    return bytearray(b"\x01") * int(megabytes * MIB)


def memory(first_snapshot: threading.Event) -> None:
    """The memory behaviours of the soak tests, on a thread of their own."""
    held: list[bytearray] = []
    if FAULT == "leak":
        per_s = float(os.environ.get("TEAM_OBSERVER_LEAK_MB_PER_MIN") or 6) / 60.0
        while True:
            held.append(_block(per_s))
            time.sleep(1.0)
    elif FAULT == "sawtooth":
        peak = float(os.environ.get("TEAM_OBSERVER_SAWTOOTH_MB") or 24)
        period = float(os.environ.get("TEAM_OBSERVER_SAWTOOTH_S") or 6)
        steps = 8
        while True:
            time.sleep(period / 2)
            for _step in range(steps):
                held.append(_block(peak / steps))
                time.sleep(period / 2 / steps)
            held.clear()
    elif FAULT == "step":
        first_snapshot.wait()
        time.sleep(float(os.environ.get("TEAM_OBSERVER_STEP_AFTER_S") or 40))
        held.append(_block(float(os.environ.get("TEAM_OBSERVER_STEP_MB") or 40)))
        threading.Event().wait()


def stale(snapshot: dict) -> bool:
    """Older than STALE_S by its own timestamp (when it was meant to be sent)."""
    stamp = datetime.fromisoformat(snapshot["meta"]["timestamp"].replace("Z", "+00:00"))
    return time.time() - stamp.timestamp() > STALE_S


def main() -> int:
    logging.Formatter.converter = time.gmtime  # its log is stamped in UTC, without a zone
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s [%(levelname)s] %(message)s"
    )
    config = settings()
    writer = Writer(os.path.join("config", "observer", "observer.jsonl"), **{
        "flush_s": config["flush_s"], "max_buffer": config["max_buffer"]})  # fmt: skip
    stopping = threading.Event()

    def on_term(signum, frame):
        if FAULT == "abrupt":
            os._exit(0)  # what it holds is never written
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        next_at = time.monotonic()
        for line in sys.stdin:
            if MAX_RATE:
                next_at = max(next_at, time.monotonic() - BURST_S) + 1.0 / MAX_RATE
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            lines.put((time.monotonic(), line))

    threading.Thread(target=read, daemon=True).start()
    first_snapshot = threading.Event()
    threading.Thread(target=memory, args=(first_snapshot,), daemon=True).start()
    log.info("team observer started (fault: %s)", FAULT or "none")
    number = 0
    # The first write one interval from now, not at once: under load the first snapshot may
    # already be waiting when this loop starts, and a write of it alone would break the
    # "every flush interval, or when the buffer is full" its faults are counted by.
    next_stats = time.monotonic()
    next_flush = next_stats + writer.flush_s
    while not stopping.is_set():
        try:
            received, line = lines.get(timeout=0.05)
        except queue.Empty:
            received = None
        now = time.monotonic()
        if received is not None and line.strip():
            try:
                snapshot = json.loads(line)
                run_id = snapshot["meta"]["run_id"]
            except (ValueError, KeyError, TypeError) as exc:
                log.error("invalid snapshot: %s", exc)
            else:
                number += 1
                first_snapshot.set()
                if not (FAULT == "drop" and number % 100 == 0) and not (
                    FAULT == "stale" and stale(snapshot)
                ):
                    took_ms = (time.monotonic() - received) * 1000.0
                    writer.add(record(number, snapshot, took_ms), took_ms)
                    log.info(
                        "PatternRecord dispatched observed_run=%s took_ms=%.3f", run_id, took_ms
                    )
        if now >= next_flush:
            writer.flush()
            next_flush = now + writer.flush_s
        if now >= next_stats:
            writer.stats()
            next_stats = now + 1.0
    while not lines.empty():  # what was already read is taken in too
        received, line = lines.get()
        if line.strip():
            snapshot = json.loads(line)
            number += 1
            took_ms = (time.monotonic() - received) * 1000.0
            writer.add(record(number, snapshot, took_ms), took_ms)
            log.info(
                "PatternRecord dispatched observed_run=%s took_ms=%.3f",
                snapshot["meta"]["run_id"],
                took_ms,
            )
    writer.flush()
    log.info("team observer stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
