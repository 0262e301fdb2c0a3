# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The capacity search: the highest rate an Observer sustains, what stops it, and the curve.

Open loop, per host: the offered rate grows geometrically from ``start_rate`` until a step is
not sustainable, then the bracket [highest sustainable, lowest failing] is narrowed by its
geometric mean until the two are within ``precision_pct`` of their middle (both ways). Each
step sends ``warmup_s`` of snapshots that are reconciled but not measured, then ``step_s``
that are. The search is bounded by ``max_total_s`` and ``max_rate``.

A step is judged by the gate (``gate.judge_step``) on what the collection measured of it
(``stress_measure`` and ``snapshot_load``), against the thresholds ``step_thresholds`` gives
it: the first criterion it breaks is what limited it (``gate.LIMITED_BY``). A step the load
generator itself could not deliver is generator-bound, never an Observer limit. Standard
library only: the plan and the stress_capacity action use it.
"""

from __future__ import annotations

import math

from .gate import LIMITED_BY, collapse_signs, judge_step
from .profile import RUN_LIMITS, profile_levels
from .snapshots import run_id_prefix

# Defaults of ``stress_capacity``; every key is documented in the role's argument specs.
SEARCH_DEFAULTS: dict[str, float] = {
    # The spec's top level: the search starts where the fixed levels end.
    "start_rate": 50.0,
    "growth": 2.0,
    "precision_pct": 5.0,
    "warmup_s": 2.0,
    "step_s": 8.0,
    # A step at a high rate is shortened so it sends at most this many snapshots (its records
    # are all read back to be reconciled); never below MIN_STEP_S measured.
    "max_step_snapshots": 200000,
    "max_total_s": 600.0,
    "max_rate": 200000.0,
    # p99 processing latency; 0: the spec's top level's limit (300 ms).
    "max_latency_ms": 0.0,
    "min_throughput_ratio": 0.95,
    # The generator delivered its offered rate: at least this share, p99 lateness under this.
    "generator_min_ratio": 0.99,
    "generator_max_lateness_ms": 100.0,
    # A late generator that spent at least this share of its lag waiting for room in a full
    # pipe was held back by the Observer; under it, it was late by itself (generator-bound).
    "backpressure_share": 0.5,
    "max_error_rate_pct": 0.1,
}
# How a step's snapshots arrive: evenly, or at random with the step's rate as their mean
# (shapes.py's poisson): the search then finds the highest mean rate of random arrivals.
ARRIVALS = ("constant", "poisson")
# Lower bounds (exclusive unless listed in _INCLUSIVE) and upper bounds of each setting.
_BOUNDS: dict[str, tuple[float, float | None]] = {
    "start_rate": (0.0, 1_000_000.0),
    "growth": (1.0, 16.0),
    "precision_pct": (0.0, 50.0),
    "warmup_s": (0.0, 600.0),
    "step_s": (0.0, 3600.0),
    "max_step_snapshots": (0.0, 10_000_000.0),
    "max_total_s": (0.0, 86400.0),
    "max_rate": (0.0, 1_000_000.0),
    "max_latency_ms": (0.0, None),
    "min_throughput_ratio": (0.0, 1.0),
    "generator_min_ratio": (0.0, 1.0),
    "generator_max_lateness_ms": (0.0, None),
    "backpressure_share": (0.0, 1.0),
    "max_error_rate_pct": (0.0, 100.0),
}
_INCLUSIVE = {"warmup_s", "max_latency_ms"}
MIN_STEP_S = 2.0  # two monitor samples (it samples every second)
MIN_WARMUP_S = 0.5
# Seconds a step costs beyond its load (tasks, the wait for its last records), for the bound.
STEP_OVERHEAD_S = 15.0


def resolve_settings(overrides: object) -> tuple[dict, list[str]]:
    """The search's settings: the defaults with ``stress_capacity`` overrides (validated)."""
    settings: dict = dict(SEARCH_DEFAULTS, arrivals=ARRIVALS[0])
    if overrides in (None, {}):
        settings["max_latency_ms"] = spec_top_latency_ms()
        return settings, []
    if not isinstance(overrides, dict):
        return settings, ["stress_capacity must be a mapping, got %r" % (overrides,)]
    errors = [
        "stress_capacity: unknown key %r (known: %s)" % (key, ", ".join(settings))
        for key in sorted(set(overrides) - set(settings))
    ]
    arrivals = overrides.get("arrivals")
    if arrivals is not None:
        if arrivals in ARRIVALS:
            settings["arrivals"] = arrivals
        else:
            errors.append("stress_capacity.arrivals must be one of %s, got %r"
                          % (", ".join(ARRIVALS), arrivals))  # fmt: skip
    for key, value in overrides.items():
        if key not in SEARCH_DEFAULTS or value is None:
            continue
        low, high = _BOUNDS[key]
        number = None if isinstance(value, bool) else _float(value)
        if (
            number is None
            or not math.isfinite(number)
            or number < low
            or (number == low and key not in _INCLUSIVE)
            or (high is not None and number > high)
        ):
            errors.append(
                "stress_capacity.%s must be a number %s %g%s, got %r"
                % (key, ">=" if key in _INCLUSIVE else ">", low,
                   "" if high is None else " and at most %g" % high, value)
            )  # fmt: skip
        else:
            settings[key] = number
    if not settings["max_latency_ms"]:
        settings["max_latency_ms"] = spec_top_latency_ms()
    if settings["start_rate"] > settings["max_rate"]:
        errors.append(
            "stress_capacity.start_rate (%g) is above stress_capacity.max_rate (%g)"
            % (settings["start_rate"], settings["max_rate"])
        )
    return settings, errors


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def step_timing(rate: float, settings: dict) -> dict:
    """Warm-up and measured seconds of a step at ``rate``: shortened at high rates so the
    step sends at most ``max_step_snapshots``, never under MIN_STEP_S measured."""
    warmup, measured = settings["warmup_s"], settings["step_s"]
    room = settings["max_step_snapshots"] / rate
    if warmup + measured > room:
        scale = room / (warmup + measured)
        warmup = max(min(warmup, MIN_WARMUP_S), warmup * scale) if warmup else 0.0
        measured = max(MIN_STEP_S, measured * scale)
    return {"warmup_s": round(warmup, 3), "step_s": round(measured, 3)}


