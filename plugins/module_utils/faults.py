# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults during a level (``stress_faults``): what each is, how a plan's faults are checked,
the moments the sender must outlive the Observer, and what each fault cost, counted from the
level's own files. Standard library only: the accounting runs on the Observer hosts.

A fault is placed within a level, ``at_s`` seconds after its start, on some hosts or all:

  kill     SIGKILL the Observer; its service manager restarts it (systemd or the supervisor)
  pause    SIGSTOP for ``duration_s``, then SIGCONT
  cpu      the Observer's CPU capped at ``quota_pct`` % of a core for ``duration_s`` (systemd's
           runtime ``CPUQuota=``)
  io       its writes capped at ``write_bps`` bytes/s for ``duration_s`` (systemd's runtime
           ``IOWriteBandwidthMax=`` on the output folder's device, cgroup v2's io controller)
  restart  a graceful restart, as a deploy makes one: stop (SIGTERM, drained), ``duration_s``
           down, start
  disk_full the filesystem of its output folder full for ``duration_s`` (a filler file), only
           where that filesystem is named expendable and is not the host's root filesystem

Each fault's window runs from the first snapshot in flight when it came to the moment the
level recovered: throughput and p99 visibility back within the band before the fault for
``RECOVERY_SECONDS`` seconds in a row. The snapshots of a window are judged by the fault's
promise (``max_lost``, no duplicate or change, recovery within ``max_recovery_s``); the
level's own figures are those of the snapshots outside every window.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

from .stats import percentile

FAULT_TYPES = ("kill", "pause", "cpu", "io", "restart", "disk_full")
# Faults that last a while and are then reverted (their duration_s must be over 0).
LASTING = ("pause", "cpu", "io", "disk_full")
# Faults after which the Observer runs as a new process: the sender waits for it.
RESTARTING = ("kill", "restart")
FAULT_KEYS = ("type", "level", "at_s", "duration_s", "quota_pct", "write_bps", "hosts", "max_lost",
              "max_recovery_s", "back_within_s")  # fmt: skip
# The defaults of a fault's own limits (README, "Faults during load"; a test ties them).
FAULT_DEFAULTS: dict[str, float] = {
    # Recovered within this many seconds of the fault's end (its revert, or the Observer back).
    "max_recovery_s": 30.0,
    # A killed or restarted Observer must read its input again within this many seconds.
    "back_within_s": 60.0,
}
# A fault's window starts with the snapshots due within this many times the largest visibility
# before it: those the Observer may still have held when it came.
IN_FLIGHT_FACTOR = 2.0
# Two faults of a level on a host: the second comes at least this long after the first ended,
# so that the first's recovery can be seen (RECOVERY_SECONDS, and a kill's restart).
MIN_GAP_S = 5.0
# Recovered: this many seconds in a row back within the band before the fault.
RECOVERY_SECONDS = 3
# The band before the fault: over these seconds before it (at most), each second's visible
# records at least THROUGHPUT_RATIO of the snapshots due in it, and their p99 visibility at
# most LATENCY_FACTOR times the p99 before the fault, or LATENCY_SLACK_MS over it.
BAND_SECONDS = 30.0
THROUGHPUT_RATIO = 0.9
LATENCY_FACTOR = 2.0
LATENCY_SLACK_MS = 100.0


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _fault_errors(fault: dict, where: str, level: dict | None, hosts: Sequence[str]) -> list[str]:
    errors = ["%s: unknown key %r (known: %s)" % (where, key, ", ".join(FAULT_KEYS))
              for key in sorted(set(fault) - set(FAULT_KEYS))]  # fmt: skip
    kind = fault.get("type")
    if kind not in FAULT_TYPES:
        errors.append("%s: type must be one of %s, got %r" % (where, ", ".join(FAULT_TYPES), kind))
    if level is None:
        errors.append("%s: level must be the number of one of the run's levels, got %r"
                      % (where, fault.get("level")))  # fmt: skip
        return errors
    at_s, duration_s = _number(fault.get("at_s")), _number(fault.get("duration_s", 0))
    if at_s is None or at_s < 0:
        errors.append(
            "%s: at_s must be a number of seconds >= 0, got %r" % (where, fault.get("at_s"))
        )
    if duration_s is None or duration_s < 0 or (kind in LASTING and duration_s == 0):
        errors.append("%s: duration_s must be a number of seconds %s 0, got %r"
                      % (where, ">" if kind in LASTING else ">=", fault.get("duration_s")))  # fmt: skip
    if kind == "kill" and duration_s:
        errors.append(
            "%s: a kill has no duration (its service manager restarts the Observer)" % where
        )
    if at_s is not None and duration_s is not None and at_s + duration_s >= level["duration_s"]:
        errors.append("%s: at_s + duration_s (%g s) must end before the level does (%g s), so "
                      "that its recovery is measured" % (where, at_s + duration_s, level["duration_s"]))  # fmt: skip
    quota = _number(fault.get("quota_pct"))
    if kind == "cpu" and (quota is None or not 0 < quota < 100 * 1024):
        errors.append("%s: quota_pct must be a percentage of one core over 0, got %r"
                      % (where, fault.get("quota_pct")))  # fmt: skip
    elif kind != "cpu" and "quota_pct" in fault:
        errors.append("%s: quota_pct is for a cpu fault only" % where)
    bps = fault.get("write_bps")
    if kind == "io" and (not isinstance(bps, int) or isinstance(bps, bool) or bps < 1):
        errors.append("%s: write_bps must be a whole number of bytes per second over 0, got %r"
                      % (where, bps))  # fmt: skip
    elif kind != "io" and "write_bps" in fault:
        errors.append("%s: write_bps is for an io fault only" % where)
    return errors + _limit_errors(fault, where, hosts)


