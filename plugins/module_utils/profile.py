# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load profile: the spec's levels and thresholds, and the validation of user overrides.

This is the one place the levels and their thresholds are written down. ``stress_levels``
(a list of ``{rate, duration_s, thresholds: {...}}``) overrides the profile as a whole.
Standard library only.
"""

from __future__ import annotations

import copy
import math

THRESHOLD_KEYS = ("min_throughput", "max_latency_ms", "max_cpu_pct", "max_memory_pct")
LEVEL_KEYS = ("rate", "duration_s", "thresholds")

# The spec's table (section 4): expected throughput, max latency, max CPU, max memory.
_SPEC_LEVELS = (
    (5, 4.8, 50.0, 40.0, 60.0),
    (10, 9.5, 75.0, 60.0, 70.0),
    (25, 23.0, 150.0, 75.0, 80.0),
    (50, 45.0, 300.0, 80.0, 85.0),
)

# Seconds per level, cooldown between levels, set-up wait (baseline) and final cooldown.
PROFILE_TIMINGS = {
    "full": {"duration_s": 180, "cooldown_s": 30, "setup_wait_s": 300, "final_cooldown_s": 300},
    "smoke": {"duration_s": 5, "cooldown_s": 2, "setup_wait_s": 5, "final_cooldown_s": 5},
}


def profile_levels(profile: str) -> list[dict]:
    """The levels of a named profile (``full``: the spec; ``smoke``: the same, compressed)."""
    if profile not in PROFILE_TIMINGS:
        raise ValueError(
            "stress_profile must be one of %s, got %r"
            % (", ".join(sorted(PROFILE_TIMINGS)), profile)
        )
    duration = PROFILE_TIMINGS[profile]["duration_s"]
    return [
        {
            "rate": rate,
            "duration_s": duration,
            "thresholds": {
                "min_throughput": throughput,
                "max_latency_ms": latency,
                "max_cpu_pct": cpu,
                "max_memory_pct": memory,
            },
        }
        for rate, throughput, latency, cpu, memory in _SPEC_LEVELS
    ]


def _positive_number(
    value: object, where: str, errors: list[str], upper: float | None = None
) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        errors.append("%s must be a number, got %r" % (where, value))
    elif not math.isfinite(value) or value <= 0:
        errors.append("%s must be greater than 0, got %r" % (where, value))
    elif upper is not None and value > upper:
        errors.append("%s must be at most %g, got %r" % (where, upper, value))


def validate_levels(levels: object) -> list[str]:
    """Every problem with a ``stress_levels`` value, each naming the item and key."""
    if not isinstance(levels, list) or not levels:
        return ["stress_levels must be a non-empty list of levels, got %r" % (levels,)]
    errors: list[str] = []
    for index, level in enumerate(levels, start=1):
        where = "stress_levels[%d]" % index
        if not isinstance(level, dict):
            errors.append("%s must be a mapping with keys %s" % (where, ", ".join(LEVEL_KEYS)))
            continue
        errors.extend(
            "%s: unknown key %r (known: %s)" % (where, key, ", ".join(LEVEL_KEYS))
            for key in sorted(set(level) - set(LEVEL_KEYS))
        )
        errors.extend("%s: missing key %r" % (where, key) for key in LEVEL_KEYS if key not in level)
        if "rate" in level:
            _positive_number(level["rate"], where + ".rate", errors, upper=1_000_000)
        if "duration_s" in level:
            _positive_number(level["duration_s"], where + ".duration_s", errors, upper=86_400)
        thresholds = level.get("thresholds")
        if "thresholds" not in level:
            continue
        if not isinstance(thresholds, dict):
            errors.append("%s.thresholds must be a mapping" % where)
            continue
        errors.extend(
            "%s.thresholds: unknown key %r (known: %s)" % (where, key, ", ".join(THRESHOLD_KEYS))
            for key in sorted(set(thresholds) - set(THRESHOLD_KEYS))
        )
        for key in THRESHOLD_KEYS:
            if key not in thresholds:
                errors.append("%s.thresholds: missing threshold %r" % (where, key))
            else:
                upper = 100.0 if key.endswith("_pct") else None
                _positive_number(thresholds[key], "%s.thresholds.%s" % (where, key), errors, upper)
    return errors


def resolve_levels(profile: str, levels: object | None) -> list[dict]:
    """The levels to run: ``levels`` when given (validated), else the profile's."""
    if levels is None or levels == []:
        return profile_levels(profile)
    errors = validate_levels(levels)
    if errors:
        raise ValueError("; ".join(errors))
    return copy.deepcopy(levels)  # type: ignore[arg-type]
