# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small statistics shared by the load, measure and judge steps. Standard library only."""

from __future__ import annotations

import math


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of a sorted list; 0.0 for an empty one."""
    if not ordered:
        return 0.0
    # round() first: 0.95 * 100 is 95.00000000000001 in binary floating point.
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of a list of milliseconds, rounded to microseconds."""
    ordered = sorted(values)
    return {
        "p50": round(percentile(ordered, 0.50), 3),
        "p95": round(percentile(ordered, 0.95), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "max": round(ordered[-1], 3) if ordered else 0.0,
    }


# The latency spectrum's percentiles (a chart's x axis): up to p99.9, then the max.
SPECTRUM = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)


def spectrum_ms(values: list[float]) -> dict[str, float]:
    """``{"p50": .., "p75": .., ..., "p99.9": .., "max": ..}`` of a list of milliseconds."""
    ordered = sorted(values)
    found = {
        "p%g" % (fraction * 100): round(percentile(ordered, fraction), 3) for fraction in SPECTRUM
    }
    found["max"] = round(ordered[-1], 3) if ordered else 0.0
    return found


def sustained(samples: list[tuple[float, float]], window_s: float) -> float:
    """The highest mean over any ``window_s`` of (time, value) samples: "sustained".

    A single spike does not count; a level held for the whole window does. With fewer
    samples than the window spans, the mean of all of them is the answer.
    """
    if not samples:
        return 0.0
    ordered = sorted(samples)
    best = None
    start = 0
    total = 0.0
    for end, (moment, value) in enumerate(ordered):
        total += value
        while moment - ordered[start][0] > window_s:
            total -= ordered[start][1]
            start += 1
        covered = moment - ordered[start][0]
        if covered >= window_s * 0.999 or (end == len(ordered) - 1 and best is None):
            mean = total / (end - start + 1)
            best = mean if best is None else max(best, mean)
    return round(best if best is not None else 0.0, 3)
