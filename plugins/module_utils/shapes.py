# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load shapes: when each snapshot of a level is due, and what was delivered against it.

A level's ``shape`` (default ``constant``) gives every snapshot an intended send time, in
seconds from the level's start:

  constant  ``n / rate``: the spec's levels.
  poisson   exponential gaps at the level's mean ``rate`` (seeded): random arrivals.
  burst     the level's ``rate`` as a base, plus a burst of ``size`` snapshots due evenly
            within ``window_ms``, every ``period_s`` from ``first_at_s`` (half a period by
            default).
  replay    a user's capture of snapshots (``capture``, JSON lines), at their recorded gaps
            over ``speed`` (``capture.py``).

What the generator delivered is measured against those times (``delivery``): its lateness
from each intended time, offered and delivered snapshots per 1 ms and 10 ms window (their
peaks and their index of dispersion, variance over mean: about 1 for random arrivals, far
above 1 for bursts, under 1 for a constant rate: 0 when each window holds the same count, 1
minus the mean when a window holds one snapshot or none) and, per burst, how long it took
until its last snapshot was written. Standard library only: this runs on the Observer hosts.
"""

from __future__ import annotations

import math
import random
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .capture import read_capture
from .stats import summary_ms

SHAPE_OPTIONS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "poisson": (),
    "burst": ("size", "window_ms", "period_s", "first_at_s"),
    "replay": ("capture", "speed"),
}
BURST_REQUIRED = ("size", "window_ms", "period_s")
# A level holds at most this many snapshots: their send times are kept in memory (16 bytes
# each, intended and actual).
MAX_SNAPSHOTS = 20_000_000
# The windows the delivered shape is counted over, in seconds.
WINDOWS_S = {"1ms": 0.001, "10ms": 0.010}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def shape_errors(shape: object, where: str) -> list[str]:
    """Every problem with one level's ``shape``, each naming the level and the key."""
    if shape is None:
        return []
    if not isinstance(shape, dict):
        return ["%s.shape must be a mapping with a type (%s), got %r"
                % (where, ", ".join(SHAPE_OPTIONS), shape)]  # fmt: skip
    kind = shape.get("type", "constant")
    if kind not in SHAPE_OPTIONS:
        return ["%s.shape.type must be one of %s, got %r"
                % (where, ", ".join(SHAPE_OPTIONS), kind)]  # fmt: skip
    known = ("type", *SHAPE_OPTIONS[kind])
    errors = [
        "%s.shape: unknown key %r for a %s shape (known: %s)" % (where, key, kind, ", ".join(known))
        for key in sorted(set(shape) - set(known))
    ]
    if kind == "replay":
        return errors + _replay_errors(shape, where)
    if kind != "burst":
        return errors
    errors += [
        "%s.shape: a burst needs %r" % (where, key) for key in BURST_REQUIRED if key not in shape
    ]
    size = shape.get("size")
    if "size" in shape and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        errors.append("%s.shape.size must be a whole number of snapshots, 1 or more, got %r"
                      % (where, size))  # fmt: skip
    for key, lowest in (("window_ms", 0.0), ("period_s", 0.0), ("first_at_s", None)):
        if key not in shape:
            continue
        value = _number(shape[key])
        if value is None or (value <= lowest if lowest is not None else value < 0):
            errors.append(
                "%s.shape.%s must be a number %s, got %r"
                % (where, key, "greater than 0" if lowest is not None else "0 or more", shape[key])
            )
    if not errors and shape["window_ms"] / 1000.0 > shape["period_s"]:
        errors.append(
            "%s.shape: a burst's window_ms (%g ms) must fit within its period_s (%g s)"
            % (where, shape["window_ms"], shape["period_s"])
        )
    return errors


def _replay_errors(shape: dict, where: str) -> list[str]:
    errors = []
    if not isinstance(shape.get("capture"), str) or not shape.get("capture"):
        errors.append("%s.shape: a replay needs 'capture', the path of a file of snapshots "
                      "(JSON lines)" % where)  # fmt: skip
    speed = _number(shape.get("speed", 1.0))
    if speed is None or speed <= 0:
        errors.append("%s.shape.speed must be a number greater than 0, got %r"
                      % (where, shape.get("speed")))  # fmt: skip
    return errors


