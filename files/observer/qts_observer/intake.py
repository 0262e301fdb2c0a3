"""Where snapshots come in: the input source and the splitting of bytes into bounded lines."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import stat
from dataclasses import dataclass

READ_CHUNK_BYTES = 1 << 20
# Linux's F_SETPIPE_SZ; a 1 MiB pipe lets a producer run ahead by that much, no more.
_F_SETPIPE_SZ = 1031
_PIPE_BYTES = 1 << 20


class InputError(Exception):
    """The input cannot be opened; the message is one line for the operator."""


class InputSource:
    """Standard input, or a path: a named pipe kept open across producers, or a plain file.

    A named pipe is opened for reading *and* held open for writing by the Observer itself,
    so one producer closing its end never looks like end of input: the Observer keeps
    reading until it is told to stop. Standard input and plain files end at end of file.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._keepalive_fd: int | None = None
        if path is None:
            self.fd = 0
            self.persistent = False
            return
        try:
            mode = os.stat(path).st_mode
        except OSError as exc:
            raise InputError(f"input {path}: {exc.strerror}") from None
        self.persistent = stat.S_ISFIFO(mode)
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            if self.persistent:
                self._keepalive_fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                with contextlib.suppress(OSError):  # a smaller pipe still works
                    fcntl.fcntl(self.fd, _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError as exc:
            raise InputError(f"input {path}: {exc.strerror}") from None

    def read(self) -> bytes | None:
        """Bytes available now; ``b""`` at end of input; None when nothing is waiting."""
        if not select.select([self.fd], [], [], 0)[0]:
            return None
        try:
            return os.read(self.fd, READ_CHUNK_BYTES)
        except BlockingIOError:
            return None

    def close(self) -> None:
        if self._keepalive_fd is not None:
            os.close(self._keepalive_fd)
            self._keepalive_fd = None
        if self.fd != 0:
            os.close(self.fd)


@dataclass
class OversizedLine:
    """A line longer than the limit: only its first bytes are kept, as evidence."""

    sample: bytes
    length: int


class LineSplitter:
    """Cuts a byte stream into lines without ever holding more than one line's limit."""

    def __init__(self, max_line_bytes: int, sample_bytes: int) -> None:
        self._limit = max_line_bytes
        self._sample_bytes = sample_bytes
        self._partial = b""
        self._discarding: OversizedLine | None = None

    @property
    def partial_bytes(self) -> int:
        return len(self._partial)

    def feed(self, chunk: bytes) -> tuple[list[bytes], list[OversizedLine]]:
        oversized: list[OversizedLine] = []
        if self._discarding is not None:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._discarding.length += len(chunk)
                return [], oversized
            self._discarding.length += newline
            oversized.append(self._discarding)
            self._discarding = None
            chunk = chunk[newline + 1 :]
        data = self._partial + chunk if self._partial else chunk
        lines = data.split(b"\n")
        tail = lines.pop()
        if len(data) > self._limit:
            kept = []
            for line in lines:
                if len(line) > self._limit:
                    oversized.append(OversizedLine(line[: self._sample_bytes], len(line)))
                else:
                    kept.append(line)
            lines = kept
        if len(tail) > self._limit:
            self._discarding = OversizedLine(tail[: self._sample_bytes], len(tail))
            tail = b""
        self._partial = tail
        return lines, oversized

    def finish(self) -> tuple[bytes | None, OversizedLine | None]:
        """What is left at the end of input: a last line without newline, or an oversize one."""
        partial, self._partial = self._partial, b""
        discarding, self._discarding = self._discarding, None
        return (partial or None), discarding