def _limit_errors(fault: dict, where: str, hosts: Sequence[str]) -> list[str]:
    """The problems with a fault's hosts and limits."""
    errors = []
    chosen = fault.get("hosts")
    if chosen is not None:
        if not isinstance(chosen, list) or not all(isinstance(h, str) for h in chosen):
            errors.append("%s: hosts must be a list of inventory hostnames" % where)
        else:
            errors += [
                "%s: host %r is not in the play" % (where, h) for h in chosen if h not in hosts
            ]
    lost = fault.get("max_lost", 0)
    if not isinstance(lost, int) or isinstance(lost, bool) or lost < 0:
        errors.append("%s: max_lost must be a whole number >= 0, got %r" % (where, lost))
    for key, default in FAULT_DEFAULTS.items():
        value = _number(fault.get(key, default))
        if value is None or value <= 0:
            errors.append(
                "%s: %s must be a number of seconds > 0, got %r" % (where, key, fault[key])
            )
    return errors


def plan_faults(
    faults: object, levels: list[dict], hosts: Sequence[str]
) -> tuple[list[dict], list[str]]:
    """``stress_faults`` checked against the run's levels and hosts, each resolved (defaults
    filled, named, numbered): (faults, every problem)."""
    if faults in (None, ""):
        return [], []
    if not isinstance(faults, list):
        return [], ["stress_faults must be a list of faults, got %r" % type(faults).__name__]
    planned, errors = [], []
    for number, fault in enumerate(faults, start=1):
        where = "stress_faults[%d]" % number
        if not isinstance(fault, dict):
            errors.append("%s must be a mapping, got %r" % (where, fault))
            continue
        index = fault.get("level")
        level = levels[index - 1] if isinstance(index, int) and 1 <= index <= len(levels) else None
        problems = _fault_errors(fault, where, level, hosts)
        errors += problems
        if problems:
            continue
        resolved = {key: float(fault.get(key, default)) for key, default in FAULT_DEFAULTS.items()}
        resolved.update(
            fault=number, type=fault["type"], level=index, at_s=float(fault["at_s"]),
            duration_s=float(fault.get("duration_s", 0)), quota_pct=fault.get("quota_pct"),
            write_bps=fault.get("write_bps"),
            hosts=list(fault.get("hosts") or hosts), max_lost=fault.get("max_lost"),
        )  # fmt: skip
        resolved["name"] = fault_name(resolved)
        planned.append(resolved)
    for first, second in _overlapping(planned):
        errors.append("%s and %s overlap on a host: a fault comes at least %g s after the one "
                      "before it ended" % (first["name"], second["name"], MIN_GAP_S))  # fmt: skip
    return planned, errors


