# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A running level's progress and the spec's early warnings, from the host's files.

Early warnings are shown while the run goes on and are not failures (spec section 4):
CPU 70-80 % sustained, memory 75-85 % sustained, processing latency trending up, buffer
depth trending up, occasional validation failures. Above the run-wide limit (80 % CPU, 85 %
memory) a warning says so, and above the fail signals (90 %, 95 %, latency over 500 ms) it
says that; the gate decides after the level. The bands are the run-wide limits of
``profile.RUN_LIMITS`` (or the user's ``stress_limits``). Standard library only.
"""

from __future__ import annotations

import json

from .measure import monitor_window, read_log, read_metrics
from .profile import RUN_LIMITS

TREND_REPORTS = 4  # a trend: this many metrics reports in a row, each higher than the last
# Hosts run a level together: a load that began later than this after the agreed start ran
# out of step with the others (the controller took longer than stress_start_delay_s to
# launch it on this host), and is said so.
LATE_START_S = 1.0


def late_start_warning(started_at: float | None, agreed_start: float) -> str | None:
    """The warning of a load that began after the agreed start, or None."""
    if not started_at or started_at - agreed_start <= LATE_START_S:
        return None
    return (
        "the load began %.1f s after the agreed start, out of step with the other hosts: "
        "launching it took longer than stress_start_delay_s; raise it" % (started_at - agreed_start)
    )


def read_json(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


# ... and the last at least this share and this much above the first: a p99 going 19.40 ->
# 19.41 -> 19.42 -> 19.43 ms is noise, not an early warning (the soak's trends judge growth).
MIN_RISE_SHARE = 0.2
MIN_RISE_LATENCY_MS = 1.0
MIN_RISE_DEPTH = 10.0


def _rising(values: list[float], least: float) -> bool:
    tail = values[-TREND_REPORTS:]
    return (
        len(tail) == TREND_REPORTS
        and all(b > a for a, b in zip(tail, tail[1:]))
        and tail[-1] - tail[0] >= max(least, MIN_RISE_SHARE * tail[0])
    )


def band_warning(name: str, value: float, warn: float, limit: float, fail: float) -> str | None:
    """The warning of a sustained figure in its band, worded as the band it is in."""
    if value > fail:
        return "FAIL SIGNAL: %s sustained %.1f %% above %g %%" % (name, value, fail)
    if value >= limit:
        return "%s sustained %.1f %% over the run-wide limit %g %% (fail signal above %g %%)" % (
            name,
            value,
            limit,
            fail,
        )
    if value >= warn:
        return "%s sustained %.1f %% (early warning %g-%g %%)" % (name, value, warn, limit)
    return None


def warnings_for(
    cpu: float | None,
    memory: float | None,
    reports: list[dict],
    base: dict | None,
    limits: dict | None = None,
) -> list[str]:
    limits = {**RUN_LIMITS, **(limits or {})}
    warnings = []
    for name, value, key in (("CPU", cpu, "cpu"), ("memory", memory, "memory")):
        if value is None:
            continue
        text = band_warning(
            name,
            value,
            limits["warn_%s_pct" % key],
            limits["max_%s_pct" % key],
            limits["fail_%s_pct" % key],
        )
        if text:
            warnings.append(text)
    p99s = [
        r["snapshot_processing"]["p99_ms"]
        for r in reports
        if (r.get("snapshot_processing") or {}).get("p99_ms") is not None
    ]
    if p99s and max(p99s) > limits["fail_latency_ms"]:
        warnings.append(
            "FAIL SIGNAL: processing latency %.1f ms over %g ms"
            % (max(p99s), limits["fail_latency_ms"])
        )
    elif _rising(p99s, MIN_RISE_LATENCY_MS):
        warnings.append(
            "processing latency trending up: p99 %s ms"
            % " -> ".join("%.1f" % v for v in p99s[-TREND_REPORTS:])
        )
    depths = [float(r["buffer_depth"]) for r in reports if r.get("buffer_depth") is not None]
    if _rising(depths, MIN_RISE_DEPTH):
        warnings.append(
            "buffer depth trending up: %s" % " -> ".join("%d" % v for v in depths[-TREND_REPORTS:])
        )
    if reports:
        rejected = int(reports[-1].get("rejected", 0)) - int((base or {}).get("rejected", 0))
        if rejected > 0:
            warnings.append("%d snapshot(s) failed validation during this level" % rejected)
    return warnings


def level_progress(
    progress_file: str,
    metrics_file: str,
    monitor_csv: str,
    *,
    since: float,
    window_s: float,
    now: float,
    limits: dict | None = None,
    interface: dict | None = None,
    log_file: str | None = None,
    run_id_prefix: str = "",
) -> dict:
    """What is known of a running level; a figure not measured yet is None, never 0.

    ``metrics_file`` is the Observer's own metrics file; empty (an Observer that writes
    none): the metric lines and dispatch lines of ``log_file``, read by the interface."""
    progress = read_json(progress_file)
    written = None
    if metrics_file:
        base, reports = read_metrics(metrics_file, since)
        if reports:
            written = int(reports[-1].get("processed", 0)) - int((base or {}).get("processed", 0))
    else:
        base = None
        log = read_log(log_file or "", interface, since, now, run_id_prefix.encode())
        reports = log["reports"]
        if interface and interface.get("log_dispatch"):
            written = len(log["dispatched"]) if (log["dispatched"] or reports) else None
    reports = reports[-TREND_REPORTS * 4 :]
    monitor = monitor_window(monitor_csv, max(since, now - window_s), now, window_s)
    cpu = monitor["cpu_pct"]["sustained"] if monitor["samples"] else None
    memory = monitor["memory_pct"]["sustained"] if monitor["samples"] else None
    warnings = warnings_for(cpu, memory, reports, base, limits)
    late = late_start_warning(progress.get("started_at"), since)
    if late:
        warnings.insert(0, late)
    return {
        "started": bool(progress),
        "elapsed_s": progress.get("elapsed_s"),
        "sent": progress.get("sent"),
        "planned": progress.get("planned"),
        "written": written,
        "p99_ms": (reports[-1].get("snapshot_processing") or {}).get("p99_ms") if reports else None,
        "cpu_pct": cpu,
        "memory_pct": memory,
        "warnings": warnings,
        "done": bool(progress.get("done")),
        # Everything sent, the level's last records awaited (the freshness follower).
        "draining": bool(progress.get("draining")),
        "failure": progress.get("failure"),
        # The load's whole result, once it is done (the generator writes it with done).
        "load": progress if progress.get("done") else None,
    }
