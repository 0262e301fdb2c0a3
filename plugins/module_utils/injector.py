# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open-loop injection of snapshots into the running Observer's input pipe.

Send times follow the schedule ``t0 + n / rate`` whatever the Observer does: a slow Observer
makes the sender late (measured and reported), never makes it skip or slow down. Every line is
written to the pipe as soon as it is due (no block buffering). The Observer's PID is watched
while the level runs: if it dies, the level ends within two seconds. Standard library only.
"""

from __future__ import annotations

import errno
import json
import os
import select
import stat
import time
from array import array
from dataclasses import dataclass, field

from .snapshots import SnapshotGenerator
from .stats import summary_ms

PID_CHECK_S = 0.5
PROGRESS_EVERY_S = 1.0
# How long one write may wait for room in the pipe before the PID is looked at again.
WRITE_WAIT_S = 0.25


class InjectionError(Exception):
    """The level cannot start; the message says why."""


def read_pidfile(path: str) -> int:
    try:
        with open(path) as handle:
            text = handle.read().strip()
    except OSError as exc:
        raise InjectionError(
            "cannot read the Observer's pidfile %s: %s" % (path, exc.strerror)
        ) from None
    if not text.isdigit() or int(text) <= 1:
        raise InjectionError("the Observer's pidfile %s holds %r, not a PID" % (path, text[:40]))
    return int(text)


def _proc_stat(pid: int) -> list[bytes] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].split()


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/PID/stat): tells reuse apart."""
    fields = _proc_stat(pid)
    return fields[19].decode() if fields else None


def is_zombie(pid: int) -> bool:
    """Exited but not yet reaped by its parent: dead for our purposes."""
    fields = _proc_stat(pid)
    return bool(fields) and fields[0] in (b"Z", b"X")


