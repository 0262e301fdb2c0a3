# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Trends over a long level (a soak): the series judged, their windows, and the robust slope
fitted through them. Standard library only.

Each series is cut into windows of ``window_s`` after a warm-up that is not judged, and each
window gives one value, the minimum of its samples: of the Observer's RSS, open files, the
records folder's size, the buffer depth, and of each second's p99 processing latency (of the
snapshots meant to be sent in that second). A sawtooth of flushes, rotations or garbage
collection, or a neighbour's burst on the machine, has the same floor in every window; growth
raises the floor. Through those values, the
Theil-Sen slope (the median of the slopes between every two windows) with Sen's 95 %
confidence interval, from Kendall's S, its variance corrected for ties and widened for the
residuals' lag-1 autocorrelation (slowly varying noise is fewer independent windows).

A trend fails (judged by the gate, ``gate.judge_trend``, which also names each limit):
  - when the lower bound of its slope is over its tolerance, or
  - when, growing at that lower bound, it reaches its limit before the horizon,
and only while it still grows: the slope over the second half of the windows is at least half
that lower bound. Growth that stopped (a cache filled once, a one-time allocation) is not a
trend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# name -> (what it is, unit). The order is the report's.
SERIES: dict[str, tuple[str, str]] = {
    "rss_mb": ("Observer RSS", "MB"),
    "open_files": ("Observer open files", "files"),
    "records_mb": ("records folder", "MB"),
    "p99_ms": ("p99 latency", "ms"),
    "buffer_depth": ("buffer depth", "records"),
}

# Growth per hour accepted anyway (a trend fails when its slope's lower bound is over it).
# The records folder grows by design until rotation bounds it: judged on its limit only.
TOLERANCES_PER_H: dict[str, float | None] = {
    "rss_mb": 10.0,
    "open_files": 5.0,
    "records_mb": None,
    "p99_ms": 5.0,
    "buffer_depth": 100.0,
}

TREND_DEFAULTS: dict = {
    # Each window gives one value; longer than the longest periodic pattern (flushes, GC).
    "window_s": 60.0,
    # Not judged: the Observer fills its caches and histories.
    "warmup_s": 600.0,
    # "The trading day": a trend reaching its limit before this fails.
    "horizon_h": 8.0,
    "tolerances": dict(TOLERANCES_PER_H),
    "limits": {},
}
# A trend needs this many windows after the warm-up; fewer are not enough for an interval.
MIN_WINDOWS = 8
# Sen's interval: two-sided 95 %.
Z_95 = 1.959964
# The second half's slope under this share of the whole's lower bound: the growth stopped.
STILL_GROWING_SHARE = 0.5
# Lag-1 autocorrelation of the residuals is counted up to this (AR(1) effective size).
MAX_AUTOCORRELATION = 0.9


def _per_series(given: object, key: str, into: dict) -> list[str]:
    """A per-series mapping (``tolerances``, ``limits``) checked into ``into``."""
    if given in (None, {}):
        return []
    if not isinstance(given, dict):
        return ["stress_trends.%s must be a mapping, got %r" % (key, given)]
    errors = []
    for name in sorted(given):
        number = given[name]
        if name not in SERIES:
            errors.append("stress_trends.%s: unknown series %r (known: %s)"
                          % (key, name, ", ".join(SERIES)))  # fmt: skip
        elif number is not None and (
            isinstance(number, bool) or not isinstance(number, (int, float))
            or not math.isfinite(number) or number < 0 or (key == "limits" and number == 0)
        ):  # fmt: skip
            errors.append("stress_trends.%s.%s must be a number %s 0, got %r"
                          % (key, name, ">" if key == "limits" else ">=", number))  # fmt: skip
        else:
            into[name] = None if number is None else float(number)
    return errors


def trend_settings_errors(value: object) -> tuple[dict, list[str]]:
    """``stress_trends`` resolved over the defaults, and every problem named."""
    settings = {**TREND_DEFAULTS, "tolerances": dict(TOLERANCES_PER_H), "limits": {}}
    if value in (None, {}):
        return settings, []
    if not isinstance(value, dict):
        return settings, ["stress_trends must be a mapping, got %r" % (value,)]
    errors = [
        "stress_trends: unknown key %r (known: %s)" % (key, ", ".join(TREND_DEFAULTS))
        for key in sorted(set(value) - set(TREND_DEFAULTS))
    ]
    for key in ("window_s", "warmup_s", "horizon_h"):
        if value.get(key) is None:
            continue
        number = value[key]
        lowest = 0.0 if key == "warmup_s" else 1e-9
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number < lowest:
            errors.append("stress_trends.%s must be a number %s 0, got %r"
                          % (key, ">=" if key == "warmup_s" else ">", number))  # fmt: skip
        else:
            settings[key] = float(number)
    for key in ("tolerances", "limits"):
        errors += _per_series(value.get(key), key, settings[key])
    return settings, errors


