# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A running level's progress and the spec's early warnings, from the host's files.

Early warnings are shown while the run goes on and are not failures (spec section 4):
CPU 70-80 % sustained, memory 75-85 % sustained, processing latency trending up, buffer
depth trending up, occasional validation failures. Fail signals (over 90 % CPU or 95 %
memory sustained, latency over 500 ms) are shown too; the gate decides after the level.
Standard library only.
"""

from __future__ import annotations

import json

from .measure import monitor_window, read_metrics

CPU_WARN = (70.0, 80.0)
MEMORY_WARN = (75.0, 85.0)
CPU_FAIL, MEMORY_FAIL, LATENCY_FAIL_MS = 90.0, 95.0, 500.0
TREND_REPORTS = 4  # a trend: this many metrics reports in a row, each higher than the last


def read_json(path: str) -> dict:
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def _rising(values: list[float]) -> bool:
    tail = values[-TREND_REPORTS:]
    return len(tail) == TREND_REPORTS and all(b > a for a, b in zip(tail, tail[1:]))


def warnings_for(cpu: float, memory: float, reports: list[dict], base: dict | None) -> list[str]:
    warnings = []
    if cpu > CPU_FAIL:
        warnings.append("FAIL SIGNAL: CPU sustained %.1f %% over %g %%" % (cpu, CPU_FAIL))
    elif CPU_WARN[0] <= cpu:
        warnings.append("CPU sustained %.1f %% (early warning %g-%g %%)" % (cpu, *CPU_WARN))
    if memory > MEMORY_FAIL:
        warnings.append("FAIL SIGNAL: memory sustained %.1f %% over %g %%" % (memory, MEMORY_FAIL))
    elif MEMORY_WARN[0] <= memory:
        warnings.append(
            "memory sustained %.1f %% (early warning %g-%g %%)" % (memory, *MEMORY_WARN)
        )
    p99s = [r.get("snapshot_processing", {}).get("p99_ms", 0.0) for r in reports]
    if p99s and max(p99s) > LATENCY_FAIL_MS:
        warnings.append(
            "FAIL SIGNAL: processing latency %.1f ms over %g ms" % (max(p99s), LATENCY_FAIL_MS)
        )
    elif _rising(p99s):
        warnings.append(
            "processing latency trending up: p99 %s ms"
            % " -> ".join("%.1f" % v for v in p99s[-TREND_REPORTS:])
        )
    depths = [float(r.get("buffer_depth", 0)) for r in reports]
    if _rising(depths):
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
) -> dict:
    progress = read_json(progress_file)
    base, reports = read_metrics(metrics_file, since)
    reports = reports[-TREND_REPORTS * 4 :]
    written = 0
    if reports:
        written = int(reports[-1].get("processed", 0)) - int((base or {}).get("processed", 0))
    monitor = monitor_window(monitor_csv, max(since, now - window_s), now, window_s)
    cpu, memory = monitor["cpu_pct"]["sustained"], monitor["memory_pct"]["sustained"]
    return {
        "elapsed_s": progress.get("elapsed_s", 0.0),
        "sent": progress.get("sent", 0),
        "planned": progress.get("planned", 0),
        "written": written,
        "p99_ms": reports[-1].get("snapshot_processing", {}).get("p99_ms", 0.0) if reports else 0.0,
        "cpu_pct": cpu,
        "memory_pct": memory,
        "warnings": warnings_for(cpu, memory, reports, base),
        "done": bool(progress.get("done")),
        "failure": progress.get("failure"),
    }
