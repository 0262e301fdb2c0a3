# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open-loop injection of snapshots into the running Observer's input pipe.

Send times follow the level's schedule (``t0 + n / rate``, or its shape's, ``shapes.py``)
whatever the Observer does: a slow Observer makes the sender late (measured and reported),
never makes it skip or slow down. Every line is
written to the pipe as soon as it is due (no block buffering). The Observer's PID is watched
while the level runs: if it dies, the level ends within two seconds. Standard library only.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import gc
import json
import os
import select
import signal
import stat
import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from .capture import ReplayGenerator
from .shapes import Schedule, delivery, schedule, write_send_times
from .snapshots import SnapshotGenerator, run_id_prefix
from .stats import summary_ms
from .visibility import (
    FolderSizes,
    RecordFollower,
    follow,
    freshness,
    read_sightings,
    write_sightings,
)

PID_CHECK_S = 0.5
# How often the sender looks whether the follower has ended.
FOLLOWER_WAIT_S = 0.02
# At most this many lines in one write: a burst of millions goes out in writes back to back,
# without a batch of gigabytes in memory.
MAX_BATCH = 10_000
PROGRESS_EVERY_S = 1.0
# How long one write may wait for room in the pipe before the PID is looked at again.
WRITE_WAIT_S = 0.25
# While a planned fault has the Observer down, how often the sender looks for the new one.
RECONNECT_POLL_S = 0.05


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
class Outages:
    """When, in seconds from the level's start, the Observer may be gone on purpose (a planned
    kill or restart, ``faults.outages``): the sender then waits for the new one, found by its
    pidfile and reading its pipe, instead of ending the level."""

    windows: list[list[float]]
    pidfile: str
    pipe: str


class Link:
    """The Observer the level sends to: its input pipe and its process; after a planned
    restart, the new one's (the old pipe descriptor stays open to the end: the pipe keeps what
    the dead Observer had not read, for the next one)."""

    def __init__(
        self, fd: int, watch: ProcessWatch, outages: Outages | None, mono_start: float
    ) -> None:
        self.fd, self.watch, self.outages, self.mono_start = fd, watch, outages, mono_start
        self.opened: list[int] = []

    def recover(self, outcome: LevelOutcome) -> bool:
        """The Observer died: within a planned outage, wait for the new one and send to it
        (True); outside one, or when none came before the outage's end, a process failure."""
        died = time.monotonic() - self.mono_start
        window = next((w for w in (self.outages.windows if self.outages else [])
                       if w[0] <= died <= w[1]), None)  # fmt: skip
        if window is None or self.outages is None:
            outcome.failure = "process failure: the Observer (pid %d) died" % self.watch.pid
            return False
        waited = time.monotonic()
        try:
            return self._wait_for_new(outcome, window, died)
        finally:
            # Held up by the Observer's planned outage, as by a full pipe: not the generator's
            # own lateness (gate.generator_bound).
            outcome.blocked_s += time.monotonic() - waited

    def _wait_for_new(self, outcome: LevelOutcome, window: list[float], died: float) -> bool:
        while time.monotonic() - self.mono_start < window[1]:
            with contextlib.suppress(InjectionError):
                watch = ProcessWatch(read_pidfile(self.outages.pidfile))
                if watch.pid != self.watch.pid:
                    fd = open_pipe(self.outages.pipe)
                    self.opened.append(fd)
                    outcome.restarts.append({
                        "died_s": round(died, 3), "back_s": round(time.monotonic() - self.mono_start, 3),
                        "pid_before": self.watch.pid, "pid_after": watch.pid,
                    })  # fmt: skip
                    self.fd, self.watch = fd, watch
                    return True
            time.sleep(RECONNECT_POLL_S)
        outcome.failure = (
            "process failure: the Observer (pid %d) died in a planned fault and no new one "
            "read its input within %g s" % (self.watch.pid, window[1] - died)
        )
        return False

    def close(self) -> None:
        for fd in self.opened:
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass
class LevelPlan:
    rate: float
    duration_s: float
    seed: int
    level: int
    run_tag: str = ""
    start_at: float | None = None
    shape: dict | None = None
    # The epoch second the level started at (its start_at, or when it began without one).
    wall_start: float = 0.0
    # A file whose appearance ends the level early (looked for once a second): what was sent
    # until then is the level, measured and judged (a soak stopped by its user).
    stop_path: str | None = None
    _schedule: Schedule | None = field(default=None, repr=False)

    @property
    def schedule(self) -> Schedule:
        """Every snapshot's intended send time (drawn once: a poisson level's are random)."""
        if self._schedule is None:
            self._schedule = schedule(
                self.shape, self.rate, self.duration_s, "%d:%d" % (self.seed, self.level)
            )
        return self._schedule

    @property
    def total(self) -> int:
        return self.schedule.total

    def generator(self) -> SnapshotGenerator | ReplayGenerator:
        if self.schedule.captured is not None:
            return ReplayGenerator(self.schedule.captured, run_id_prefix(self.run_tag, self.level))
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
    # When each snapshot was written, in seconds from the level's start (its intended times
    # are the plan's schedule): the delivered shape.
    sent_offsets: array = field(default_factory=lambda: array("d"))
    # After each write: (seconds from the level's start, seconds blocked on a full pipe so far).
    blocked_timeline: list[tuple[float, float]] = field(default_factory=list)
    # CPU seconds of the records follower (a process of its own), beside the sender's.
    follower_cpu_s: float = 0.0
    delivery: dict = field(default_factory=dict)
    # When the level's records became visible in the records files (visibility.py), or None
    # when they were not followed.
    freshness: dict | None = None
    # Planned restarts the sender outlived (faults.py): when the Observer died and when the
    # new one read its input, in seconds from the level's start, and both PIDs.
    restarts: list[dict] = field(default_factory=list)
    # Seconds from the level's start at which it was asked to stop early (None: it was not).
    stopped_early_s: float | None = None

    def as_dict(self, lateness: Sequence[float] | None = None) -> dict:
        """The outcome; its lateness summed up over ``lateness`` (default: every send)."""
        elapsed = max(self.finished_at - self.started_at, 1e-9)
        return {
            "planned": self.planned,
            "sent": self.sent,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "achieved_rate": round(self.sent / elapsed, 3) if self.sent else 0.0,
            "lateness_ms": summary_ms(self.lateness_ms if lateness is None else lateness),
            "failure": self.failure,
            "observer_pid": self.observer_pid,
            "blocked_s": round(self.blocked_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "follower_cpu_s": round(self.follower_cpu_s, 3),
            # The load tool's own share of the machine: the sender and its records follower.
            "generator_cpu_pct": round(
                100.0 * (self.cpu_s + self.follower_cpu_s) / elapsed / (os.cpu_count() or 1), 3
            )
            if self.sent
            else 0.0,
            "delivery": self.delivery,
            "freshness": self.freshness,
            "restarts": self.restarts,
            "stopped_early_s": self.stopped_early_s,
            "observer_pid_end": self.restarts[-1]["pid_after"]
            if self.restarts
            else self.observer_pid,
        }


def write_progress(path: str | None, document: dict) -> None:
    """Replace the progress file atomically (the controller may read it at any moment)."""
    if not path:
        return
    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "w") as handle:
        json.dump(document, handle)
    os.replace(temporary, path)


