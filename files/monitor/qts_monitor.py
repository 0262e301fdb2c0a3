"""qts_monitor: sample host and Observer resource use into a CSV for the stress run.

One row per sampling slot, flushed as soon as it is written (the stress run tails the
file). The columns, in this order, are fixed by the scenario spec (sections 3 and 5);
the four after ``Observer_Memory_MB`` are extras:

``Timestamp``
    Wall-clock time of the sample, ISO-8601 UTC with milliseconds:
    ``2026-11-27T16:20:13.123Z``.
``CPU%``
    System-wide CPU busy share since the previous sample (0-100, all cores together).
``Memory%``
    ``psutil.virtual_memory().percent``.
``Disk%``
    Used share of the filesystem holding ``--disk-path`` (as ``df`` shows it).
``Network_Recv_MB``, ``Network_Sent_MB``
    MiB (1 MiB = 1,048,576 bytes) received / sent on the selected interfaces since the
    monitor started: they start at 0 and never decrease (a counter that goes backwards,
    e.g. an interface re-created, is counted from its new value).
``Observer_PID``
    PID read from the Observer's own pidfile (``--pidfile``), re-read every sample.
``Observer_CPU%``
    CPU used by the Observer process since the previous sample, as a percentage of ONE
    core (like ``top``): a process using two full cores shows 200.0. Empty in the first
    row after a new Observer process is found (there is no previous sample of it yet).
``Observer_Memory_MB``
    Observer resident set size (RSS) in MiB.
``Disk_Read_MB``, ``Disk_Write_MB``
    MiB read / written on the host's disks since the monitor started. Empty where the
    kernel exposes no disk counters (some containers).
``Observer_Threads``, ``Observer_Open_Files``
    Observer thread count and open file descriptors (``num_fds``; where unavailable,
    the number of open regular files). A cell the monitor may not read is left empty.

The Observer is found only through its pidfile, never by matching command lines. It is
tracked by (PID, creation time), so a restart or a PID reused by another process gives
a fresh measurement. While the pidfile is missing, empty, not a PID, or names no live
process, the Observer cells are empty and rows are still written; stderr gets one line
per change of that state, not one per sample.

Sampling runs on a fixed schedule (start + n * interval, no drift). A late sample is
still taken (a loaded host is when the rows matter most), then the missed slots are
skipped: no catch-up burst, no slot written twice, rows at least half an interval
apart. SIGTERM and SIGINT stop the
monitor cleanly (exit 0). Bad arguments: one line on stderr, exit 2.

Standard library and psutil only; Python 3.9 or later.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import re
import select
import signal
import socket
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Callable, NoReturn, TextIO

import psutil

PROG = "qts_monitor"
MIB = 1024 * 1024
MAX_INTERVAL_S = 2.0
SPEC_COLUMNS = (
    "Timestamp",
    "CPU%",
    "Memory%",
    "Disk%",
    "Network_Recv_MB",
    "Network_Sent_MB",
    "Observer_PID",
    "Observer_CPU%",
    "Observer_Memory_MB",
)
EXTRA_COLUMNS = ("Disk_Read_MB", "Disk_Write_MB", "Observer_Threads", "Observer_Open_Files")
COLUMNS = SPEC_COLUMNS + EXTRA_COLUMNS
HEADER = ",".join(COLUMNS)
EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
_PID_RE = re.compile(r"[0-9]{1,10}")

Warn = Callable[[str], None]


class UsageError(Exception):
    """A problem with the arguments or the environment found at start: exit 2."""


def _warn(message: str) -> None:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


# ---------------------------------------------------------------- formatting


def utc_stamp_ms(epoch_s: float) -> str:
    """``2026-11-27T16:20:13.123Z``."""
    millis = int(epoch_s * 1000)
    whole, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{ms:03d}Z"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _mib(value_bytes: float | None) -> str:
    return "" if value_bytes is None else f"{value_bytes / MIB:.3f}"


def _int(value: int | None) -> str:
    return "" if value is None else str(value)


# ---------------------------------------------------------------- counters


class CumulativeCounter:
    """Sum of the increases of several monotonic counters since their first reading.

    A key first seen later starts from its value then (earlier traffic is not counted).
    A counter that goes backwards (reset, interface re-created) is counted from its new
    value, so the total never decreases.
    """

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.total = 0

    def update(self, readings: Mapping[str, int]) -> int:
        for key, value in readings.items():
            previous = self._last.get(key)
            if previous is not None:
                self.total += value - previous if value >= previous else value
            self._last[key] = value
        return self.total


class NetworkCounters:
    """Received / sent bytes since start, summed over the selected interfaces."""

    def __init__(self, interfaces: Sequence[str] | None, warn: Warn) -> None:
        self._explicit = tuple(interfaces) if interfaces else None
        self._warn = warn
        self._loopback: dict[str, bool] = {}
        self._missing: frozenset[str] = frozenset()
        self._recv = CumulativeCounter()
        self._sent = CumulativeCounter()
        self.update()

    def _is_loopback(self, name: str) -> bool:
        if name not in self._loopback:
            stats = psutil.net_if_stats().get(name)
            flags = getattr(stats, "flags", "") if stats is not None else ""
            self._loopback[name] = name == "lo" or "loopback" in flags.split(",")
        return self._loopback[name]

    def selected(self, present: Iterable[str]) -> list[str]:
        if self._explicit is not None:
            return list(self._explicit)
        return sorted(name for name in present if not self._is_loopback(name))

    def update(self) -> tuple[int, int]:
        per_nic = psutil.net_io_counters(pernic=True)
        names = self.selected(per_nic)
        missing = frozenset(name for name in names if name not in per_nic)
        if missing != self._missing:
            if missing:
                self._warn(f"warning: interface(s) {', '.join(sorted(missing))} gone; not counted")
            else:
                self._warn("interfaces back: " + ", ".join(names))
            self._missing = missing
        recv = {n: per_nic[n].bytes_recv for n in names if n in per_nic}
        sent = {n: per_nic[n].bytes_sent for n in names if n in per_nic}
        return self._recv.update(recv), self._sent.update(sent)


class DiskIOCounters:
    """Bytes read / written on the host's disks since start; None without counters."""

    def __init__(self) -> None:
        self._read = CumulativeCounter()
        self._write = CumulativeCounter()
        self.update()

    def update(self) -> tuple[int | None, int | None]:
        try:
            counters = psutil.disk_io_counters(perdisk=False)
        except (OSError, RuntimeError, ValueError):
            counters = None
        if not counters:
            return None, None
        return (
            self._read.update({"all": counters.read_bytes}),
            self._write.update({"all": counters.write_bytes}),
        )