def _overlapping(faults: list[dict]) -> list[tuple[dict, dict]]:
    pairs = []
    for i, first in enumerate(faults):
        for second in faults[i + 1 :]:
            shared = (
                first["hosts"] is None
                or second["hosts"] is None
                or set(first["hosts"]) & set(second["hosts"])
            )
            if first["level"] != second["level"] or not shared:
                continue
            a, b = sorted((first, second), key=lambda f: f["at_s"])
            if b["at_s"] < a["at_s"] + a["duration_s"] + MIN_GAP_S:
                pairs.append((first, second))
    return pairs


def fault_name(fault: dict) -> str:
    """How a fault is named everywhere: ``fault 2 (pause 10 s at 60 s of level 4)``."""
    what = fault["type"]
    if fault["type"] == "cpu":
        what += " %g %%" % fault["quota_pct"]
    if fault["type"] == "io":
        what += " %d B/s" % fault["write_bps"]
    if fault["duration_s"]:
        what += " %g s" % fault["duration_s"]
    return "fault %d (%s at %g s of level %d)" % (
        fault["fault"],
        what,
        fault["at_s"],
        fault["level"],
    )


def for_host(faults: Sequence[dict], host: str) -> list[dict]:
    """The faults of a level applied on ``host`` (the plan names each fault's hosts)."""
    return [f for f in faults if host in f["hosts"]]


def outages(faults: Sequence[dict]) -> list[list[float]]:
    """When, from the level's start, the Observer may be gone and the sender waits for it to
    be back rather than end the level: from a second before each kill or restart to its
    ``back_within_s`` after its down time."""
    return [[max(f["at_s"] - 1.0, 0.0), f["at_s"] + f["duration_s"] + f["back_within_s"]]
            for f in faults if f["type"] in RESTARTING]  # fmt: skip


def _p99(values: list[float]) -> float:
    return percentile(sorted(values), 0.99)


def _band(
    intended: Sequence[float], visible: dict[int, float], start: float, since: float
) -> tuple[float, float] | None:
    """(p99 visibility in ms, the largest visibility in ms) of the snapshots due in the
    BAND_SECONDS before ``start`` (none before ``since``: an earlier fault's window) and seen
    before it (those still in flight then are the fault's); None when none was seen there."""
    delays = [(visible[i] - due) * 1000.0 for i, due in enumerate(intended)
              if max(start - BAND_SECONDS, since) <= due and i in visible and visible[i] < start]  # fmt: skip
    return (_p99(delays), max(delays)) if delays else None


def _recovered_at(
    intended: Sequence[float], visible: dict[int, float], ended: float, end: float, band_ms: float
) -> float | None:
    """The start of the first RECOVERY_SECONDS seconds in a row from ``ended`` in which the
    visible records keep up with the snapshots due and their p99 visibility is in the band;
    None when the level ended first. A snapshot never seen is outside the band."""
    first = math.ceil(ended - 1e-6)
    seconds = max(math.ceil(end) - first, 0)
    due = [0] * seconds
    seen = [0] * seconds
    delays: list[list[float]] = [[] for _unused in range(seconds)]
    for i, moment in enumerate(intended):
        second = math.floor(moment) - first
        if 0 <= second < seconds:
            due[second] += 1
            delays[second].append((visible[i] - moment) * 1000.0 if i in visible else math.inf)
        if i in visible and 0 <= math.floor(visible[i]) - first < seconds:
            seen[math.floor(visible[i]) - first] += 1
    run = 0
    for second in range(seconds):
        in_band = not due[second] or (seen[second] >= THROUGHPUT_RATIO * due[second]
                                      and _p99(delays[second]) <= band_ms)  # fmt: skip
        run = run + 1 if in_band else 0
        if run == RECOVERY_SECONDS:
            return float(first + second - RECOVERY_SECONDS + 1)
    return None


