# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The load profile: the spec's levels, thresholds, run-wide limits and timings, and the
validation of user overrides.

This is the one place where the spec's figures are written down. ``stress_levels`` (a list of
``{rate, duration_s, thresholds: {...}}``) overrides the profile's levels as a whole;
``stress_limits`` overrides single run-wide limits. Standard library only.
"""

from __future__ import annotations

import copy
import math

from .shapes import MAX_SNAPSHOTS, planned_total, shape_errors

THRESHOLD_KEYS = ("min_throughput", "max_latency_ms", "max_cpu_pct", "max_memory_pct")
# A level's optional thresholds: p99 of when its records became visible (for any Observer).
OPTIONAL_THRESHOLD_KEYS = ("max_visibility_ms",)
LEVEL_KEYS = ("rate", "duration_s", "thresholds")
# The most a level may offer and last.
MAX_LEVEL_RATE = 1_000_000
MAX_LEVEL_DURATION_S = 86_400
# A level's optional keys: its load shape (shapes.py), constant when absent.
OPTIONAL_LEVEL_KEYS = ("shape",)

# The spec's table (section 4): expected throughput, max latency, max CPU, max memory.
_SPEC_LEVELS = (
    (5, 4.8, 50.0, 40.0, 60.0),
    (10, 9.5, 75.0, 60.0, 70.0),
    (25, 23.0, 150.0, 75.0, 80.0),
    (50, 45.0, 300.0, 80.0, 85.0),
)

# The spec's run-wide limits (section 4), each overridable through ``stress_limits``.
# CPU and memory are the system's, as the spec states them; percentages are of the machine.
RUN_LIMITS: dict[str, float] = {
    # PASS needs, at every level: sustained CPU and memory under these ("resources").
    "max_cpu_pct": 80.0,
    "max_memory_pct": 85.0,
    # Early warnings, shown while the run goes on (not failures): from these up to the limits.
    "warn_cpu_pct": 70.0,
    "warn_memory_pct": 75.0,
    # Fail signals: sustained CPU or memory above these is resource exhaustion.
    "fail_cpu_pct": 90.0,
    "fail_memory_pct": 95.0,
    # Error rate: PASS needs under this across all levels, and each level stays under it.
    "max_error_rate_pct": 0.1,
    # Fail signal: any processing latency over this is a collapse.
    "fail_latency_ms": 500.0,
    # A level delivering under this share of its offered rate collapsed.
    "collapse_throughput_ratio": 0.5,
    # p99 growing more than this many times from one level to the next, and ending above
    # collapse_latency_floor_ms, is a collapse rather than a degradation.
    "collapse_latency_growth": 10.0,
    "collapse_latency_floor_ms": 50.0,
    # Throughput must follow the offered load: every level at least this share of its rate.
    "scaling_min_ratio": 0.9,
    # Recovery: after the run, sustained CPU and memory back within these many points of
    # the baseline measured before the first level.
    "recovery_cpu_points": 10.0,
    "recovery_memory_points": 5.0,
    # The load generator's bounds: a level it sent later than these, without the Observer's
    # full pipe to blame, did not get the shape it was meant to have, and its Observer
    # figures are NOT MEASURED (never a FAIL of the Observer). Send lateness p99 from each
    # snapshot's intended time; and a burst's last snapshot sent this long after its window.
    "generator_max_lateness_ms": 1000.0,
    "generator_max_burst_overrun_ms": 100.0,
}
_PCT_LIMITS = {k for k in RUN_LIMITS if k.endswith("_pct") or k.endswith("_points")}
_RATIO_LIMITS = {"collapse_throughput_ratio", "scaling_min_ratio"}

# Seconds per level, cooldown between levels, set-up wait (baseline), final cooldown
# (recovery is measured over its second half) and the rolling window of "sustained".
PROFILE_TIMINGS = {
    "full": {
        "duration_s": 180,
        "cooldown_s": 30,
        "setup_wait_s": 300,
        "final_cooldown_s": 300,
        "sustained_window_s": 10,
    },
    # Every window still holds enough monitor samples: a level lasts one sustained window,
    # the baseline is measured over the set-up wait, recovery over the last 5 s.
    "smoke": {
        "duration_s": 5,
        "cooldown_s": 2,
        "setup_wait_s": 5,
        "final_cooldown_s": 10,
        "sustained_window_s": 5,
    },
    # One steady level of the spec's 25/s for hours (stress_soak_duration_s), its trends
    # judged (module_utils/trends.py).
    "soak": {
        "duration_s": 14400,
        "cooldown_s": 30,
        "setup_wait_s": 60,
        "final_cooldown_s": 120,
        "sustained_window_s": 10,
    },
    # No fixed level: the capacity search alone (module_utils/capacity.py), between a short
    # baseline and recovery.
    "capacity": {
        "duration_s": 0,
        "cooldown_s": 2,
        "setup_wait_s": 10,
        "final_cooldown_s": 20,
        "sustained_window_s": 5,
    },
}
# Profiles whose run is the capacity search (after their levels, if any).
CAPACITY_PROFILES = ("capacity",)
# Profiles of one steady level at the spec's rate below, for hours: its trends are judged.
SOAK_PROFILES = ("soak",)
SOAK_RATE = 25
TIMING_KEYS = ("cooldown_s", "setup_wait_s", "final_cooldown_s", "sustained_window_s")
# The monitor samples at least every 2 s (monitor_interval_s <= 2): a sustained window of
# 4 s holds at least two samples.
MIN_SUSTAINED_WINDOW_S = 4.0


def profile_levels(profile: str) -> list[dict]:
    """The levels of a named profile (``full``: the spec; ``smoke``: the same, compressed;
    ``soak``: the spec's 25/s level for hours; ``capacity``: none, the search alone)."""
    if profile not in PROFILE_TIMINGS:
        raise ValueError(
            "stress_profile must be one of %s, got %r"
            % (", ".join(sorted(PROFILE_TIMINGS)), profile)
        )
    if profile in CAPACITY_PROFILES:
        return []
    duration = PROFILE_TIMINGS[profile]["duration_s"]
    spec_levels = _SPEC_LEVELS
    if profile in SOAK_PROFILES:
        spec_levels = tuple(level for level in _SPEC_LEVELS if level[0] == SOAK_RATE)
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
        for rate, throughput, latency, cpu, memory in spec_levels
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


def is_replay(level: dict) -> bool:
    shape = level.get("shape")
    return isinstance(shape, dict) and shape.get("type") == "replay"


def _level_errors(level: dict, where: str) -> list[str]:
    """A level's keys, shape, rate and length."""
    known = LEVEL_KEYS + OPTIONAL_LEVEL_KEYS
    errors = [
        "%s: unknown key %r (known: %s)" % (where, key, ", ".join(known))
        for key in sorted(set(level) - set(known))
    ]
    errors += shape_errors(level.get("shape"), where)
    required: tuple[str, ...] = LEVEL_KEYS
    if is_replay(level):
        # Its rate and length are the capture's (the plan sets them from it).
        errors += [
            "%s: a replay's %s is its capture's: leave it out" % (where, key)
            for key in ("rate", "duration_s")
            if key in level
        ]
        required = ("thresholds",)
    errors += ["%s: missing key %r" % (where, key) for key in required if key not in level]
    if "rate" in level:
        _positive_number(level["rate"], where + ".rate", errors, upper=MAX_LEVEL_RATE)
    if "duration_s" in level:
        _positive_number(
            level["duration_s"], where + ".duration_s", errors, upper=MAX_LEVEL_DURATION_S
        )
    if (
        not errors
        and (level.get("shape") or {}).get("type", "constant") not in ("constant", "replay")
        and planned_total(level.get("shape"), level["rate"], level["duration_s"]) > MAX_SNAPSHOTS
    ):
        errors.append(
            "%s plans more than %d snapshots: shorten it or lower its rate" % (where, MAX_SNAPSHOTS)
        )
    return errors


def _threshold_errors(thresholds: object, where: str) -> list[str]:
    if not isinstance(thresholds, dict):
        return ["%s.thresholds must be a mapping" % where]
    known = THRESHOLD_KEYS + OPTIONAL_THRESHOLD_KEYS
    errors = [
        "%s.thresholds: unknown key %r (known: %s)" % (where, key, ", ".join(known))
        for key in sorted(set(thresholds) - set(known))
    ]
    if "max_visibility_ms" in thresholds:
        _positive_number(
            thresholds["max_visibility_ms"], where + ".thresholds.max_visibility_ms", errors
        )
    for key in THRESHOLD_KEYS:
        if key not in thresholds:
            errors.append("%s.thresholds: missing threshold %r" % (where, key))
        else:
            upper = 100.0 if key.endswith("_pct") else None
            _positive_number(thresholds[key], "%s.thresholds.%s" % (where, key), errors, upper)
    return errors


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
        errors += _level_errors(level, where)
        if "thresholds" in level:
            errors += _threshold_errors(level["thresholds"], where)
    return errors


def resolve_levels(profile: str, levels: object | None) -> list[dict]:
    """The levels to run: ``levels`` when given (validated), else the profile's."""
    if levels is None or levels == []:
        return profile_levels(profile)
    errors = validate_levels(levels)
    if errors:
        raise ValueError("; ".join(errors))
    return copy.deepcopy(levels)  # type: ignore[arg-type]


def resolve_limits(overrides: object) -> tuple[dict[str, float], list[str]]:
    """The run-wide limits: the spec's, with ``stress_limits`` overrides (validated)."""
    limits = dict(RUN_LIMITS)
    if overrides in (None, {}):
        return limits, []
    if not isinstance(overrides, dict):
        return limits, ["stress_limits must be a mapping, got %r" % (overrides,)]
    errors = [
        "stress_limits: unknown limit %r (known: %s)" % (key, ", ".join(RUN_LIMITS))
        for key in sorted(set(overrides) - set(RUN_LIMITS))
    ]
    for key in RUN_LIMITS:
        if key not in overrides:
            continue
        upper = 100.0 if key in _PCT_LIMITS else 1.0 if key in _RATIO_LIMITS else None
        before = len(errors)
        _positive_number(overrides[key], "stress_limits.%s" % key, errors, upper)
        if len(errors) == before:
            limits[key] = float(overrides[key])
    for low, high in (
        ("warn_cpu_pct", "max_cpu_pct"),
        ("warn_memory_pct", "max_memory_pct"),
        ("max_cpu_pct", "fail_cpu_pct"),
        ("max_memory_pct", "fail_memory_pct"),
    ):
        if limits[low] > limits[high]:
            errors.append(
                "stress_limits: %s (%g) must not be above %s (%g)"
                % (low, limits[low], high, limits[high])
            )
    return limits, errors


def resolve_timings(profile: str, overrides: dict) -> tuple[dict, list[str]]:
    """The profile's timings with the user's overrides (null keeps the profile's)."""
    timings = dict(PROFILE_TIMINGS.get(profile, PROFILE_TIMINGS["full"]))
    timings.pop("duration_s")
    errors = [
        "timings: unknown key %r (known: %s)" % (k, ", ".join(TIMING_KEYS))
        for k in sorted(set(overrides) - set(TIMING_KEYS))
    ]
    for key in TIMING_KEYS:
        value = overrides.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            errors.append("stress_%s must be a number of seconds, 0 or more, got %r" % (key, value))
        else:
            timings[key] = value
    return timings, errors


def window_errors(levels: list[dict], timings: dict) -> list[str]:
    """Windows that could not be measured: every criterion needs enough monitor samples.

    A level shorter than the sustained window has no sustained figure; the baseline is
    measured over the set-up wait and recovery over the second half of the final cooldown,
    each of which must hold one sustained window.
    """
    window = timings["sustained_window_s"]
    if window < MIN_SUSTAINED_WINDOW_S:
        return [
            "stress_sustained_window_s must be at least %g s (two samples of a monitor "
            "sampling every 2 s), got %g" % (MIN_SUSTAINED_WINDOW_S, window)
        ]
    errors = [
        "stress_levels[%d]%s (%g s) is shorter than the sustained window "
        "stress_sustained_window_s (%g s): its CPU and memory could not be measured"
        % (index, "'s capture over its speed" if is_replay(level) else ".duration_s",
           level["duration_s"], window)
        for index, level in enumerate(levels, start=1)
        # A replay whose capture was refused has no length: its refusal says why.
        if "duration_s" in level and level["duration_s"] < window
    ]  # fmt: skip
    if timings["setup_wait_s"] < window:
        errors.append(
            "stress_setup_wait_s (%g s) is shorter than the sustained window (%g s): the "
            "baseline could not be measured" % (timings["setup_wait_s"], window)
        )
    if timings["final_cooldown_s"] / 2 < window:
        errors.append(
            "stress_final_cooldown_s (%g s) must be at least twice the sustained window "
            "(%g s): recovery is measured over its second half"
            % (timings["final_cooldown_s"], window)
        )
    return errors
