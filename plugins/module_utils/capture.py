# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A replayed capture: a user's own ObservationSnapshots (JSON lines), sent at their recorded
gaps times a speed factor.

A snapshot's recorded time is its ``meta.timestamp``. The capture is checked against the
snapshot schema on the controller before anything starts (``plugin_utils/plan.py``); here,
on the host, it is read in order of those times (the order of the file for equal times) and
each line is sent as captured, but for its ``meta.run_id``: every run_id of a level is
``<level prefix><sequence>``, which the reconciliation needs (nothing lost, nothing
duplicated); the line keeps every other byte. Standard library only.
"""

from __future__ import annotations

import calendar
import json
import re

# ISO-8601 as the snapshot schema allows it: UTC offset or Z, up to 9 decimals.
_STAMP = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|([+-])(\d\d):(\d\d))$"
)
# The run_id pair of a line: the only "run_id" key of a snapshot is meta's (the schema allows
# no other field).
_RUN_ID = re.compile(rb'"run_id"\s*:\s*"(?:[^"\\]|\\.)*"')


class CaptureError(ValueError):
    """The capture cannot be replayed; the message names the file and the line."""


def epoch_of(stamp: str) -> float:
    """Epoch seconds of an ISO-8601 timestamp with an offset (ValueError otherwise)."""
    match = _STAMP.match(stamp)
    if not match:
        raise ValueError("not an ISO-8601 time with a zone: %r" % stamp)
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = float("0." + match.group(7)) if match.group(7) else 0.0
    seconds = calendar.timegm((year, month, day, hour, minute, min(second, 59), 0, 0, 0))
    if match.group(9):
        sign = 1 if match.group(9) == "+" else -1
        seconds -= sign * (int(match.group(10)) * 3600 + int(match.group(11)) * 60)
    return seconds + (second - min(second, 59)) + fraction


def recorded_time(line: bytes, where: str) -> float:
    """A captured line's recorded time (its meta.timestamp)."""
    try:
        return epoch_of(json.loads(line)["meta"]["timestamp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptureError("%s: not a snapshot with a meta.timestamp (%s)" % (where, exc)) from None


def read_capture(path: str, speed: float) -> tuple[list[float], list[bytes]]:
    """The capture's send offsets (seconds from its first snapshot, over ``speed``) and its
    lines (without their newlines), in the order of their recorded times."""
    rows = []
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.rstrip(b"\r\n")
                if not line.strip():
                    raise CaptureError("%s line %d: an empty line" % (path, number))
                rows.append((recorded_time(line, "%s line %d" % (path, number)), number, line))
    except OSError as exc:
        raise CaptureError("cannot read the capture %s: %s" % (path, exc.strerror)) from None
    if not rows:
        raise CaptureError("the capture %s holds no snapshot" % path)
    rows.sort()
    first = rows[0][0]
    return [(moment - first) / speed for moment, _unused, _unused in rows], [
        line for _unused, _unused, line in rows
    ]


def with_run_id(line: bytes, run_id: str) -> bytes:
    """The captured line with ``run_id`` as its meta.run_id, every other byte as captured."""
    return _RUN_ID.sub(lambda _match: b'"run_id":"%s"' % run_id.encode(), line, count=1)


def replay_timing(count: int, span_s: float) -> tuple[float, float]:
    """A replay level's (rate, duration_s): its snapshots over its span, the span closed one
    mean gap after the last snapshot (so that ``rate x duration_s`` is the count)."""
    if count < 2 or span_s <= 0:
        return float(count), 1.0
    duration = span_s * count / (count - 1)
    return count / duration, duration


class ReplayGenerator:
    """Yields the captured lines in order, each with the level's next run_id (the snapshot
    generator's interface: ``line(epoch_s)``; the capture keeps its own timestamps)."""

    def __init__(self, lines: list[bytes], prefix: str) -> None:
        self._lines = lines
        self._prefix = prefix
        self._next = 0

    def line(self, epoch_s: float) -> bytes:
        line = with_run_id(self._lines[self._next], "%s%d" % (self._prefix, self._next))
        self._next += 1
        return line + b"\n"