# ---------------------------------------------------------------- the Observer


@dataclass(frozen=True)
class ObserverSample:
    pid: int
    cpu_percent: float | None
    rss_bytes: int | None
    threads: int | None
    open_files: int | None


def read_pidfile(path: str) -> tuple[int | None, str, str]:
    """(pid, "ok", "") when the file holds one PID, else (None, state, message)."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(4096)
    except FileNotFoundError:
        return None, "missing", f"pidfile {path} missing"
    except OSError as exc:
        return None, "unreadable", f"pidfile {path} unreadable ({exc.strerror or exc})"
    text = text.strip()
    if not text:
        return None, "empty", f"pidfile {path} empty"
    if not _PID_RE.fullmatch(text) or int(text) <= 0:
        shown = text[:40].encode("unicode_escape").decode("ascii")
        return None, "invalid", f"pidfile {path} does not hold a PID ({shown!r})"
    return int(text), "ok", ""


class ObserverTracker:
    """Follows the process named by the pidfile; one stderr line per state change."""

    def __init__(self, pidfile: str, warn: Warn) -> None:
        self.pidfile = pidfile
        self._warn = warn
        self._proc: psutil.Process | None = None
        self._state: str | None = None

    def _report(self, state: str, message: str) -> None:
        if state != self._state:
            self._state = state
            self._warn(message)

    def _lost(self, state: str, message: str) -> None:
        self._proc = None
        self._report(state, f"warning: {message}; Observer columns empty")

    def _current(self, pid: int) -> tuple[psutil.Process | None, bool]:
        """The tracked process for pid and whether it is newly found."""
        proc = self._proc
        if proc is not None and proc.pid == pid and proc.is_running():
            return proc, False
        self._proc = None
        try:
            proc = psutil.Process(pid)
            create_time = proc.create_time()
            if proc.status() == psutil.STATUS_ZOMBIE:
                self._lost(f"zombie {pid}", f"observer PID {pid} has exited (zombie)")
                return None, False
            proc.cpu_percent(interval=None)  # baseline for the next sample
        except psutil.NoSuchProcess:
            self._lost(f"stale {pid}", f"pidfile {self.pidfile} names PID {pid}, not running")
            return None, False
        except (psutil.Error, OSError, ValueError, OverflowError) as exc:
            self._lost(f"error {pid}", f"cannot inspect PID {pid} from {self.pidfile} ({exc})")
            return None, False
        self._proc = proc
        stamp = utc_stamp_ms(create_time)
        self._report(f"ok {pid} {create_time}", f"observer PID {pid} (started {stamp}) tracked")
        return proc, True

    def sample(self) -> ObserverSample | None:
        pid, state, problem = read_pidfile(self.pidfile)
        if pid is None:
            self._lost(state, problem)
            return None
        proc, fresh = self._current(pid)
        if proc is None:
            return None
        try:
            with proc.oneshot():
                if proc.status() == psutil.STATUS_ZOMBIE:
                    self._lost(f"zombie {pid}", f"observer PID {pid} has exited (zombie)")
                    return None
                cpu = proc.cpu_percent(interval=None)
                rss = _readable(lambda: proc.memory_info().rss)
                threads = _readable(proc.num_threads)
                open_files = _readable(lambda: _open_files(proc))
        except psutil.NoSuchProcess:
            self._lost(f"stale {pid}", f"observer PID {pid} exited")
            return None
        except psutil.AccessDenied as exc:
            self._lost(f"denied {pid}", f"not allowed to inspect observer PID {pid} ({exc})")
            return None
        return ObserverSample(
            pid=pid,
            cpu_percent=None if fresh else cpu,
            rss_bytes=rss,
            threads=threads,
            open_files=open_files,
        )


def _readable(getter: Callable[[], int]) -> int | None:
    """One Process reading, None if the monitor may not read it."""
    try:
        return getter()
    except psutil.AccessDenied:
        return None


def _open_files(proc: psutil.Process) -> int:
    """Open file descriptors; where the platform has none, open regular files."""
    if hasattr(proc, "num_fds"):
        return proc.num_fds()
    return len(proc.open_files())


# ---------------------------------------------------------------- host sample


class Sampler:
    def __init__(
        self, disk_path: str, interfaces: Sequence[str] | None, pidfile: str, warn: Warn
    ) -> None:
        self.disk_path = disk_path
        self._warn = warn
        self._disk_ok = True
        psutil.cpu_percent(interval=None)  # baseline for the first row
        self.network = NetworkCounters(interfaces, warn)
        self.disk_io = DiskIOCounters()
        self.observer = ObserverTracker(pidfile, warn)
        self.observer.sample()  # CPU baseline of an Observer already running

    def _disk_percent(self) -> float | None:
        try:
            value = psutil.disk_usage(self.disk_path).percent
        except OSError as exc:
            if self._disk_ok:
                self._warn(f"warning: cannot read disk usage of {self.disk_path} ({exc})")
            self._disk_ok = False
            return None
        if not self._disk_ok:
            self._warn(f"disk usage of {self.disk_path} readable again")
        self._disk_ok = True
        return value

    def row(self) -> list[str]:
        now = time.time()
        cpu = psutil.cpu_percent(interval=None)
        memory = psutil.virtual_memory().percent
        disk = self._disk_percent()
        recv, sent = self.network.update()
        disk_read, disk_write = self.disk_io.update()
        obs = self.observer.sample()
        return [
            utc_stamp_ms(now),
            _pct(cpu),
            _pct(memory),
            _pct(disk),
            _mib(recv),
            _mib(sent),
            _int(obs.pid) if obs else "",
            _pct(obs.cpu_percent) if obs else "",
            _mib(obs.rss_bytes) if obs else "",
            _mib(disk_read),
            _mib(disk_write),
            _int(obs.threads) if obs else "",
            _int(obs.open_files) if obs else "",
        ]


# ---------------------------------------------------------------- output


def open_output(path: str) -> tuple[TextIO, bool]:
    """(stream, whether to write the header). Refuses a file with another header."""
    if path == "-":
        return sys.stdout, True
    write_header = True
    needs_newline = False
    try:
        if os.path.isfile(path) and os.path.getsize(path) > 0:
            with open(path, "rb") as existing:
                first = existing.readline().rstrip(b"\r\n")
                existing.seek(-1, os.SEEK_END)
                needs_newline = existing.read(1) != b"\n"
            if first != HEADER.encode():
                shown = first[:120].decode("utf-8", "replace")
                raise UsageError(
                    f"output {path} already has a different header ({shown!r}); "
                    "refusing to mix formats: move it away or choose another --output"
                )
            write_header = False
        stream = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot open output {path}: {exc.strerror or exc}") from exc
    if needs_newline:  # a torn last line from an earlier run: keep rows on their own lines
        stream.write("\n")
    return stream, write_header


class PidfileSelf:
    """The monitor's own pidfile: written atomically at start, removed at exit."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path is None:
            return
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "w", encoding="ascii") as handle:
                handle.write(f"{os.getpid()}\n")
            os.replace(tmp, path)
        except OSError as exc:
            raise UsageError(f"cannot write --pidfile-self {path}: {exc.strerror or exc}") from exc

    def remove(self) -> None:
        if self.path is None:
            return
        pid, _unused, _unused = read_pidfile(self.path)
        if pid == os.getpid():
            with contextlib.suppress(OSError):
                os.unlink(self.path)