def _write_progress(
    path: str | None, outcome: LevelOutcome, now: float, done: bool, draining: bool = False
) -> None:
    """While running, lateness over the last 5000 sends (cheap); when done, the level's
    whole result, so the controller can read it without waiting on the async job. Draining:
    everything was sent, and the level's last records are awaited."""
    if not path:
        return  # nothing to write: no figure to sum up on the sending's time
    # While running, the last 5000 sends only: sorting every send each second would delay the
    # sends due meanwhile.
    document = dict(
        outcome.as_dict(None if done else outcome.lateness_ms[-5000:]),
        elapsed_s=round(now - outcome.started_at, 3), done=done, draining=draining,
    )  # fmt: skip
    write_progress(path, document)


def _write_fully(link: Link, data: bytes, outcome: LevelOutcome) -> float | None:
    """Write all of ``data`` (to a new Observer after a planned restart): the seconds spent
    waiting for room, or None if the Observer died meanwhile (``outcome.failure`` says so)."""
    view = memoryview(data)
    blocked = 0.0
    while view:
        try:
            view = view[os.write(link.fd, view) :]
        except BlockingIOError:
            waited = time.monotonic()
            select.select([], [link.fd], [], WRITE_WAIT_S)
            blocked += time.monotonic() - waited
            if not link.watch.alive() and not link.recover(outcome):
                return None
        except BrokenPipeError:
            if not link.recover(outcome):
                return None
    outcome.blocked_s += blocked
    return blocked