def start(settings: dict, limits: dict, level_base: int, run_tag: str, now: float) -> dict:
    """The search's state before its first step; its steps are levels ``level_base + n``."""
    state = {
        "run_tag": run_tag,
        "settings": settings,
        "limits": {**RUN_LIMITS, **(limits or {})},
        "level_base": level_base,
        "started_at": now,
        "steps": [],
    }
    return advance(state, now)


def step_thresholds(rate: float, settings: dict, limits: dict) -> dict:
    """A step's thresholds, in the gate's words: the search's throughput share of the offered
    rate and its latency limit; CPU and memory under the run's fail signals (a step is pushed
    past the levels' limits on purpose, until something gives)."""
    return {
        "min_throughput": settings["min_throughput_ratio"] * rate,
        "max_latency_ms": settings["max_latency_ms"],
        "max_cpu_pct": limits["fail_cpu_pct"],
        "max_memory_pct": limits["fail_memory_pct"],
    }


def step_figures(measured: dict, load: dict, plan: dict) -> dict:
    """One step's curve point from the measure's figures and the load's outcome."""
    sending = max(load["finished_at"] - load["started_at"], 1e-9)
    cpu = measured.get("cpu_pct", {}).get("sustained", 0.0)
    generator_cpu = load.get("generator_cpu_pct", 0.0)
    return {
        "step": plan["step"],
        "level": plan["level"],
        "phase": plan["phase"],
        "rate": plan["rate"],
        "warmup_s": plan["warmup_s"],
        "step_s": plan["step_s"],
        "started_at": load["started_at"],
        "finished_at": load["finished_at"],
        "achieved_rate": load.get("achieved_rate", 0.0),
        # Snapshots the step's schedule held: random arrivals hold about rate x duration.
        "planned": load.get("planned"),
        "lateness_ms": load.get("lateness_ms") or {},
        "blocked_s": load.get("blocked_s", 0.0),
        "generator_cpu_pct": generator_cpu,
        # Every record of the step, over the time it took to send it (a slow Observer makes
        # the sending last longer than planned: back-pressure shows here).
        "throughput": round(measured.get("written", 0) / sending, 3),
        "latency_ms": measured.get("latency_ms"),
        "latency_source": measured.get("latency_source"),
        "samples": measured.get("samples", 0),
        "cpu_pct": measured.get("cpu_pct", {}),
        "cpu_excluding_generator_pct": round(max(0.0, cpu - generator_cpu), 3),
        "memory_pct": measured.get("memory_pct", {}),
        "observer_cpu_pct": measured.get("observer_cpu_pct", {}),
        "observer_rss_mb": measured.get("observer_rss_mb", {}),
        # What the gate's breach messages need to say how much was the Observer's own.
        "observer_samples": measured.get("observer_samples", 0),
        "cpu_count": measured.get("cpu_count"),
        "memory_total_mb": measured.get("memory_total_mb"),
        "buffer_depth_max": measured.get("buffer_depth_max"),
        "sent": measured.get("sent", load.get("sent", 0)),
        "written": measured.get("written", 0),
        "lost": measured.get("lost", 0),
        "duplicated": measured.get("duplicated", 0),
        "modified": measured.get("modified", 0),
        "decision_fields": measured.get("decision_fields", []),
        "extra_fields": measured.get("extra_fields", []),
        "errors": measured.get("errors", 0),
        "error_rate_pct": measured.get("error_rate_pct", 0.0),
        "failure": load.get("failure") or measured.get("failure"),
    }