# ---------------------------------------------------------------- schedule and signals


class StopSignal:
    """SIGTERM / SIGINT set a flag and wake a sleeping wait_until()."""

    def __init__(self) -> None:
        self.requested = False
        self._rx, self._tx = socket.socketpair()
        self._rx.setblocking(False)
        self._tx.setblocking(False)
        signal.set_wakeup_fd(self._tx.fileno(), warn_on_full_buffer=False)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def wait_until(self, deadline: float) -> bool:
        """Sleep until the monotonic deadline; True if a stop was requested."""
        while not self.requested:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([self._rx], [], [], remaining)
            try:
                while self._rx.recv(64):
                    pass
            except (BlockingIOError, InterruptedError):
                pass
        return True


def next_slot(current: int, elapsed: float, interval: float) -> int:
    """The slot to sample next, after `current` was sampled `elapsed` s after start.

    Slot k is due at start + k * interval. Slots already past are skipped (no burst of
    catch-up rows after a stall), and so is a slot due less than half an interval from
    now, so rows are never closer than half an interval. A slot is never sampled twice.
    """
    return max(current + 1, math.ceil((elapsed + interval / 2) / interval))


def run(args: argparse.Namespace) -> int:
    interfaces = check_environment(args)
    stop = StopSignal()
    own_pidfile = PidfileSelf(args.pidfile_self)
    stream: TextIO | None = None
    try:
        stream, write_header = open_output(args.output)
        writer = csv.writer(stream, lineterminator="\n")
        if write_header:
            writer.writerow(COLUMNS)
            stream.flush()
        sampler = Sampler(args.disk_path, interfaces, args.pidfile, _warn)
        nics = ",".join(interfaces) if interfaces else "all but loopback"
        _warn(
            f"sampling every {args.interval:g}s to {args.output} "
            f"(pidfile {args.pidfile}, disk {args.disk_path}, interfaces {nics})"
        )
        t0 = time.monotonic()
        slot = 1
        written = 0
        while not stop.wait_until(t0 + slot * args.interval):
            writer.writerow(sampler.row())
            stream.flush()
            written += 1
            if args.samples is not None and written >= args.samples:
                break
            slot = next_slot(slot, time.monotonic() - t0, args.interval)
    except BrokenPipeError:
        # The reader of stdout went away: nothing more to write to.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        _warn(f"error: writing {args.output} failed: {exc.strerror or exc}")
        return EXIT_RUNTIME
    finally:
        own_pidfile.remove()
        if stream is not None and stream is not sys.stdout:
            stream.close()
    return EXIT_OK