def account(
    fault: dict,
    timeline: dict,
    *,
    intended: Sequence[float],
    visible: dict[int, float] | None,
    copies: dict[int, int],
    modified: set[int],
    sent: int,
    level_end: float,
    late_ms: float,
    since: float = 0.0,
) -> dict:
    """What ``fault`` cost. ``timeline``: when it was applied and ended, and for a kill or a
    restart when the Observer was back, in seconds from the level's start (None: it was not).
    ``intended``: each snapshot's intended send time; ``visible``: when each record became
    visible (None: not followed); ``copies``: how many records each sequence has;
    ``modified``: the sequences whose record changed the snapshot; ``sent``: how many were sent.
    The window's snapshots are those due from the first that may still have been in flight
    when it came (due within IN_FLIGHT_FACTOR times the largest visibility before it) to its
    recovery; its band is taken from the
    snapshots due from ``since`` (the end of the window of the fault before it)."""
    applied, ended = timeline.get("applied_s"), timeline.get("ended_s")
    figures: dict = {"applied_s": applied, "ended_s": ended, "back_s": None, "recovery_s": None,
                     "drain_s": None, "band_p99_ms": None, "window_s": None}  # fmt: skip
    if applied is None:
        return figures
    if fault["type"] in RESTARTING and timeline.get("back_at_s") is not None:
        figures["back_s"] = round(timeline["back_at_s"] - applied, 3)
    band = _band(intended, visible, applied, since) if visible else None
    start, recovered = applied, None
    if band is not None:
        band_ms = max(band[0] * LATENCY_FACTOR, band[0] + LATENCY_SLACK_MS)
        figures["band_p99_ms"] = round(band_ms, 3)
        # In flight when it came: due within twice the largest visibility before it (a record
        # held a whole flush interval, and one due just before that flush).
        start = applied - IN_FLIGHT_FACTOR * band[1] / 1000.0
        if ended is not None:
            recovered = _recovered_at(intended, visible, ended, level_end, band_ms)
    if recovered is not None and ended is not None:
        figures["recovery_s"] = round(recovered - ended, 3)
    # Rounded as reported, so that the window said is the one counted.
    start = round(start, 3)
    close = round(recovered if recovered is not None else level_end, 3)
    members = [i for i in range(min(sent, len(intended))) if start <= intended[i] < close]
    figures["window_s"] = [start, close]
    figures["sent"] = len(members)
    figures["lost"] = sum(1 for i in members if not copies.get(i))
    figures["duplicated"] = sum(copies.get(i, 1) - 1 for i in members if copies.get(i, 0) > 1)
    figures["modified"] = sum(1 for i in members if i in modified)
    if visible is not None and ended is not None:
        before = [
            visible[i]
            for i in range(min(sent, len(intended)))
            if intended[i] < ended and i in visible
        ]
        figures["drain_s"] = round(max(max(before) - ended, 0.0), 3) if before else None
        figures["late"] = sum(1 for i in members if i in visible
                              and (visible[i] - intended[i]) * 1000.0 > late_ms)  # fmt: skip
    else:
        figures["late"] = None
    figures["members"] = members
    return figures


FAULT_WINDOWS_SUFFIX = ".faults"


def write_fault_windows(ledger: str, sequences: set[int]) -> None:
    """Beside a level's ledger, the sequences of its faults' windows, one per line: their
    losses are the faults', judged there, not the stop's (``read_fault_windows``)."""
    temporary = "%s%s.%d.tmp" % (ledger, FAULT_WINDOWS_SUFFIX, os.getpid())
    with open(temporary, "w") as handle:
        handle.writelines("%d\n" % sequence for sequence in sorted(sequences))
    os.replace(temporary, ledger + FAULT_WINDOWS_SUFFIX)


def read_fault_windows(ledger: str) -> set[int]:
    """The sequences ``write_fault_windows`` kept for a ledger (none without the file)."""
    try:
        with open(ledger + FAULT_WINDOWS_SUFFIX) as handle:
            return {int(line) for line in handle if line.strip()}
    except FileNotFoundError:
        return set()