def record(state: dict, measured: dict, load: dict, now: float) -> dict:
    """The state with the step just run judged and added, and the next step (or the end)."""
    settings, limits = state["settings"], state["limits"]
    step = step_figures(measured, load, state["next"])
    breaches, unmeasured = judge_step(
        step,
        step_thresholds(step["rate"], settings, limits),
        dict(limits, max_error_rate_pct=settings["max_error_rate_pct"]),
        settings,
    )
    step["breaches"] = breaches
    step["unmeasured"] = [item["criterion"] for item in unmeasured]
    step["sustainable"] = not breaches
    state = dict(state, steps=state["steps"] + [step])
    return advance(state, now)


def _narrowed(low: float, high: float, precision_pct: float) -> bool:
    """Both ends within ``precision_pct`` of their middle."""
    return (high - low) / ((high + low) / 2.0) <= 2.0 * precision_pct / 100.0


def _next_rate(state: dict) -> tuple[float | None, str]:
    """The next rate to offer, or None and why the search ends."""
    settings, steps = state["settings"], state["steps"]
    if not steps:
        return settings["start_rate"], "ramp"
    last = steps[-1]
    if last["breaches"] and last["breaches"][0]["criterion"] == "generator":
        return None, "generator"
    if last["failure"]:
        return None, "crash"
    failing = [s["rate"] for s in steps if not s["sustainable"]]
    if not failing:
        if last["rate"] >= settings["max_rate"]:
            return None, "max_rate"
        return min(last["rate"] * settings["growth"], settings["max_rate"]), "ramp"
    high = min(failing)
    passing = [s["rate"] for s in steps if s["sustainable"] and s["rate"] < high]
    if not passing:
        lower = high / settings["growth"]
        return (lower, "down") if lower >= 1.0 else (None, "none")
    low = max(passing)
    if _narrowed(low, high, settings["precision_pct"]):
        return None, "narrowed"
    return round(math.sqrt(low * high), 1), "bisect"


def advance(state: dict, now: float) -> dict:
    """Plan the next step, or end the search with its result."""
    settings = state["settings"]
    rate, phase = _next_rate(state)
    if rate is not None:
        timing = step_timing(rate, settings)
        cost = timing["warmup_s"] + timing["step_s"] + STEP_OVERHEAD_S
        if now + cost - state["started_at"] > settings["max_total_s"]:
            rate, phase = None, "time"
    if rate is None:
        return dict(state, next=None, done=True, result=summarise(state, phase))
    number = len(state["steps"]) + 1
    level = state["level_base"] + number
    plan = {
        "step": number,
        "level": level,
        "rate": rate,
        "phase": phase,
        "run_id_prefix": run_id_prefix(state["run_tag"], level),
    }
    return dict(state, next=dict(plan, **timing), done=False, result=None)


