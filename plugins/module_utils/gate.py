# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gate: every threshold and run-wide criterion of the spec, judged in one place.

Level thresholds come from the profile (``profile.py``) or the user's ``stress_levels``; the
run-wide limits below are the spec's section 4. A breach carries its measured value and its
limit, and its message names both. Standard library only.
"""

from __future__ import annotations

# Spec section 4: PASS needs all levels under these; a FAIL signal is any of the hard limits.
RUN_MAX_CPU_PCT = 80.0
RUN_MAX_MEMORY_PCT = 85.0
MAX_ERROR_RATE_PCT = 0.1  # PASS needs an error rate under 0.1 % across all levels
FAIL_LATENCY_MS = 500.0  # fail signal: processing latency over 500 ms
COLLAPSE_THROUGHPUT_RATIO = 0.5  # a level delivering under half its offered rate collapsed
COLLAPSE_LATENCY_GROWTH = 10.0  # p99 growing more than tenfold from one level to the next...
COLLAPSE_LATENCY_FLOOR_MS = 50.0  # ...and ending above this, is a collapse, not a degradation
SCALING_MIN_RATIO = 0.9  # throughput must follow the offered load within 10 %
RECOVERY_CPU_POINTS = 10.0  # after the run, sustained CPU back within 10 points of baseline
RECOVERY_MEMORY_POINTS = 5.0  # and memory within 5 points


def _breach(criterion: str, measured, limit, message: str) -> dict:
    return {"criterion": criterion, "measured": measured, "limit": limit, "message": message}


def judge_level(metrics: dict, thresholds: dict) -> list[dict]:
    """Every breach of one level, in a stable order."""
    breaches = []
    if metrics.get("failure"):
        breaches.append(
            _breach("process_failure", metrics["failure"], "Observer alive", metrics["failure"])
        )
    throughput = metrics["throughput"]
    if throughput < thresholds["min_throughput"]:
        breaches.append(
            _breach(
                "min_throughput",
                throughput,
                thresholds["min_throughput"],
                "throughput %.3f/s below the minimum %g/s"
                % (throughput, thresholds["min_throughput"]),
            )
        )
    p99 = metrics["latency_ms"]["p99"]
    if p99 >= thresholds["max_latency_ms"]:
        breaches.append(
            _breach(
                "max_latency_ms",
                p99,
                thresholds["max_latency_ms"],
                "p99 processing latency %.3f ms not under %g ms"
                % (p99, thresholds["max_latency_ms"]),
            )
        )
    for key, name, limit_key in (
        ("cpu_pct", "CPU", "max_cpu_pct"),
        ("memory_pct", "memory", "max_memory_pct"),
    ):
        value = metrics[key]["sustained"]
        if value >= thresholds[limit_key]:
            breaches.append(
                _breach(
                    limit_key,
                    value,
                    thresholds[limit_key],
                    "sustained %s %.1f %% not under %g %%" % (name, value, thresholds[limit_key]),
                )
            )
    for key, what in (("lost", "lost"), ("duplicated", "duplicated"), ("modified", "modified")):
        if metrics[key] > 0:
            breaches.append(
                _breach(
                    "integrity_" + key,
                    metrics[key],
                    0,
                    "%d snapshot(s) %s (of %d sent)" % (metrics[key], what, metrics["sent"]),
                )
            )
    if metrics.get("extra_fields"):
        breaches.append(
            _breach(
                "contract",
                metrics["extra_fields"],
                [],
                "records carry fields beyond the PatternRecord metadata: %s"
                % ", ".join(metrics["extra_fields"]),
            )
        )
    rate = metrics["error_rate_pct"]
    if rate >= MAX_ERROR_RATE_PCT:
        breaches.append(
            _breach(
                "error_rate",
                rate,
                MAX_ERROR_RATE_PCT,
                "error rate %.3f %% not under %g %%" % (rate, MAX_ERROR_RATE_PCT),
            )
        )
    return breaches


def _criterion(name: str, ok: bool, evidence: str, measured=None, limit=None) -> dict:
    return {
        "name": name,
        "verdict": "PASS" if ok else "FAIL",
        "evidence": evidence,
        "measured": measured,
        "limit": limit,
    }


def _levels_text(levels: list[dict], render) -> str:
    return "; ".join("%g/s: %s" % (level["rate"], render(level)) for level in levels)


def judge_run(
    levels: list[dict],
    planned_levels: int,
    *,
    baseline: dict | None,
    recovery: dict | None,
    shutdown: dict | None,
    start_pid: int | None,
    end_pid: int | None,
) -> list[dict]:
    """The spec's run-wide criteria, each with its evidence."""
    criteria = []
    crashed = [lv for lv in levels if lv.get("failure")]
    ran_all = len(levels) == planned_levels
    same_pid = start_pid is not None and start_pid == end_pid
    criteria.append(
        _criterion(
            "stability",
            not crashed and ran_all and same_pid,
            "levels run %d/%d; Observer pid %s at start, %s at end%s"
            % (
                len(levels),
                planned_levels,
                start_pid,
                end_pid,
                "; " + "; ".join(lv["failure"] for lv in crashed) if crashed else "",
            ),
        )
    )
    ratios = [lv["throughput"] / lv["rate"] for lv in levels]
    rising = all(
        b["throughput"] >= a["throughput"]
        for a, b in zip(levels, levels[1:])
        if b["rate"] > a["rate"]
    )
    criteria.append(
        _criterion(
            "scaling",
            bool(levels) and min(ratios) >= SCALING_MIN_RATIO and rising,
            _levels_text(
                levels,
                lambda lv: (
                    "%.3f/s (%.0f %%)" % (lv["throughput"], 100 * lv["throughput"] / lv["rate"])
                ),
            ),
            round(min(ratios), 4) if ratios else None,
            SCALING_MIN_RATIO,
        )
    )
    peak_cpu = max((lv["cpu_pct"]["sustained"] for lv in levels), default=0.0)
    peak_mem = max((lv["memory_pct"]["sustained"] for lv in levels), default=0.0)
    criteria.append(
        _criterion(
            "resources",
            peak_cpu < RUN_MAX_CPU_PCT and peak_mem < RUN_MAX_MEMORY_PCT,
            "highest sustained CPU %.1f %% (limit %g), memory %.1f %% (limit %g)"
            % (peak_cpu, RUN_MAX_CPU_PCT, peak_mem, RUN_MAX_MEMORY_PCT),
            {"cpu_pct": peak_cpu, "memory_pct": peak_mem},
            {"cpu_pct": RUN_MAX_CPU_PCT, "memory_pct": RUN_MAX_MEMORY_PCT},
        )
    )
    sent = sum(lv["sent"] for lv in levels)
    errors = sum(lv["errors"] for lv in levels)
    error_rate = 100.0 * errors / sent if sent else 0.0
    criteria.append(
        _criterion(
            "error_rate",
            error_rate < MAX_ERROR_RATE_PCT,
            "%d error(s) for %d snapshots: %.4f %%" % (errors, sent, error_rate),
            round(error_rate, 4),
            MAX_ERROR_RATE_PCT,
        )
    )
    lost = sum(lv["lost"] for lv in levels)
    duplicated = sum(lv["duplicated"] for lv in levels)
    modified = sum(lv["modified"] for lv in levels)
    written = sum(lv["written"] for lv in levels)
    criteria.append(
        _criterion(
            "integrity",
            sent > 0 and lost == duplicated == modified == 0,
            "%d sent, %d written once, %d lost, %d duplicated, %d modified"
            % (sent, written, lost, duplicated, modified),
        )
    )
    collapses = []
    for previous, level in zip([None, *levels], levels):
        p99 = level["latency_ms"]["p99"]
        if level["latency_ms"]["max"] > FAIL_LATENCY_MS:
            collapses.append(
                "%g/s: max latency %.1f ms over %g ms"
                % (level["rate"], level["latency_ms"]["max"], FAIL_LATENCY_MS)
            )
        if level["throughput"] < COLLAPSE_THROUGHPUT_RATIO * level["rate"]:
            collapses.append(
                "%g/s: throughput %.3f/s under half the offered rate"
                % (level["rate"], level["throughput"])
            )
        if previous is not None:
            before = max(previous["latency_ms"]["p99"], 1e-3)
            if p99 > COLLAPSE_LATENCY_FLOOR_MS and p99 / before > COLLAPSE_LATENCY_GROWTH:
                collapses.append(
                    "%g/s: p99 jumped %.0fx to %.1f ms" % (level["rate"], p99 / before, p99)
                )
    criteria.append(
        _criterion(
            "graceful_degradation",
            not collapses,
            "; ".join(collapses)
            or _levels_text(levels, lambda lv: "p99 %.1f ms" % lv["latency_ms"]["p99"]),
        )
    )
    if baseline and recovery:
        cpu_gap = recovery["cpu_pct"]["sustained"] - baseline["cpu_pct"]["sustained"]
        mem_gap = recovery["memory_pct"]["sustained"] - baseline["memory_pct"]["sustained"]
        criteria.append(
            _criterion(
                "recovery",
                cpu_gap <= RECOVERY_CPU_POINTS and mem_gap <= RECOVERY_MEMORY_POINTS,
                "CPU %.1f %% -> %.1f %% (allowed +%g), memory %.1f %% -> %.1f %% (allowed +%g)"
                % (
                    baseline["cpu_pct"]["sustained"],
                    recovery["cpu_pct"]["sustained"],
                    RECOVERY_CPU_POINTS,
                    baseline["memory_pct"]["sustained"],
                    recovery["memory_pct"]["sustained"],
                    RECOVERY_MEMORY_POINTS,
                ),
                {"cpu_points": round(cpu_gap, 3), "memory_points": round(mem_gap, 3)},
                {"cpu_points": RECOVERY_CPU_POINTS, "memory_points": RECOVERY_MEMORY_POINTS},
            )
        )
    else:
        criteria.append(_criterion("recovery", False, "no baseline or no recovery measurement"))
    extra = sorted({field for lv in levels for field in lv.get("extra_fields", [])})
    criteria.append(
        _criterion(
            "contract",
            modified == 0 and not extra,
            "%d modified snapshot(s); fields beyond PatternRecord metadata: %s"
            % (modified, ", ".join(extra) or "none"),
        )
    )
    if shutdown is None:
        criteria.append(_criterion("clean_shutdown", False, "the Observer was not stopped"))
    else:
        criteria.append(
            _criterion(
                "clean_shutdown",
                bool(shutdown.get("stopped_cleanly")),
                "SIGTERM: exit status %s after %s s (timeout %s s)"
                % (
                    shutdown.get("exit_status"),
                    shutdown.get("elapsed_s"),
                    shutdown.get("timeout_s"),
                ),
            )
        )
    return criteria
