"""Records on disk: the active file, its rotation, retention, and the output-directory lock.

Layout of the output directory:
  observer.jsonl                        the active file (exists only while an Observer runs)
  observer-20261127T162013.123456Z.jsonl finalised files, named by when their window opened,
                                        so names sort in time order
  .observer.lock                        held (flock) by the Observer that owns the directory

Every record lands in exactly one file: a file is rotated only between whole writes, an
existing file is never truncated or overwritten (finalising links to a new name, which fails
rather than replacing), and a file left active by a crash is finalised at the next start.
"""

from __future__ import annotations

import calendar
import contextlib
import fcntl
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from .clock import file_stamp

ACTIVE_NAME = "observer.jsonl"
LOCK_NAME = ".observer.lock"
FINAL_PATTERN = re.compile(r"^observer-\d{8}T\d{6}\.\d{6}Z\.jsonl$")


class OutputError(Exception):
    """The output directory cannot be used; the message is one line for the operator."""


def finalised_files(directory: Path) -> list[Path]:
    """Finalised record files, oldest first."""
    return sorted(p for p in directory.iterdir() if FINAL_PATTERN.match(p.name))


def record_files(directory: Path) -> list[Path]:
    """Every record file, oldest first, the active one last."""
    files = finalised_files(directory)
    active = directory / ACTIVE_NAME
    if active.exists():
        files.append(active)
    return files


class DirectoryLock:
    """Exclusive ownership of an output directory, released by the kernel if we die."""

    def __init__(self, directory: Path) -> None:
        path = directory / LOCK_NAME
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(self._fd)
            raise OutputError(
                f"output directory {directory} is owned by another Observer (pid {owner})"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        os.close(self._fd)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RecordWriter:
    """Appends record bytes to the active file and rotates it every window."""

    def __init__(
        self,
        directory: Path,
        *,
        rotation: bool,
        window_s: float,
        max_files: int,
        warn: Callable[[str], None],
    ) -> None:
        self.directory = directory
        self._rotation = rotation
        self._window_s = window_s
        self._max_files = max_files
        self._warn = warn
        self.rotations = 0
        self._fd = -1
        self._opened_at = 0.0
        self._bytes = 0

    # -- start-up -------------------------------------------------------------------
    def recover(self) -> tuple[Path | None, bytes]:
        """Finalise a file left active by a crash.

        Returns its new name (None if there was nothing to keep) and the bytes of a record
        torn by the crash (a last line without its newline), which the caller sets aside
        as a reject so that nothing is lost and every line of the file stays valid JSON.
        """
        active = self.directory / ACTIVE_NAME
        if not active.exists():
            return None, b""
        torn = self._cut_torn_tail(active)
        if active.stat().st_size == 0:
            active.unlink()
            return None, torn
        return self._finalise(active, self._first_record_time(active)), torn

    @staticmethod
    def _cut_torn_tail(path: Path) -> bytes:
        size = path.stat().st_size
        if size == 0:
            return b""
        with path.open("r+b") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return b""
            # Walk back to the last complete line; a torn record is at most one line.
            block = 1 << 16
            position = size
            tail = b""
            while position > 0:
                start = max(0, position - block)
                handle.seek(start)
                tail = handle.read(position - start) + tail
                newline = tail.rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                position = start
            else:
                keep = 0
            handle.seek(keep)
            torn = handle.read()
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        return torn

    @staticmethod
    def _first_record_time(path: Path) -> float:
        """When the crashed file's window opened: its first record's receipt, else its mtime."""
        with path.open("rb") as handle:
            head = handle.readline(65536)
        match = re.search(
            rb'"received_at":"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{6})Z"', head
        )
        if match:
            parts = [int(x) for x in match.groups()]
            return calendar.timegm((*parts[:6], 0, 0, 0)) + parts[6] / 1e6
        return path.stat().st_mtime

    def open(self) -> None:
        path = self.directory / ACTIVE_NAME
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        self._opened_at = time.time()
        self._bytes = 0

    # -- steady state ------------------------------------------------------------------
    def rotation_due(self, now: float) -> bool:
        return self._rotation and now >= self._opened_at + self._window_s

    def next_rotation(self) -> float:
        return self._opened_at + self._window_s if self._rotation else float("inf")

    def write(self, data: memoryview) -> int:
        """Write as much as the kernel takes; raises OSError (e.g. disk full) to the caller."""
        written = os.write(self._fd, data)
        self._bytes += written
        return written

    def rotate(self) -> Path | None:
        """Close the window: finalise the active file and open the next one."""
        if self._bytes == 0:  # nothing to keep: an empty window just starts again
            self._opened_at = time.time()
            return None
        self._close_active()
        final = self._finalise(self.directory / ACTIVE_NAME, self._opened_at)
        self.rotations += 1
        self.open()
        self.enforce_retention(keep=self._max_files - 1)
        return final

    def close(self) -> Path | None:
        """Finalise the active file at shutdown (an empty one is removed)."""
        self._close_active()
        active = self.directory / ACTIVE_NAME
        if self._bytes == 0:
            active.unlink()
            _fsync_directory(self.directory)
            return None
        final = self._finalise(active, self._opened_at)
        self.enforce_retention(keep=self._max_files)
        return final

    def _close_active(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def _finalise(self, path: Path, opened_at: float) -> Path:
        """Give ``path`` its final, time-ordered name without ever replacing a file."""
        stamp_time = opened_at
        while True:
            target = self.directory / f"observer-{file_stamp(stamp_time)}.jsonl"
            try:
                os.link(path, target)
                break
            except FileExistsError:
                stamp_time += 1e-6
        path.unlink()
        _fsync_directory(self.directory)
        return target

    def enforce_retention(self, keep: int) -> None:
        finals = finalised_files(self.directory)
        for old in finals[: max(0, len(finals) - keep)]:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
            self._warn(
                f"rotation: deleted oldest records file {old.name} "
                f"(rotation.max_files={self._max_files})"
            )