class EvenTimes(Sequence[float]):
    """``n x interval`` for n below ``count``, computed when asked: a constant level holds no
    list of its send times (a day at a million a second would need gigabytes)."""

    def __init__(self, interval: float, count: int) -> None:
        self.interval, self.count = interval, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [n * self.interval for n in range(*index.indices(self.count))]
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        return index * self.interval

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, Sequence) else NotImplemented

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Schedule:
    """Intended send times (seconds from the level's start, in order) and, per burst, the
    indexes of its snapshots and its due time."""

    offsets: Sequence[float] = field(default_factory=lambda: array("d"))
    bursts: list[tuple[float, list[int]]] = field(default_factory=list)
    burst_window_s: float = 0.0
    # A replay's lines, as captured (capture.py), in the order they are sent.
    captured: list[bytes] | None = None

    @property
    def total(self) -> int:
        return len(self.offsets)

    @property
    def burst_of(self) -> dict[int, int]:
        """Snapshot index -> its burst's number, for the snapshots of bursts."""
        if not hasattr(self, "_burst_of"):
            self._burst_of = {
                index: number for number, (_unused, members) in enumerate(self.bursts)
                for index in members
            }  # fmt: skip
        return self._burst_of


def planned_total(shape: dict | None, rate: float, duration_s: float) -> int:
    """How many snapshots a shape plans, without drawing them (a poisson level's count is its
    mean: the drawn count varies around it)."""
    shape = shape or {}
    total = round(rate * duration_s)  # a replay's: its count (the plan sets both from it)
    if shape.get("type") == "burst":
        total += shape["size"] * _burst_count(shape, duration_s)
    return total


def _burst_count(shape: dict, duration_s: float) -> int:
    """How many bursts fall within the level (counted, not listed: a tiny period over a long
    level is refused by the count, not after a list of millions)."""
    period = float(shape["period_s"])
    first = float(shape.get("first_at_s", period / 2.0))
    return max(0, math.ceil((duration_s - first) / period)) if first < duration_s else 0


def _burst_starts(shape: dict, duration_s: float) -> list[float]:
    period = float(shape["period_s"])
    first = float(shape.get("first_at_s", period / 2.0))
    return [first + k * period for k in range(_burst_count(shape, duration_s))]


def schedule(shape: dict | None, rate: float, duration_s: float, seed: str) -> Schedule:
    """Every snapshot's intended send time for one level."""
    shape = shape or {}
    kind = shape.get("type", "constant")
    if kind != "constant" and planned_total(shape, rate, duration_s) > MAX_SNAPSHOTS:
        raise ValueError(
            "the level plans more than %d snapshots: shorten it or lower its rate" % MAX_SNAPSHOTS
        )
    if kind == "replay":
        offsets, lines = read_capture(shape["capture"], float(shape.get("speed", 1.0)))
        return Schedule(array("d", offsets), captured=lines)
    if kind == "poisson":
        draw = random.Random("%s:poisson" % seed)
        offsets = array("d")
        moment = draw.expovariate(rate)
        while moment < duration_s:
            offsets.append(moment)
            moment += draw.expovariate(rate)
        return Schedule(offsets)
    # n times the interval, as the constant schedule has always been computed (the snapshots'
    # timestamps of a seeded run stay the same to the last bit).
    interval = 1.0 / rate
    if kind != "burst":
        return Schedule(EvenTimes(interval, round(rate * duration_s)))
    base = [n * interval for n in range(round(rate * duration_s))]
    # Base snapshots and burst snapshots in one timeline, in the order they are due (a burst
    # member is due after a base snapshot due at the same moment).
    size, window = shape["size"], shape["window_ms"] / 1000.0
    timeline = [(moment, -1) for moment in base]
    starts = _burst_starts(shape, duration_s)
    for number, start in enumerate(starts):
        timeline += [(start + window * i / size, number) for i in range(size)]
    timeline.sort()
    members: list[list[int]] = [[] for _unused in starts]
    for index, (_unused, number) in enumerate(timeline):
        if number >= 0:
            members[number].append(index)
    return Schedule(
        array("d", (moment for moment, _unused in timeline)), list(zip(starts, members)), window
    )


