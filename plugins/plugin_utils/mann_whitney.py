"""The one-sided Mann-Whitney U test of the regression check, in the standard library.

It follows ``scipy.stats.mannwhitneyu`` with ``method="auto"`` and its continuity
correction (scipy 1.17): the exact null distribution of U when a sample has at most
``EXACT_MAX_SIZE`` values and no two values are equal, the normal approximation with the
tie correction otherwise. The test suite compares both with scipy on random samples.
Importing scipy.stats cost the controller about 1.7 CPU-seconds per run compared; this
costs microseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

EXACT_MAX_SIZE = 8


def p_value(current: Sequence[float], baseline: Sequence[float], alternative: str) -> float:
    """The p-value that ``current`` is stochastically ``greater`` (or ``less``) than ``baseline``."""
    if alternative not in ("greater", "less"):
        raise ValueError("alternative must be 'greater' or 'less', not %r" % (alternative,))
    n1, n2 = len(current), len(baseline)
    if not n1 or not n2:
        raise ValueError("both samples need at least one value (%d and %d given)" % (n1, n2))
    ranks, tie_sizes = _ranks([*current, *baseline])
    u1 = sum(ranks[:n1]) - n1 * (n1 + 1) / 2
    u = u1 if alternative == "greater" else n1 * n2 - u1
    tied = any(size > 1 for size in tie_sizes)
    if (n1 > EXACT_MAX_SIZE and n2 > EXACT_MAX_SIZE) or tied:
        p = _normal_sf(u, n1, n2, tie_sizes)
    else:
        p = _exact_sf(round(u), n1, n2)
    return min(max(p, 0.0), 1.0)


def _ranks(values: Sequence[float]) -> tuple[list[float], list[int]]:
    """The average rank (from 1) of each value, and the size of each group of equal values."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    tie_sizes = []
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        tie_sizes.append(end - start + 1)
        start = end + 1
    return ranks, tie_sizes


def _normal_sf(u: float, n1: int, n2: int, tie_sizes: list[int]) -> float:
    """P(U >= u) by the normal approximation, corrected for ties and for continuity."""
    n = n1 + n2
    tie_term = sum(size**3 - size for size in tie_sizes)
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    numerator = u - n1 * n2 / 2 - 0.5
    if variance <= 0:
        # Every value equal: U sits on its mean, below it by the continuity correction.
        return 1.0 if numerator < 0 else 0.0
    z = numerator / math.sqrt(variance)
    return 0.5 * math.erfc(z / math.sqrt(2))


def _exact_sf(u: int, n1: int, n2: int) -> float:
    """P(U >= u) when no value is tied, counted over every arrangement in exact integers.

    The counts of U are the coefficients of the Gaussian binomial coefficient
    [n1 + n2 choose n1] in q: the product over i of (1 - q^(n2 + i)) / (1 - q^i).
    """
    small, large = min(n1, n2), max(n1, n2)
    counts = [1] + [0] * (small * large)
    for i in range(1, small + 1):
        for s in range(len(counts) - 1, large + i - 1, -1):  # times (1 - q^(large + i))
            counts[s] -= counts[s - large - i]
        for s in range(i, len(counts)):  # divided by (1 - q^i), exact
            counts[s] += counts[s - i]
    return sum(counts[max(u, 0) :]) / math.comb(small + large, small)