class ProcessWatch:
    """Is it still the same process? (alive, and not a new process reusing the PID)"""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = process_start_time(pid)
        if not self._alive_now():
            raise InjectionError("the Observer (pid %d from its pidfile) is not running" % pid)

    def _alive_now(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # exists, owned by another user
        if is_zombie(self.pid):
            return False
        if self._start is None:
            return True
        return process_start_time(self.pid) == self._start

    def alive(self) -> bool:
        return self._alive_now()


def open_pipe(path: str) -> int:
    """Open the Observer's input pipe for writing, without blocking if nobody reads it."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise InjectionError("input pipe %s: %s" % (path, exc.strerror)) from None
    if not stat.S_ISFIFO(mode):
        raise InjectionError("input pipe %s is not a named pipe" % path)
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise InjectionError("no Observer is reading %s" % path) from None
        raise InjectionError("input pipe %s: %s" % (path, exc.strerror)) from None


@dataclass
class LevelPlan:
    rate: float
    duration_s: float
    seed: int
    level: int
    run_tag: str = ""
    start_at: float | None = None

    @property
    def total(self) -> int:
        return round(self.rate * self.duration_s)

    def generator(self) -> SnapshotGenerator:
        prefix = "%sL%d" % (self.run_tag, self.level)
        return SnapshotGenerator("%d:%d" % (self.seed, self.level), prefix=prefix)


@dataclass
class LevelOutcome:
    planned: int
    sent: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    # A C array of doubles: a million sends take 8 MB, not the 32 MB of a list of floats.
    lateness_ms: array = field(default_factory=lambda: array("d"))
    failure: str | None = None
    observer_pid: int = 0
    # Seconds spent waiting for room in a full pipe: the Observer's back-pressure. A sender
    # late without it was late by itself (generator-bound), not because of the Observer.
    blocked_s: float = 0.0
    # CPU seconds of the generator's own process over the level, to tell its share of the
    # machine's CPU apart from the Observer's.
    cpu_s: float = 0.0

    def as_dict(self) -> dict:
        elapsed = max(self.finished_at - self.started_at, 1e-9)
        return {
            "planned": self.planned,
            "sent": self.sent,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "achieved_rate": round(self.sent / elapsed, 3) if self.sent else 0.0,
            "lateness_ms": summary_ms(self.lateness_ms),
            "failure": self.failure,
            "observer_pid": self.observer_pid,
            "blocked_s": round(self.blocked_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "generator_cpu_pct": round(100.0 * self.cpu_s / elapsed / (os.cpu_count() or 1), 3)
            if self.sent
            else 0.0,
        }


def write_progress(path: str | None, document: dict) -> None:
    """Replace the progress file atomically (the controller may read it at any moment)."""
    if not path:
        return
    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "w") as handle:
        json.dump(document, handle)
    os.replace(temporary, path)


def _write_progress(path: str | None, outcome: LevelOutcome, now: float, done: bool) -> None:
    """While running, lateness over the last 5000 sends (cheap); when done, the level's
    whole result, so the controller can read it without waiting on the async job."""
    document = dict(outcome.as_dict(), elapsed_s=round(now - outcome.started_at, 3), done=done)
    if not done:
        document["lateness_ms"] = summary_ms(outcome.lateness_ms[-5000:])
    write_progress(path, document)


def _write_fully(fd: int, data: bytes, watch: ProcessWatch, outcome: LevelOutcome) -> bool:
    """Write all of ``data``; False if the Observer died while we waited for room."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BlockingIOError:
            waited = time.monotonic()
            select.select([], [fd], [], WRITE_WAIT_S)
            outcome.blocked_s += time.monotonic() - waited
            if not watch.alive():
                return False
        except BrokenPipeError:
            return False
    return True


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def inject(
    plan: LevelPlan,
    pipe_fd: int,
    watch: ProcessWatch,
    ledger_path: str,
    progress_path: str | None = None,
) -> LevelOutcome:
    """Send the level's snapshots on schedule; every line sent is also kept in the ledger."""
    generator = plan.generator()
    outcome = LevelOutcome(planned=plan.total, observer_pid=watch.pid)
    interval = 1.0 / plan.rate
    wall_start = plan.start_at if plan.start_at else time.time() + 0.05
    while time.time() < wall_start:
        time.sleep(min(0.05, max(0.0, wall_start - time.time())))
    mono_start = time.monotonic()
    cpu_start = _cpu_seconds()
    outcome.started_at = time.time()
    next_check = mono_start + PID_CHECK_S
    next_progress = mono_start + PROGRESS_EVERY_S
    sent = 0
    with open(ledger_path, "wb") as ledger:
        while sent < plan.total:
            now = time.monotonic()
            if now >= next_check:
                next_check = now + PID_CHECK_S
                if not watch.alive():
                    outcome.failure = "process failure: the Observer (pid %d) died" % watch.pid
                    break
            if now >= next_progress:
                next_progress = now + PROGRESS_EVERY_S
                _write_progress(progress_path, outcome, time.time(), done=False)
            due = mono_start + sent * interval
            if due > now:
                time.sleep(min(due - now, PID_CHECK_S))
                continue
            # Everything due by now goes out in one write: late lines are sent, never skipped.
            batch = []
            while sent < plan.total and mono_start + sent * interval <= now:
                outcome.lateness_ms.append((now - (mono_start + sent * interval)) * 1000.0)
                batch.append(generator.line(wall_start + sent * interval))
                sent += 1
            data = b"".join(batch)
            if not _write_fully(pipe_fd, data, watch, outcome):
                outcome.failure = "process failure: the Observer (pid %d) died" % watch.pid
                break
            ledger.write(data)
            outcome.sent = sent
    outcome.finished_at = time.time()
    outcome.cpu_s = _cpu_seconds() - cpu_start
    if outcome.failure is None and not watch.alive():
        outcome.failure = "process failure: the Observer (pid %d) died" % watch.pid
    _write_progress(progress_path, outcome, outcome.finished_at, done=True)
    return outcome
