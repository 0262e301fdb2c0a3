"""The Observer's log: plain lines, written in batches so the hot path never waits on it.

Every line is ``<UTC time> <LEVEL> <message>``. Runbooks count the lines containing
``PatternRecord dispatched`` (one per record) and treat lines containing ``ERROR`` or
``CRITICAL`` as errors, so those words appear only as levels or in rejected input quoted
with ``repr``-style escaping.
"""

from __future__ import annotations

import os
import sys
import time
from typing import BinaryIO

from .clock import utc_stamp_ms

# When the log's disk is full, lines wait in memory up to this much; beyond it the oldest
# are dropped and counted (the records themselves are never dropped: see service.py).
MAX_HELD_BYTES = 64 << 20


class Logbook:
    """Buffers log lines in memory and writes them with one system call per ``flush``."""

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._pending: list[bytes] = []
        self._held = b""
        self.dropped_bytes = 0
        self._stream: BinaryIO = self._open()

    def _open(self) -> BinaryIO:
        if self._path is None:
            return sys.stderr.buffer
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        return os.fdopen(fd, "ab", buffering=0)

    def reopen(self) -> None:
        """Reopen the log file (SIGHUP), so logrotate can move the old one away."""
        self.flush()
        if self._path is None:
            return
        old = self._stream
        self._stream = self._open()
        old.close()
        self.info("log file reopened")

    def line(self, level: str, message: str) -> None:
        self._pending.append(f"{utc_stamp_ms(time.time())} {level} {message}\n".encode())

    def info(self, message: str) -> None:
        self.line("INFO", message)

    def warning(self, message: str) -> None:
        self.line("WARNING", message)

    def error(self, message: str) -> None:
        self.line("ERROR", message)

    def critical(self, message: str) -> None:
        self.line("CRITICAL", message)

    def extend(self, encoded_lines: bytes) -> None:
        """Queue lines already formatted and encoded by the caller (the dispatch lines)."""
        self._pending.append(encoded_lines)

    def flush(self) -> bool:
        """Write what is queued; False if the disk refused (lines are held, within a bound)."""
        if not self._pending and not self._held:
            return True
        data = self._held + b"".join(self._pending)
        self._pending.clear()
        stream = self._stream
        view = memoryview(data)
        try:
            while view:
                written = stream.write(view)
                if written is None:  # a non-blocking stderr that is full: wait, never drop
                    time.sleep(0.001)
                    continue
                view = view[written:]
            if stream is sys.stderr.buffer:
                stream.flush()
        except OSError:
            held = bytes(view)
            if len(held) > MAX_HELD_BYTES:
                self.dropped_bytes += len(held) - MAX_HELD_BYTES
                held = held[len(held) - MAX_HELD_BYTES :]
            self._held = held
            return False
        self._held = b""
        if self.dropped_bytes:
            dropped, self.dropped_bytes = self.dropped_bytes, 0
            self.warning(f"{dropped} bytes of log lines were dropped while the log's disk was full")
            return self.flush()
        return True

    def close(self) -> None:
        self.flush()
        if self._path is not None:
            self._stream.close()