ENDINGS = {
    "narrowed": "the bracket narrowed to within ±%(precision)g %%",
    "generator": "limited by the load generator at %(generator_rate).0f/s",
    "crash": "the Observer died during the step at %(failing_rate)g/s",
    "max_rate": "no limit found up to max_rate %(max_rate)g/s",
    "time": "the time bound (max_total_s %(max_total_s)g s) ended the search",
    "none": "no rate down to 1/s was sustainable",
}


def _failed_how(failing: dict, below: dict | None, limits: dict) -> str:
    """How the first failing step failed: a collapse (the Observer died, or the gate's collapse
    signs, ``gate.collapse_signs``, over the step under it) or a graceful degradation."""
    if failing["failure"] or collapse_signs(failing, below, limits):
        return "collapse"
    return "graceful degradation"


def summarise(state: dict, ending: str) -> dict:
    """The search's result: highest sustainable rate, what limited it, how it failed, the
    headroom over the spec's top level and the curve."""
    settings, steps = state["settings"], state["steps"]
    sustained = [s for s in steps if s["sustainable"]]
    failing = [s for s in steps if not s["sustainable"]]
    first_failing = min(failing, key=lambda s: s["rate"]) if failing else None
    below = [s for s in sustained if first_failing is None or s["rate"] < first_failing["rate"]]
    best = max(below, key=lambda s: s["rate"]) if below else None
    limited_by = None
    if ending == "generator":
        limited_by = "generator"
    elif first_failing is not None:
        limited_by = LIMITED_BY[first_failing["breaches"][0]["criterion"]]
    generator_rate = steps[-1]["achieved_rate"] if steps else 0.0
    words = {
        "precision": settings["precision_pct"],
        "generator_rate": generator_rate,
        "failing_rate": first_failing["rate"] if first_failing else 0,
        "max_rate": settings["max_rate"],
        "max_total_s": settings["max_total_s"],
    }
    top = spec_top_rate()
    unmeasured = sorted({name for s in steps for name in s["unmeasured"]})
    return {
        "highest_sustainable_rate": best["rate"] if best else None,
        "limited_by": limited_by,
        "ending": ending,
        "summary": ENDINGS[ending] % words,
        "generator_rate": generator_rate if ending == "generator" else None,
        "first_failing_rate": first_failing["rate"] if first_failing else None,
        "failed_how": _failed_how(first_failing, best, state["limits"]) if first_failing else None,
        "failing_breaches": first_failing["breaches"] if first_failing else [],
        "headroom": round(best["rate"] / top, 2) if best else None,
        "headroom_over_rate": top,
        "unmeasured": unmeasured,
        "steps": len(steps),
        "duration_s": round((steps[-1]["finished_at"] - state["started_at"]) if steps else 0, 1),
        "curve": [_point(s) for s in sorted(steps, key=lambda s: s["rate"])],
    }


def _point(step: dict) -> dict:
    keep = (
        "step", "rate", "achieved_rate", "throughput", "lateness_ms", "blocked_s", "latency_ms",
        "latency_source", "cpu_pct", "cpu_excluding_generator_pct", "generator_cpu_pct",
        "memory_pct", "observer_cpu_pct", "observer_rss_mb", "buffer_depth_max", "sent",
        "written", "lost", "duplicated", "modified", "errors", "error_rate_pct", "sustainable",
        "breaches", "unmeasured", "warmup_s", "step_s", "phase",
    )  # fmt: skip
    return {key: step.get(key) for key in keep}


def spec_top_rate() -> float:
    """The spec's top level's rate (50/s): headroom is counted over it."""
    return float(profile_levels("full")[-1]["rate"])


def spec_top_latency_ms() -> float:
    """The spec's top level's latency limit (300 ms): the search's default."""
    return float(profile_levels("full")[-1]["thresholds"]["max_latency_ms"])
