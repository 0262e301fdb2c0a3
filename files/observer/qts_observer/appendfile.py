"""An append-only file that never loses what it was given when the disk refuses a write."""

from __future__ import annotations

import os
from pathlib import Path


class AppendFile:
    """Queues lines and appends them with one write; keeps every unwritten byte on error."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o640)
        self._queued: list[bytes] = []
        self._unwritten = memoryview(b"")
        self.last_error: OSError | None = None

    def queue(self, data: bytes) -> None:
        self._queued.append(data)

    @property
    def pending_bytes(self) -> int:
        return len(self._unwritten) + sum(map(len, self._queued))

    def flush(self) -> bool:
        """Write everything queued; False (bytes kept, ``last_error`` set) if the disk refused."""
        if self._queued:
            self._unwritten = memoryview(bytes(self._unwritten) + b"".join(self._queued))
            self._queued.clear()
        view = self._unwritten
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._unwritten = view
            self.last_error = exc
            return False
        self._unwritten = memoryview(b"")
        self.last_error = None
        return True

    def close(self) -> bool:
        """Flush, fsync and close; False if bytes could not be written."""
        written = self.flush()
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self.last_error = exc
            written = False
        os.close(self._fd)
        return written