# ---------------------------------------------------------------- arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(EXIT_USAGE)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_INTERVAL_S):
        raise argparse.ArgumentTypeError(
            f"{text} must be > 0 and <= {MAX_INTERVAL_S:g} seconds "
            "(the spec samples every 2 s or faster)"
        )
    return value


def _samples(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _interfaces(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(","))
    if not text.strip() or any(not name for name in names):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of names")
    return tuple(dict.fromkeys(names))


def _nonempty(text: str) -> str:
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Sample system and Observer resource use into a CSV for the QTS stress run.\n"
            "\n"
            "Columns (spec order, then extras):\n  "
            + ",".join(SPEC_COLUMNS)
            + ",\n  "
            + ",".join(EXTRA_COLUMNS)
            + "\n\n"
            "Units: percentages with 1 decimal; *_MB columns in MiB (1 MiB = 1,048,576\n"
            "bytes) with 3 decimals. Network and disk I/O MiB count from the monitor's\n"
            "start. CPU% is system-wide (0-100). Observer_CPU% is per core like top (may\n"
            "exceed 100 on several cores) and is empty in the first row of a newly found\n"
            "Observer process. Observer cells are empty while the pidfile is missing,\n"
            "empty, invalid or names no live process. Timestamps: 2026-11-27T16:20:13.123Z."
        ),
        epilog=(
            "Exit status: 0 after --samples rows or on SIGTERM/SIGINT; 1 if writing\n"
            "fails; 2 for bad arguments, an unknown interface, a missing --disk-path,\n"
            "or an output file with a different header."
        ),
    )
    parser.add_argument(
        "--pidfile",
        required=True,
        type=_nonempty,
        metavar="PATH",
        help="the Observer's pidfile (written by the Observer); re-read every sample. "
        "The Observer is never looked up by command line.",
    )
    parser.add_argument(
        "--output",
        default="-",
        type=_nonempty,
        metavar="PATH",
        help="CSV file, or - for stdout (default: -). An existing file with the same "
        "header is appended to; one with another header is refused.",
    )
    parser.add_argument(
        "--interval",
        default=1.0,
        type=_interval,
        metavar="SECONDS",
        help="seconds between samples, > 0 and <= 2 (default: 1.0). Rows are on a fixed "
        "schedule; missed slots are skipped, never doubled.",
    )
    parser.add_argument(
        "--disk-path",
        default="/",
        type=_nonempty,
        metavar="PATH",
        help="Disk%% is the usage of the filesystem holding PATH, e.g. the Observer's "
        "output directory (default: /)",
    )
    parser.add_argument(
        "--interfaces",
        type=_interfaces,
        metavar="NAME[,NAME...]",
        help="network interfaces whose counters are summed (default: every interface "
        "except loopback, including virtual ones such as bridges and veth pairs, which "
        "can count the same traffic twice: name the host's uplink(s) to avoid that). "
        "An unknown name is an error.",
    )
    parser.add_argument(
        "--samples",
        type=_samples,
        metavar="N",
        help="stop after N rows (default: run until SIGTERM/SIGINT)",
    )
    parser.add_argument(
        "--pidfile-self",
        type=_nonempty,
        metavar="PATH",
        help="write the monitor's own PID here; removed at exit",
    )
    return parser


def check_environment(args: argparse.Namespace) -> tuple[str, ...] | None:
    """Checks that need the host; raises UsageError."""
    if args.pidfile_self and os.path.abspath(args.pidfile_self) == os.path.abspath(args.pidfile):
        raise UsageError("--pidfile-self must not be the Observer's --pidfile")
    try:
        psutil.disk_usage(args.disk_path)
    except OSError as exc:
        raise UsageError(f"--disk-path {args.disk_path}: {exc.strerror or exc}") from exc
    if args.interfaces:
        known = set(psutil.net_io_counters(pernic=True))
        unknown = [name for name in args.interfaces if name not in known]
        if unknown:
            raise UsageError(
                f"--interfaces: unknown interface(s) {', '.join(unknown)} "
                f"(this host has: {', '.join(sorted(known))})"
            )
    return args.interfaces


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        _warn(f"error: {exc}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