def _send_due(
    plan: LevelPlan,
    outcome: LevelOutcome,
    *,
    mono_start: float,
    generator: SnapshotGenerator | ReplayGenerator,
    link: Link,
    ledger: BinaryIO,
) -> bool:
    """What is due by now goes out in one write (at most MAX_BATCH lines: a huge burst goes
    out in several, back to back): late lines are sent, never skipped. False if the Observer
    died meanwhile."""
    due_at, total = plan.schedule.offsets, plan.schedule.total
    now_s = time.monotonic() - mono_start
    first = sent = outcome.sent
    batch = []
    while sent < total and due_at[sent] <= now_s and sent - first < MAX_BATCH:
        outcome.lateness_ms.append((now_s - due_at[sent]) * 1000.0)
        batch.append(generator.line(plan.wall_start + due_at[sent]))
        sent += 1
    data = b"".join(batch)
    if _write_fully(link, data, outcome) is None:
        return False
    written = time.monotonic() - mono_start
    outcome.sent_offsets.extend([written] * (sent - first))
    # When the pipe was full, and for how long in all: a burst's share of it is the time
    # blocked between its due time and its last send, whichever lines were being written.
    outcome.blocked_timeline.append((written, outcome.blocked_s))
    ledger.write(data)
    outcome.sent = sent
    return True


@dataclass
class Follow:
    """Where the level's records appear (the records files of ``output_dir`` whose names match
    ``record_files``), how long to wait for them after the last send, and where the sightings
    go."""

    output_dir: str
    record_files: str
    prefix: str
    settle_s: float
    path: str
    # Where the records folder's size is sampled while following (visibility.FolderSizes).
    folder_sizes: str = ""


class _StopFollowing(Exception):
    """The sender asked the follower to stop."""


def _stop_following(_signum: int, _frame: object) -> None:
    raise _StopFollowing


def _start_follower(follow_spec: Follow, pipe_fd: int) -> tuple[int, int] | None:
    """Fork the follower: (its PID, the pipe to tell it how many were sent); None when the
    machine cannot fork (the level runs without freshness)."""
    follower = RecordFollower(follow_spec.output_dir, follow_spec.record_files, follow_spec.prefix)
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid:
        os.close(read_end)
        return pid, write_end
    status = 1
    try:
        # The job's output is the sender's, and the Observer's input too: the follower holds
        # neither (the Observer must see its input end when the sender closes it).
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(write_end)
        os.close(pipe_fd)
        # Stopped early (the Observer died), it still writes what it saw.
        signal.signal(signal.SIGTERM, _stop_following)
        sizes = None
        if follow_spec.folder_sizes:
            # Without it the level runs as before: its trends say the folder was not measured.
            with contextlib.suppress(OSError):
                sizes = FolderSizes(follow_spec.output_dir, follow_spec.folder_sizes)
        with contextlib.suppress(_StopFollowing):
            follow(follower, read_end, follow_spec.settle_s, sizes)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        write_sightings(follow_spec.path, follower.seen)
        status = 0
    finally:
        os._exit(status)


def _end_follower(follower: tuple[int, int], sent: int, link: Link, outcome: LevelOutcome) -> float:
    """Tell the follower how many were sent (0: stop now) and wait for it to have seen them,
    or given up: the CPU seconds it used. The Observer is still watched meanwhile: dead
    before writing the level's last records, it failed the level."""
    pid, control = follower
    with contextlib.suppress(OSError):
        os.write(control, b"%d\n" % sent)
    os.close(control)
    next_check = time.monotonic() + PID_CHECK_S
    while True:
        done, _status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return usage.ru_utime + usage.ru_stime
        if outcome.failure is None and time.monotonic() >= next_check:
            next_check = time.monotonic() + PID_CHECK_S
            if not link.watch.alive():
                outcome.failure = (
                    "process failure: the Observer (pid %d) died before writing the level's "
                    "last records" % link.watch.pid
                )
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
        time.sleep(FOLLOWER_WAIT_S)


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def inject(
    plan: LevelPlan,
    pipe_fd: int,
    watch: ProcessWatch,
    ledger_path: str,
    progress_path: str | None = None,
    *,
    follow_spec: Follow | None = None,
    outages: Outages | None = None,
) -> LevelOutcome:
    """Send the level's snapshots on schedule; every line sent is also kept in the ledger, and
    its intended and actual send times beside it (``<ledger>.times``). With ``follow_spec``,
    when each record became visible too (``freshness``)."""
    generator = plan.generator()
    outcome = LevelOutcome(planned=plan.total, observer_pid=watch.pid)
    follower = _start_follower(follow_spec, pipe_fd) if follow_spec else None
    link = Link(pipe_fd, watch, outages, 0.0)
    sent = None
    gave_up = mono_start = 0.0
    try:
        mono_start = _send_all(plan, outcome, link=link, ledger_path=ledger_path,
                               progress_path=progress_path, generator=generator)  # fmt: skip
        # A dead Observer writes nothing more: the follower stops at once.
        sent = 0 if outcome.failure else outcome.sent
    finally:
        if follower:
            outcome.follower_cpu_s = _end_follower(follower, sent or 0, link, outcome)
            gave_up = time.monotonic()
        link.close()
    span = max(plan.duration_s, outcome.finished_at - outcome.started_at)
    outcome.delivery = delivery(
        plan.schedule, outcome.sent_offsets, span, _burst_blocked(plan.schedule, outcome)
    )
    write_send_times(ledger_path + ".times", plan.schedule.offsets, outcome.sent_offsets)
    if follower and follow_spec:
        seen = read_sightings(follow_spec.path)
        outcome.freshness = freshness(
            plan.schedule, outcome.sent_offsets, seen, mono_start=mono_start,
            lateness_ms=outcome.lateness_ms, gave_up=gave_up,
        )  # fmt: skip
        # Kept from the level's start, the clock of the ledger's send times.
        write_sightings(follow_spec.path, seen, since=mono_start)
    _write_progress(progress_path, outcome, time.time(), done=True)
    return outcome