def window_of(moment: float, width_s: float) -> int:
    """The window of ``width_s`` (from the level's start) a moment falls in. A snapshot due on
    a window's boundary belongs to that window, whatever the last bit of its floating-point
    time (0.07 / 0.01 is 7.000000000000001, 0.29 / 0.01 28.999999999999996)."""
    return math.floor(moment / width_s + 1e-6)


def _per_window(offsets: Sequence[float], width_s: float, span_s: float) -> dict:
    """Peak count in any window of ``width_s`` (windows from the start) and the index of
    dispersion of the counts over every window of the span (empty windows included)."""
    counts = Counter(window_of(moment, width_s) for moment in offsets)
    windows = max(1, math.ceil(span_s / width_s))
    total = sum(counts.values())
    mean = total / windows
    squares = sum(count * count for count in counts.values())
    variance = max(0.0, squares / windows - mean * mean)
    return {
        "peak": max(counts.values(), default=0),
        "dispersion": round(variance / mean, 3) if mean else 0.0,
    }


def delivery(
    plan: Schedule, sent_offsets: Sequence[float], span_s: float, blocked: dict[int, float]
) -> dict:
    """What the generator delivered against what it meant to (``plan``): the offered and
    delivered shapes per window and, per burst, the milliseconds until its last snapshot was
    written (``blocked``: seconds each burst waited on a full pipe, the Observer's share)."""
    sent = len(sent_offsets)
    offered = plan.offsets[:sent]
    figures: dict = {
        "offered": {name: _per_window(offered, width, span_s) for name, width in WINDOWS_S.items()},
        "delivered": {
            name: _per_window(sent_offsets, width, span_s) for name, width in WINDOWS_S.items()
        },
    }
    bursts = []
    for number, (start, members) in enumerate(plan.bursts):
        done = [i for i in members if i < sent]
        if not done:
            continue
        bursts.append(
            {
                "burst": number + 1,
                "due_at_s": round(start, 6),
                "size": len(members),
                "sent": len(done),
                "delivered_ms": round((max(sent_offsets[i] for i in done) - start) * 1000.0, 3),
                "blocked_ms": round(blocked.get(number, 0.0) * 1000.0, 3),
            }
        )
    figures["bursts"] = bursts
    figures["burst_window_ms"] = round(plan.burst_window_s * 1000.0, 3)
    figures["burst_delivered_ms"] = (
        summary_ms([b["delivered_ms"] for b in bursts]) if bursts else {}
    )
    return figures


SEND_TIMES_HEADER = "sequence\tintended_s\tsent_s"


def write_send_times(path: str, intended: Sequence[float], sent: Sequence[float]) -> None:
    """The ledger's send times (``<ledger>.times``): one line per snapshot sent, its sequence,
    intended and actual send time in seconds from the level's start, to the microsecond."""
    with open(path, "w") as handle:
        handle.write(SEND_TIMES_HEADER + "\n")
        for sequence, moment in enumerate(sent):
            handle.write("%d\t%.6f\t%.6f\n" % (sequence, intended[sequence], moment))


def read_send_times(path: str) -> tuple[array, array] | None:
    """A ledger's send times file: (intended, sent) seconds from the level's start, by
    sequence; None without one (a level sent before they were kept) or with one that is not
    that file."""
    intended, sent = array("d"), array("d")
    try:
        with open(path) as handle:
            if handle.readline().rstrip("\n") != SEND_TIMES_HEADER:
                return None
            for line in handle:
                _sequence, due, moment = line.split("\t")
                intended.append(float(due))
                sent.append(float(moment))
    except (OSError, ValueError):
        return None
    return intended, sent
