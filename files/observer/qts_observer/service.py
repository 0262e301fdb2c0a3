"""The Observer's main loop: read, validate, dispatch, buffer, write, report.

Single-threaded on purpose: when writing stalls (slow or full disk) the loop simply stops
reading, so a full buffer pushes back on the producers and nothing is ever dropped.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
import traceback
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from .clock import utc_stamp, utc_stamp_ms
from .config import Settings
from .contract import ParseError, SnapshotContract, known_run_id, parse_json
from .intake import InputSource, LineSplitter, OversizedLine
from .logbook import Logbook
from .metrics import METRICS_NAME, MetricsReporter
from .output import RecordWriter
from .rejects import RejectWriter
from .trigger import HybridTrigger

# How long shutdown keeps taking in what producers already wrote before it stops reading.
DRAIN_SECONDS = 3.0
# After a failed write (e.g. disk full), how long to wait before trying again.
WRITE_RETRY_SECONDS = 1.0
_RECORD = b'{"seq":%d%b%b}\n'


@dataclass(frozen=True)
class Paths:
    config: Path
    output_dir: Path
    input: str | None
    pidfile: Path | None
    log_file: str | None
    metrics_file: Path | None


def _untrusted(text: str, limit: int = 160) -> str:
    """Quote input-derived text for a log line: escaped, bounded, never a counted phrase."""
    quoted = repr(text[:limit]) + ("..." if len(text) > limit else "")
    return quoted.replace("PatternRecord dispatched", "PatternRecord_dispatched")


class Observer:
    def __init__(self, settings: Settings, paths: Paths, log: Logbook) -> None:
        self.settings = settings
        self.paths = paths
        self.log = log
        self.contract = SnapshotContract()
        self.splitter = LineSplitter(settings.max_line_bytes, settings.reject_sample_bytes)
        self.trigger = HybridTrigger(
            settings.trigger_enabled, settings.min_interval_s, settings.max_interval_s
        )
        self.writer = RecordWriter(
            paths.output_dir,
            rotation=settings.rotation_enabled,
            window_s=settings.window_s,
            max_files=settings.max_files,
            warn=log.warning,
        )
        self.rejects = RejectWriter(paths.output_dir, settings.reject_sample_bytes)
        self.metrics = MetricsReporter(
            paths.metrics_file or paths.output_dir / METRICS_NAME, settings.metrics_history_size
        )
        self.counters = self.metrics.counters
        # Validated snapshots not yet dispatched, grouped by the read that brought them:
        # (receipt on the monotonic clock, receipt time as bytes, [(line, run_id), ...]).
        self._pending: list[tuple[float, bytes, list[tuple[bytes, str]]]] = []
        self._pending_count = 0
        self._buffer: list[bytes] = []
        self._inflight: memoryview | None = None
        self._write_retry_at = 0.0
        self._last_flush = 0.0
        self._next_report = 0.0
        self._seq = 0
        self._stop_signal: int | None = None
        self._reopen_log = False
        self._source: InputSource | None = None
        self._side_errors: set[Path] = set()

    # -- start-up ---------------------------------------------------------------------
    def recover(self) -> None:
        final, torn = self.writer.recover()
        if torn:
            self.rejects.add(
                torn, ["torn record left by a crash of the previous Observer"], time.time()
            )
            self._write_side_files()
            self.log.error(
                f"set aside {len(torn)} bytes of a record torn by a crash in rejects.jsonl"
            )
        if final is not None:
            self.log.warning(
                f"finalised {final.name} left active by a previous Observer "
                "that did not stop cleanly"
            )
        self.writer.enforce_retention(keep=self.settings.max_files - 1)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self._reopen_log = True
        else:
            self._stop_signal = signum

    # -- the loop ---------------------------------------------------------------------
    def run(self, source: InputSource) -> int:
        self._source = source
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)
        now = time.monotonic()
        self._last_flush = now
        self._next_report = now + self.settings.report_interval_s
        self.trigger.ticked(now)
        self.metrics.start(now)
        ended = False
        try:
            while self._stop_signal is None and not ended:
                now = time.monotonic()
                timeout = max(0.0, self._next_deadline(now) - now)
                watched = [wake_read, source.fd] if self._can_read() else [wake_read]
                ready = select.select(watched, [], [], timeout)[0]
                if wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_read, 512)
                if source.fd in ready:
                    chunk = source.read()
                    if chunk == b"":
                        ended = True
                    elif chunk:
                        self._take(chunk)
                if self._reopen_log:
                    self._reopen_log = False
                    self.log.reopen()
                self._on_time(time.monotonic())
                self._write_side_files()
                self.log.flush()
        except Exception:
            # Never leave accepted snapshots in memory: say why, then write out what we hold.
            self.log.critical("unexpected failure: " + traceback.format_exc().replace("\n", " | "))
            return self._shutdown("unexpected failure", drain=False, failed=True)
        finally:
            signal.set_wakeup_fd(-1)
            os.close(wake_read)
            os.close(wake_write)
        reason = "end of input" if ended else f"signal {signal.Signals(self._stop_signal).name}"
        return self._shutdown(reason, drain=not ended)

    def _can_read(self) -> bool:
        limit = self.settings.max_buffer_size
        return (
            self._inflight is None
            and len(self._buffer) < limit
            and self._pending_count < limit
            and self.rejects.last_error is None
        )

    def _write_side_files(self) -> bool:
        """Write queued rejects and metrics; on a disk error keep them and say so once."""
        written = True
        for side in (self.rejects, self.metrics.file):
            if side.flush():
                continue
            written = False
            if side.path not in self._side_errors:
                self._side_errors.add(side.path)
                self.log.critical(
                    f"writing {side.path.name} failed: {side.last_error.strerror}; "
                    f"{side.pending_bytes} bytes kept in memory, retrying"
                )
        if written:
            self._side_errors.clear()
        return written

    def _next_deadline(self, now: float) -> float:
        deadlines = [self.trigger.next_deadline(self._pending_count), self._next_report]
        if self._buffer:
            deadlines.append(self._last_flush + self.settings.flush_interval_s)
        if self._inflight is not None:
            deadlines.append(self._write_retry_at)
        deadlines.append(now + (self.writer.next_rotation() - time.time()))
        return min(deadlines)

    def _on_time(self, now: float) -> None:
        if self.trigger.dispatch_due(now, self._pending_count):
            self._dispatch(now)
        elif self.trigger.tick_due(now):
            self.trigger.ticked(now)
        if self._inflight is not None and now >= self._write_retry_at:
            self._flush(now)
        if self._buffer and (
            not self.settings.buffering
            or len(self._buffer) >= self.settings.max_buffer_size
            or now - self._last_flush >= self.settings.flush_interval_s
        ):
            self._flush(now)
        elif not self._buffer and self._inflight is None and self.writer.rotation_due(time.time()):
            self._rotate()
        if now >= self._next_report:
            self._report(now)

    # -- intake -----------------------------------------------------------------------
    def _take(self, chunk: bytes) -> None:
        received_mono = time.monotonic()
        received_wall = time.time()
        lines, oversized = self.splitter.feed(chunk)
        for line in oversized:
            self._reject_oversized(line, received_wall)
        if lines:
            self._take_lines(lines, received_mono, received_wall)

    def _take_lines(self, lines: list[bytes], received_mono: float, received_wall: float) -> None:
        accepted: list[tuple[bytes, str]] = []
        append = accepted.append
        loads, is_valid = parse_json, self.contract.is_valid
        blank = 0
        for line in lines:
            try:
                document = loads(line)
            except ParseError as exc:
                if line.isspace() or not line:
                    blank += 1
                else:
                    self._reject(line, [f"not valid JSON: {exc}"], received_wall, None)
                continue
            if is_valid(document):
                append((line, document["meta"]["run_id"]))
            else:
                self._reject(
                    line, self.contract.reasons(document), received_wall, known_run_id(document)
                )
        counters = self.counters
        counters.blank_lines += blank
        counters.received += len(lines) - blank
        if accepted:
            stamp = b',"received_at":"' + utc_stamp(received_wall).encode() + b'"'
            self._pending.append((received_mono, stamp, accepted))
            self._pending_count += len(accepted)

    def _reject(
        self, raw: bytes, reasons: list[str], received_wall: float, run_id: str | None
    ) -> None:
        self.rejects.add(raw, reasons, received_wall, run_id)
        self.counters.rejected += 1
        shown = _untrusted(run_id) if run_id is not None else "unknown"
        self.log.error(
            f"snapshot rejected run_id={shown} reasons={len(reasons)} "
            f"first={_untrusted(reasons[0] if reasons else '')} bytes={len(raw)}"
        )

    def _reject_oversized(self, line: OversizedLine, received_wall: float) -> None:
        limit = self.settings.max_line_bytes
        self.counters.received += 1
        self.rejects.add(
            line.sample,
            [f"line of {line.length} bytes exceeds intake.max_line_bytes ({limit})"],
            received_wall,
            None,
            raw_length=line.length,
        )
        self.counters.rejected += 1
        self.log.error(
            f"snapshot rejected run_id=unknown: line of {line.length} bytes exceeds {limit}"
        )

    # -- dispatch, buffer, write ------------------------------------------------------
    def _dispatch(self, now: float) -> None:
        """Turn every pending snapshot into a PatternRecord (the buffer bounds each step)."""
        wall = time.time()
        dispatched = b',"dispatched_at":"' + utc_stamp(wall).encode() + b'"'
        log_prefix = f"{utc_stamp_ms(wall)} INFO PatternRecord dispatched run_id="
        limit = self.settings.max_buffer_size
        buffer, log_lines, history = self._buffer, [], self.counters.latencies_ms
        seq = self._seq
        for received_mono, received_stamp, items in self._pending:
            latency = round((now - received_mono) * 1000.0, 3)
            middle = b'%b%b,"processing_latency_ms":%.3f,"snapshot":' % (
                received_stamp,
                dispatched,
                latency,
            )
            suffix = f" latency_ms={latency:.3f}\n"
            start = 0
            while start < len(items):
                part = items[start : start + max(1, limit - len(buffer))]
                start += len(part)
                for line, run_id in part:
                    seq += 1
                    buffer.append(_RECORD % (seq, middle, line))
                    log_lines.append(f"{log_prefix}{run_id} seq={seq}{suffix}")
                history.extend(repeat(latency, len(part)))
                if len(buffer) >= limit:
                    self._seq = seq
                    self._note_buffer_depth()
                    self._flush(now)
        self._seq = seq
        self.counters.processed += self._pending_count
        self._pending.clear()
        self._pending_count = 0
        self._note_buffer_depth()
        if log_lines:
            self.log.extend("".join(log_lines).encode())
        self.trigger.dispatched(now)
        if not self.settings.buffering:
            self._flush(now)

    def _note_buffer_depth(self) -> None:
        depth = len(self._buffer)
        self.counters.buffer_depth_max = max(self.counters.buffer_depth_max, depth)

    def _flush(self, now: float) -> bool:
        """Write the buffer; on a write error keep every byte and retry later."""
        if self._inflight is None:
            if not self._buffer:
                return True
            if self.writer.rotation_due(time.time()):
                self._rotate()
            self._inflight = memoryview(b"".join(self._buffer))
            self._buffer.clear()
            self.counters.flushes += 1
        self._last_flush = now
        inflight = self._inflight
        try:
            while inflight:
                inflight = inflight[self.writer.write(inflight) :]
        except OSError as exc:
            self._inflight = inflight
            self._write_retry_at = now + WRITE_RETRY_SECONDS
            self.counters.write_errors += 1
            self.log.critical(
                f"writing records failed: {exc.strerror}; {len(inflight)} bytes kept in memory, "
                f"input paused, retrying in {WRITE_RETRY_SECONDS:.0f} s"
            )
            return False
        self._inflight = None
        return True

    def _rotate(self) -> None:
        final = self.writer.rotate()
        if final is not None:
            self.counters.rotations += 1
            self.log.info(f"rotation: finalised {final.name}")

    def _report(self, now: float) -> None:
        interval = self.settings.report_interval_s
        self._next_report = max(self._next_report + interval, now)
        if not self.settings.metrics_enabled:
            return
        document = self.metrics.snapshot(now, time.time(), len(self._buffer), self._pending_count)
        self.log.info(self.metrics.write(document))

    # -- shutdown ---------------------------------------------------------------------
    def _shutdown(self, reason: str, drain: bool, failed: bool = False) -> int:
        started = time.monotonic()
        source = self._source
        assert source is not None
        self.log.info(f"stopping ({reason}): taking in what is already waiting")
        if drain:
            self._drain(source, started)
        last, oversized = self.splitter.finish()
        if oversized is not None:
            self._reject_oversized(oversized, time.time())
        if last is not None:
            self._take_lines([last], time.monotonic(), time.time())
        source.close()
        now = time.monotonic()
        if self._pending_count:
            self._dispatch(now)
        self._report(time.monotonic())
        # A full disk may free up: keep trying for a while rather than give up at once.
        while not (self._flush(time.monotonic()) and self._write_side_files()):
            if time.monotonic() - started > DRAIN_SECONDS + 1.0:
                break
            time.sleep(0.2)
        status = self._close_outputs(1 if failed else 0)
        counters = self.counters
        self.log.info(
            f"stopped cleanly={status == 0} received={counters.received} "
            f"processed={counters.processed} rejected={counters.rejected} "
            f"blank_lines={counters.blank_lines} flushes={counters.flushes} "
            f"rotations={counters.rotations} in {time.monotonic() - started:.3f} s"
        )
        self.log.flush()
        return status

    def _drain(self, source: InputSource, started: float) -> None:
        """Take in what is already waiting on the input, for at most DRAIN_SECONDS."""
        while time.monotonic() - started < DRAIN_SECONDS:
            chunk = source.read()
            if not chunk:
                break
            self._take(chunk)
            if self._pending_count >= self.settings.max_buffer_size:
                self._dispatch(time.monotonic())

    def _close_outputs(self, status: int) -> int:
        """Close the records and side files; status 1 if any of them could not be written."""
        unwritten = len(self._inflight or b"")
        if unwritten:
            self.log.critical(f"shutdown: {unwritten} bytes of records could not be written")
            status = 1
        else:
            final = self.writer.close()
            if final is not None:
                self.log.info(f"finalised {final.name}")
        for side in (self.rejects, self.metrics.file):
            if not side.close():
                self.log.critical(f"shutdown: {side.path.name} could not be written completely")
                status = 1
        return status