def judged_span(duration_s: float, settings: dict) -> int:
    """How many whole windows of a level of ``duration_s`` are judged (after its warm-up)."""
    return max(int((duration_s - settings["warmup_s"]) // settings["window_s"]), 0)


def windows(
    samples: Sequence[tuple[float, float]],
    *,
    warmup_s: float,
    window_s: float,
    count: int,
) -> list[list[float]]:
    """``[t, value]`` per window (``t``: its middle, in seconds from the level's start): the
    minimum of its ``(t, value)`` samples; a window without a sample is left out."""
    bins: list[list[float]] = [[] for _unused in range(count)]
    for moment, value in samples:
        index = math.floor((moment - warmup_s) / window_s)
        if 0 <= index < count:
            bins[index].append(value)
    return [[round(warmup_s + (index + 0.5) * window_s, 3), round(min(values), 6)]
            for index, values in enumerate(bins) if values]  # fmt: skip


def _ordered_slopes(points: Sequence[Sequence[float]]) -> list[float]:
    return sorted(
        (points[j][1] - points[i][1]) / (points[j][0] - points[i][0])
        for i in range(len(points))
        for j in range(i + 1, len(points))
        if points[j][0] != points[i][0]
    )


def _median(ordered: list[float]) -> float:
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _lag1_autocorrelation(residuals: list[float]) -> float:
    mean = sum(residuals) / len(residuals)
    centred = [r - mean for r in residuals]
    spread = sum(c * c for c in centred)
    if spread <= 1e-12:
        return 0.0
    return sum(a * b for a, b in zip(centred, centred[1:])) / spread


def theil_sen(points: Sequence[Sequence[float]]) -> dict:
    """Slope (per second), intercept and the slope's 95 % interval of ``[t, value]`` points."""
    slopes = _ordered_slopes(points)
    count = len(points)
    slope = _median(slopes)
    intercept = _median(sorted(value - slope * moment for moment, value in points))
    # Kendall's S variance, less what tied values take away.
    ties: dict[float, int] = {}
    for _unused, value in points:
        ties[value] = ties.get(value, 0) + 1
    variance = (count * (count - 1) * (2 * count + 5)
                - sum(t * (t - 1) * (2 * t + 5) for t in ties.values())) / 18.0  # fmt: skip
    residuals = [value - (intercept + slope * moment) for moment, value in points]
    autocorrelation = min(max(_lag1_autocorrelation(residuals), 0.0), MAX_AUTOCORRELATION)
    variance *= (1 + autocorrelation) / (1 - autocorrelation)
    spread = Z_95 * math.sqrt(max(variance, 0.0))
    pairs = len(slopes)
    lower_rank = max(math.floor((pairs - spread) / 2.0), 1)
    upper_rank = min(math.ceil((pairs + spread) / 2.0) + 1, pairs)
    return {
        "slope": slope,
        "intercept": intercept,
        "lower": slopes[lower_rank - 1],
        "upper": slopes[upper_rank - 1],
        "autocorrelation": round(autocorrelation, 3),
    }


def fit(points: Sequence[Sequence[float]]) -> dict | None:
    """The trend of a series' windows, per hour: slope and its interval, the value the line
    gives at the last window, the second half's slope. None under MIN_WINDOWS windows."""
    if len(points) < MIN_WINDOWS:
        return None
    whole = theil_sen(points)
    second = theil_sen(points[len(points) // 2 :])
    last = points[-1][0]
    return {
        "slope_per_h": round(whole["slope"] * 3600.0, 6),
        "lower_per_h": round(whole["lower"] * 3600.0, 6),
        "upper_per_h": round(whole["upper"] * 3600.0, 6),
        "intercept": round(whole["intercept"], 6),
        "fitted_end": round(whole["intercept"] + whole["slope"] * last, 6),
        "second_half_per_h": round(second["slope"] * 3600.0, 6),
        "autocorrelation": whole["autocorrelation"],
        "windows": len(points),
    }


def figure(value: float) -> str:
    """A trend's figure for people: three significant digits, whole numbers from 1000, and 0
    under a thousandth (a float's dust, not a slope)."""
    if abs(value) < 0.0005:
        return "0"
    return "%.0f" % value if abs(value) >= 1000 else "%.3g" % value


def hours_to(limit: float | None, fitted_end: float, per_h: float) -> float | None:
    """Hours until a line at ``fitted_end`` growing ``per_h`` reaches ``limit`` (None: never
    or no limit; 0: already there)."""
    if limit is None or per_h <= 0:
        return None
    return round(max(limit - fitted_end, 0.0) / per_h, 3)


def rotation_bound_mb(fitted: dict, rotation: dict | None) -> float | None:
    """Where rotation stops the records folder: ``max_files`` files of ``window_ms`` of its
    growth (None without rotation)."""
    if not rotation or not rotation.get("enabled", True) or fitted["slope_per_h"] <= 0:
        return None
    hours = rotation["max_files"] * rotation["window_ms"] / 3_600_000.0
    return round(fitted["slope_per_h"] * hours, 3)


def growing(fitted: dict) -> bool:
    """Growth beyond noise: the slope's lower bound is over 0."""
    return fitted["lower_per_h"] > 0


def still_growing(fitted: dict) -> bool:
    """Growing, and still at the end: the second half's slope is at least half the lower
    bound found over every window."""
    return (
        growing(fitted)
        and fitted["second_half_per_h"] >= STILL_GROWING_SHARE * fitted["lower_per_h"]
    )