def _send_all(
    plan: LevelPlan,
    outcome: LevelOutcome,
    *,
    link: Link,
    ledger_path: str,
    progress_path: str | None,
    generator: SnapshotGenerator | ReplayGenerator,
) -> float:
    """The sending itself, from the agreed start to the last snapshot (or the Observer's
    death): the monotonic moment it started."""
    plan.wall_start = plan.start_at if plan.start_at else time.time() + 0.05
    while time.time() < plan.wall_start:
        time.sleep(min(0.05, max(0.0, plan.wall_start - time.time())))
    mono_start = link.mono_start = time.monotonic()
    cpu_start = _cpu_seconds()
    outcome.started_at = time.time()
    # Said at once: the level's faults (stress_fault) count their moments from it.
    _write_progress(progress_path, outcome, outcome.started_at, done=False)
    with _no_garbage_collection(), open(ledger_path, "wb") as ledger:
        _send_loop(plan, outcome, link=link, ledger=ledger, progress_path=progress_path,
                   generator=generator, mono_start=mono_start)  # fmt: skip
    outcome.finished_at = time.time()
    outcome.cpu_s = _cpu_seconds() - cpu_start
    if outcome.failure is None and not link.watch.alive():
        link.recover(outcome)
    if outcome.failure is None:
        _write_progress(progress_path, outcome, time.time(), done=False, draining=True)
    return mono_start


@contextlib.contextmanager
def _no_garbage_collection() -> Iterator[None]:
    """No cyclic garbage collection while sending: a collection walks every tracked object (a
    long level's million entries of its blocked timeline) and delays the sends due meanwhile;
    what the sender frees, reference counting frees at once."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _send_loop(
    plan: LevelPlan,
    outcome: LevelOutcome,
    *,
    link: Link,
    ledger: BinaryIO,
    progress_path: str | None,
    generator: SnapshotGenerator | ReplayGenerator,
    mono_start: float,
) -> None:
    """Every send on its schedule, the PID watched and the progress written meanwhile."""
    total = plan.schedule.total
    due_at = plan.schedule.offsets
    next_check = mono_start + PID_CHECK_S
    next_progress = mono_start + PROGRESS_EVERY_S
    sending = {"generator": generator, "link": link, "ledger": ledger}
    while outcome.sent < total:
        now = time.monotonic()
        if now >= next_check:
            next_check = now + PID_CHECK_S
            if not link.watch.alive() and not link.recover(outcome):
                break
        if now >= next_progress:
            next_progress = now + PROGRESS_EVERY_S
            if plan.stop_path and os.path.exists(plan.stop_path):
                outcome.stopped_early_s = round(now - mono_start, 3)
                break
            _write_progress(progress_path, outcome, time.time(), done=False)
        due = mono_start + due_at[outcome.sent]
        if due > now:
            time.sleep(min(due - now, PID_CHECK_S))
            continue
        if not _send_due(plan, outcome, mono_start=mono_start, **sending):
            break


def _burst_blocked(plan: Schedule, outcome: LevelOutcome) -> dict[int, float]:
    """Per burst, the seconds the generator waited on a full pipe between the burst's due time
    and its last send (whatever it was writing then): the Observer's share of the delay."""
    moments = [moment for moment, _unused in outcome.blocked_timeline]
    totals = [total for _unused, total in outcome.blocked_timeline]
    blocked = {}
    for number, (start, members) in enumerate(plan.bursts):
        done = [i for i in members if i < len(outcome.sent_offsets)]
        if not done:
            continue
        last = bisect.bisect_left(moments, max(outcome.sent_offsets[i] for i in done))
        before = bisect.bisect_right(moments, start) - 1
        at_last = totals[last] if last < len(totals) else outcome.blocked_s
        blocked[number] = at_last - (totals[before] if before >= 0 else 0.0)
    return blocked
