# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gate: every threshold and run-wide criterion of the spec, judged in one place.

Level thresholds come from the profile (``profile.py``) or the user's ``stress_levels``; the
run-wide limits are ``profile.RUN_LIMITS`` with the user's ``stress_limits``. A breach carries
its measured value and its limit, and its message names both. A criterion without the data
to judge it is ``NOT MEASURED`` with the reason, never a PASS. Standard library only.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .faults import RESTARTING as RESTARTING_FAULTS
from .profile import RUN_LIMITS, THRESHOLD_KEYS
from .trends import (
    SERIES,
    figure,
    fit,
    growing,
    hours_to,
    rotation_bound_mb,
    still_growing,
)
from .verdicts import FAIL, NOT_MEASURED, PASS, combine, verdict_of

# Monitor samples a sustained figure needs before it means anything.
MIN_SAMPLES = 2


def _breach(criterion: str, measured, limit, message: str) -> dict:
    return {"criterion": criterion, "measured": measured, "limit": limit, "message": message}


def _unmeasured(criterion: str, reason: str) -> dict:
    return {"criterion": criterion, "reason": reason}


def under_limit(value: float, limit: float) -> bool:
    """A share of the machine must stay under its limit; a limit of 100 % is no limit (a
    saturated machine reads exactly 100 %, and nothing reads more)."""
    return value < limit or limit >= 100.0


def observer_share(metrics: dict, resource: str) -> str:
    """How much of the system's figure was the Observer's own, for a breach message."""
    if resource == "cpu":
        per_core = (metrics.get("observer_cpu_pct") or {}).get("sustained")
        cores = metrics.get("cpu_count") or 0
        if per_core is None or not cores or not metrics.get("observer_samples"):
            return "the Observer's own CPU was not measured"
        return "the Observer itself: %.1f %% of the machine, %.1f %% of one core" % (
            per_core / cores,
            per_core,
        )
    rss = (metrics.get("observer_rss_mb") or {}).get("peak")
    total = metrics.get("memory_total_mb") or 0
    if rss is None or not total or not metrics.get("observer_samples"):
        return "the Observer's own memory was not measured"
    return "the Observer itself: %.1f %% of the machine, RSS %.1f MB" % (100.0 * rss / total, rss)


# A delay spent waiting on a full pipe for at least this share is the Observer's back-pressure,
# not the generator's limit.
BACKPRESSURE_SHARE = 0.5
# What a level whose shape the generator did not deliver is not judged on: the Observer's
# performance under a load it was not offered. Integrity, contract and errors still are.
# CPU and memory are the machine's whatever the load: still judged (an Observer that starves
# the machine can starve the generator too).
PERFORMANCE_CRITERIA = ("min_throughput", "max_latency_ms", "max_visibility_ms")


def generator_bound(metrics: dict, limits: dict) -> str:
    """Why the load generator did not deliver the level's shape, or "" when it did: sent later
    than its bounds (``limits``), without the Observer's full pipe to account for the delay."""
    limits = {**RUN_LIMITS, **(limits or {})}
    delivery = metrics.get("delivery") or {}
    for burst in delivery.get("bursts") or []:
        overrun = burst["delivered_ms"] - delivery.get("burst_window_ms", 0.0)
        if (
            overrun > limits["generator_max_burst_overrun_ms"]
            and burst["blocked_ms"] < BACKPRESSURE_SHARE * overrun
        ):
            return (
                "the load generator could not deliver burst %d: %d snapshots due within %g ms "
                "took %.1f ms to send (bound: %g ms past the window), only %.1f ms of it waiting "
                "on the pipe"
                % (burst["burst"], burst["size"], delivery.get("burst_window_ms", 0.0),
                   burst["delivered_ms"], limits["generator_max_burst_overrun_ms"],
                   burst["blocked_ms"])
            )  # fmt: skip
    lateness = (metrics.get("send_lateness_ms") or {}).get("p99", 0.0)
    if lateness <= limits["generator_max_lateness_ms"]:
        return ""
    # How far behind its schedule the generator ended, and how much of that it spent waiting
    # for room in the pipe: a generator held back by a slow reader waits about all of it.
    lag = max(metrics.get("sending_s", 0.0) - metrics.get("duration_s", 0.0), lateness / 1000.0)
    blocked = metrics.get("blocked_s", 0.0)
    if blocked >= BACKPRESSURE_SHARE * lag:
        return ""
    return (
        "the load generator could not keep its schedule: send lateness p99 %.1f ms (bound %g ms),"
        " %.2f s behind, only %.2f s of it waiting on the pipe"
        % (lateness, limits["generator_max_lateness_ms"], lag, blocked)
    )


def visibility_p99(metrics: dict) -> float | None:
    """The p99 of the time the level's records took to become visible from when the generator
    was ready to send each (its own lateness left out), or None when not followed."""
    return ((metrics.get("freshness") or {}).get("observer_visibility_ms") or {}).get("p99")


def _unseen(metrics: dict) -> str:
    unseen = (metrics.get("freshness") or {}).get("unseen") or 0
    return (
        " (%d record(s) never seen, counted as seen when the follower gave up)" % unseen
        if (unseen)
        else ""
    )


def judged_latency(metrics: dict) -> tuple[float | None, str]:
    """The p99 a level's latency limit is judged on, and what it is: the Observer's own
    processing latency; where it reports none, when its records became visible (an upper
    bound of its receipt-to-dispatch time, labelled as such)."""
    p99 = (metrics.get("latency_ms") or {}).get("p99")
    if p99 is not None:
        return p99, "processing latency"
    visible = visibility_p99(metrics)
    if visible is not None:
        return visible, "visibility latency (the Observer reports none of its own; an upper bound)"
    return None, ""


def _visibility_unmeasured(metrics: dict, thresholds: dict) -> list[dict]:
    """A visibility limit with nothing to judge it on."""
    if thresholds.get("max_visibility_ms") is None or visibility_p99(metrics) is not None:
        return []
    return [_unmeasured("visibility", "no record of the level was seen in the records files")]


def freshness_flags(metrics: dict) -> list[str]:
    """What the Observer says of itself that its records contradict: a processing latency
    above the time its records took to become visible from their intended send."""
    own = (metrics.get("latency_ms") or {}).get("p99")
    visible = visibility_p99(metrics)
    if own is None or visible is None or own <= visible:
        return []
    return [
        "the Observer's own p99 processing latency %.3f ms is above the p99 visibility latency "
        "of its records, %.3f ms: it reports more than it takes" % (own, visible)
    ]


def level_unmeasured(metrics: dict) -> list[dict]:
    """What one level could not measure, each with the reason."""
    if metrics.get("failure"):
        return []  # a crash is a FAIL whatever else is missing
    missing = []
    if metrics.get("generator_bound"):
        missing.append(_unmeasured("delivery", metrics["generator_bound"]))
    if not metrics.get("sent"):
        missing.append(_unmeasured("load", "no snapshot was sent during the level"))
    elif not metrics.get("written"):
        missing.append(_unmeasured("latency", "no record of the level was written"))
    elif judged_latency(metrics)[0] is None:
        missing.append(
            _unmeasured(
                "latency",
                "this Observer records no processing latency, in its records or its log",
            )
        )
    if metrics.get("samples", 0) < MIN_SAMPLES:
        missing.append(
            _unmeasured(
                "resources",
                "%d monitor sample(s) during the level (at least %d needed)"
                % (metrics.get("samples", 0), MIN_SAMPLES),
            )
        )
    return missing


def _latency_breaches(metrics: dict, thresholds: dict) -> list[dict]:
    """The level's latency limit (on the Observer's own latency, else on visibility) and its
    visibility limit, when it has one."""
    breaches = []
    p99, kind = judged_latency(metrics)
    if metrics.get("written") and p99 is not None and p99 >= thresholds["max_latency_ms"]:
        breaches.append(
            _breach(
                "max_latency_ms",
                p99,
                thresholds["max_latency_ms"],
                "p99 %s %.3f ms not under %g ms%s"
                % (
                    kind,
                    p99,
                    thresholds["max_latency_ms"],
                    _unseen(metrics) if kind.startswith("visibility") else "",
                ),
            )
        )
    visible = visibility_p99(metrics)
    limit = thresholds.get("max_visibility_ms")
    if limit is not None and visible is not None and visible >= limit:
        breaches.append(
            _breach(
                "max_visibility_ms", visible, limit,
                "p99 visibility latency %.3f ms not under %g ms%s"
                % (visible, limit, _unseen(metrics)),
            )
        )  # fmt: skip
    return breaches


def judge_level(metrics: dict, thresholds: dict, limits: dict | None = None) -> list[dict]:
    """Every breach of one level, in a stable order."""
    limits = {**RUN_LIMITS, **(limits or {})}
    breaches = []
    if metrics.get("failure"):
        breaches.append(
            _breach("process_failure", metrics["failure"], "Observer alive", metrics["failure"])
        )
    if not metrics.get("sent"):
        return breaches  # nothing offered: nothing else can be judged (see level_unmeasured)
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
    breaches += _latency_breaches(metrics, thresholds)
    if metrics.get("samples", 0) >= MIN_SAMPLES:
        for key, name, limit_key, resource in (
            ("cpu_pct", "CPU", "max_cpu_pct", "cpu"),
            ("memory_pct", "memory", "max_memory_pct", "memory"),
        ):
            value = metrics[key]["sustained"]
            if under_limit(value, thresholds[limit_key]):
                continue
            breaches.append(
                _breach(
                    limit_key,
                    value,
                    thresholds[limit_key],
                    "sustained %s %.1f %% not under %g %% (%s)"
                    % (name, value, thresholds[limit_key], observer_share(metrics, resource)),
                )
            )
    for key in ("lost", "duplicated", "modified"):
        if metrics[key] > 0:
            breaches.append(
                _breach(
                    "integrity_" + key,
                    metrics[key],
                    0,
                    "%d snapshot(s) %s (of %d sent)" % (metrics[key], key, metrics["sent"]),
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
    if metrics.get("decision_fields"):
        breaches.append(
            _breach(
                "contract_decision",
                metrics["decision_fields"],
                [],
                "records carry decision fields (the Observer must be judgment-free): %s"
                % ", ".join(metrics["decision_fields"]),
            )
        )
    rate = metrics["error_rate_pct"]
    if rate >= limits["max_error_rate_pct"]:
        breaches.append(
            _breach(
                "error_rate",
                rate,
                limits["max_error_rate_pct"],
                "error rate %.3f %% not under %g %%" % (rate, limits["max_error_rate_pct"]),
            )
        )
    return breaches


# The figures a level is judged on, as stress_measure returns them.
LEVEL_FIGURES = (
    "rate",
    "sent",
    "written",
    "lost",
    "duplicated",
    "modified",
    "throughput",
    "latency_ms",
    "cpu_pct",
    "memory_pct",
    "error_rate_pct",
)


def allowed_loss(fault: dict, rate: float) -> int | None:
    """How many snapshots a fault may lose: its ``max_lost``; else none, but for a kill the
    Observer's loss window at the level's rate (None: no window known)."""
    if fault.get("max_lost") is not None:
        return int(fault["max_lost"])
    if fault["type"] != "kill":
        return 0
    window = fault.get("loss_window")
    if not window:
        return None
    return min(math.ceil(rate * window["window_ms"] / 1000.0), window["max_buffer_size"])


def _fault_breaches(fault: dict, allowed: int | None) -> tuple[list[dict], list[dict]]:
    """(breaches, not measured) of one counted fault."""
    breaches, unmeasured = [], []
    if allowed is None:
        unmeasured.append(_unmeasured("fault_lost", "no loss window known for this Observer "
                                      "(its configuration is not the reference's): set max_lost"))  # fmt: skip
    elif fault["lost"] > allowed:
        breaches.append(_breach("fault_lost", fault["lost"], allowed, "%d snapshot(s) lost, at "
                                "most %d allowed" % (fault["lost"], allowed)))  # fmt: skip
    for key in ("duplicated", "modified"):
        if fault[key]:
            breaches.append(
                _breach("fault_" + key, fault[key], 0, "%d snapshot(s) %s" % (fault[key], key))
            )
    if fault.get("recovery_s") is None:
        if fault.get("band_p99_ms") is None:
            unmeasured.append(_unmeasured("fault_recovery", "no record seen before the fault "
                                          "(records not followed): no band to recover to"))  # fmt: skip
        else:
            breaches.append(_breach("fault_recovery", None, fault["max_recovery_s"],
                                    "not recovered before the level ended"))  # fmt: skip
    elif fault["recovery_s"] > fault["max_recovery_s"]:
        breaches.append(_breach("fault_recovery", fault["recovery_s"], fault["max_recovery_s"],
                                "recovered after %.1f s, over %g s" % (fault["recovery_s"], fault["max_recovery_s"])))  # fmt: skip
    return breaches, unmeasured


def judge_fault(fault: dict, rate: float) -> dict:
    """One planned fault judged against what the Observer promises: nothing lost (a kill: at
    most its loss window), nothing duplicated or changed, back and recovered in time."""
    allowed = allowed_loss(fault, rate)
    breaches: list[dict] = []
    unmeasured: list[dict] = []
    if fault.get("applied_s") is None:
        unmeasured.append(_unmeasured("fault_applied", fault.get("error") or "not applied"))
    elif fault["type"] in RESTARTING_FAULTS and fault.get("back_at_s") is None:
        breaches.append(_breach("fault_back", None, fault["back_within_s"],
                                fault.get("error") or "the Observer was not back"))  # fmt: skip
    elif not fault.get("counted"):
        unmeasured.append(_unmeasured("fault_counts", "the ledger's send times are missing"))
    else:
        breaches, unmeasured = _fault_breaches(fault, allowed)
    return dict(fault, allowed_lost=allowed, breaches=breaches, not_measured=unmeasured,
                verdict=verdict_of(bool(breaches), bool(unmeasured)))  # fmt: skip


def fault_line(fault: dict) -> str:
    """A judged fault in one line, its figures each said or "-"."""

    def said(key: str, pattern: str) -> str:
        value = fault.get(key)
        return pattern % value if isinstance(value, (int, float)) else "-"

    texts = [b["message"] for b in fault["breaches"]]
    texts += ["NOT MEASURED %s: %s" % (u["criterion"], u["reason"]) for u in fault["not_measured"]]
    return "%s %s: sent %s lost %s/%s dup %s mod %s late %s back %s s recovery %s s drain %s s%s" % (
        fault["name"], fault["verdict"], said("sent", "%d"), said("lost", "%d"),
        said("allowed_lost", "%d"), said("duplicated", "%d"), said("modified", "%d"),
        said("late", "%d"), said("back_s", "%.2f"), said("recovery_s", "%.2f"),
        said("drain_s", "%.2f"), ": " + "; ".join(texts) if texts else "",
    )  # fmt: skip


# -- trends (a soak's: module_utils/trends.py) --------------------------------------------------


def _trend_limit(name: str, fitted: dict, *, context: dict, metrics: dict, limits: dict,
                 thresholds: dict) -> tuple[float | None, str]:  # fmt: skip
    """A series' limit when stress_trends.limits names none, and where it comes from."""
    if name == "rss_mb":
        total, used = metrics.get("memory_total_mb"), context.get("memory_pct")
        if not total or used is None:
            return None, "the host's memory was not measured"
        headroom = max(limits.get("max_memory_pct", RUN_LIMITS["max_memory_pct"]) - used, 0.0)
        return round(fitted["fitted_end"] + total * headroom / 100.0, 3), (
            "the host's memory left under max_memory_pct"
        )
    if name == "open_files":
        return context.get("open_files_limit"), "its RLIMIT_NOFILE"
    if name == "records_mb":
        free = context.get("filesystem_free_mb")
        return (None if free is None else round(fitted["fitted_end"] + free, 3)), (
            "its filesystem's free space"
        )
    if name == "p99_ms":
        return thresholds.get("max_latency_ms"), "the level's max_latency_ms"
    return context.get("max_buffer_size"), "its max_buffer_size"


def _trend_text(trend: dict) -> str:
    """``Observer RSS +2.1 MB/h (1.7 to 2.5), reaches the 500 MB limit in 11.2 h``."""
    unit = trend["unit"]
    text = "%s %s%s %s/h (%s to %s)" % (
        trend["what"], "+" if trend["slope_per_h"] >= 0 else "", figure(trend["slope_per_h"]),
        unit, figure(trend["lower_per_h"]), figure(trend["upper_per_h"]),
    )  # fmt: skip
    if not growing(trend):
        return text + ", no growth beyond noise"
    if not trend["still_growing"]:
        return text + ", growth stopped (second half %s %s/h)" % (
            figure(trend["second_half_per_h"]), unit)  # fmt: skip
    if trend.get("rotation_bound_mb") is not None:
        return text + ", bounded by rotation near %s MB" % figure(trend["rotation_bound_mb"])
    if trend["hours_to_limit"] is not None:
        return text + ", reaches the %s %s limit in %.1f h" % (
            figure(trend["limit"]), unit, trend["hours_to_limit"])  # fmt: skip
    return text + ", no limit known"


def judge_trend(name: str, points: list, *, settings: dict, context: dict, metrics: dict,
                limits: dict, thresholds: dict) -> dict:  # fmt: skip
    """One series' trend judged: fails when still growing and either its slope's lower bound
    is over its tolerance or, growing at that lower bound, it reaches its limit before the
    horizon. Too few windows (or none: the Observer does not tell it) is NOT MEASURED."""
    what, unit = SERIES[name]
    trend: dict = {"series": name, "what": what, "unit": unit, "points": points}
    fitted = fit(points)
    if fitted is None:
        reason = ("%d window(s) after the warm-up, fewer than needed for an interval"
                  % len(points)) if points else "no sample of it during the level"  # fmt: skip
        return dict(trend, breaches=[], not_measured=[_unmeasured("trend_" + name, reason)],
                    verdict=NOT_MEASURED, message="%s NOT MEASURED: %s" % (what, reason))  # fmt: skip
    tolerance = settings["tolerances"].get(name)
    limit = settings["limits"].get(name)
    source = "stress_trends.limits"
    if limit is None:
        limit, source = _trend_limit(
            name, fitted, context=context, metrics=metrics, limits=limits, thresholds=thresholds
        )
    bound = rotation_bound_mb(fitted, context.get("rotation")) if name == "records_mb" else None
    if bound is not None and limit is not None and bound >= limit:
        bound = None  # rotation would stop it only past its limit
    trend.update(fitted, tolerance_per_h=tolerance, limit=limit, limit_source=source,
                 rotation_bound_mb=bound, still_growing=still_growing(fitted),
                 horizon_h=settings["horizon_h"],
                 hours_to_limit=hours_to(limit, fitted["fitted_end"], fitted["slope_per_h"]),
                 hours_to_limit_lower=hours_to(limit, fitted["fitted_end"], fitted["lower_per_h"]))  # fmt: skip
    if not trend["still_growing"] or bound is not None:
        # No growth that goes on, or one rotation stops: no time to the limit to speak of.
        trend["hours_to_limit"] = trend["hours_to_limit_lower"] = None
    breaches = []
    if trend["still_growing"] and tolerance is not None and fitted["lower_per_h"] > tolerance:
        breaches.append(_breach("trend_" + name, fitted["lower_per_h"], tolerance,
                                "%s: growing over the %g %s/h tolerance" % (_trend_text(trend), tolerance, unit)))  # fmt: skip
    at_least = trend["hours_to_limit_lower"]
    if (
        trend["still_growing"]
        and bound is None
        and at_least is not None
        and at_least < settings["horizon_h"]
    ):
        breaches.append(_breach("trend_%s_limit" % name, at_least, settings["horizon_h"],
                                "%s (at least in %.1f h), before the %g h horizon"
                                % (_trend_text(trend), at_least, settings["horizon_h"])))  # fmt: skip
    return dict(trend, breaches=breaches, not_measured=[], verdict=verdict_of(bool(breaches), False),
                message=breaches[0]["message"] if breaches else _trend_text(trend))  # fmt: skip


def judge_trends(metrics: dict, thresholds: dict, limits: dict) -> list[dict]:
    """Every trend of a level that has them (``trend_series``, its settings beside them)."""
    measured = metrics.get("trend_series")
    settings = metrics.get("trend_settings")
    if not measured or not settings:
        return []
    return [
        judge_trend(name, measured["series"].get(name) or [], settings=settings,
                    context=measured["context"], metrics=metrics, limits=limits,
                    thresholds=thresholds)
        for name in SERIES
    ]  # fmt: skip


class GateInputError(ValueError):
    """The figures or thresholds handed to the gate are incomplete."""


def judged_level(
    level: int, metrics: dict, thresholds: dict, limits: dict | None
) -> tuple[dict, str]:
    """One level judged: its figures with thresholds, breaches, what was not measured and the
    verdict, and the one line that names them."""
    missing = [key for key in LEVEL_FIGURES if key not in metrics]
    if missing:
        raise GateInputError(
            "metrics lack %s: pass qts_stress_metrics of qts.observer.stress_measure"
            % ", ".join(missing)
        )
    absent = [key for key in THRESHOLD_KEYS if key not in thresholds]
    if absent:
        raise GateInputError("thresholds lack %s" % ", ".join(absent))
    metrics = dict(metrics, generator_bound=generator_bound(metrics, limits or {}))
    breaches = judge_level(metrics, thresholds, limits)
    if metrics["generator_bound"]:
        breaches = [b for b in breaches if b["criterion"] not in PERFORMANCE_CRITERIA]
    unmeasured = level_unmeasured(metrics) + _visibility_unmeasured(metrics, thresholds)
    faults = [judge_fault(f, offered_rate(metrics)) for f in metrics.get("faults") or []]
    trends = judge_trends(metrics, thresholds, limits or RUN_LIMITS)
    verdict = combine(
        [verdict_of(bool(breaches), bool(unmeasured))]
        + [f["verdict"] for f in faults]
        + [t["verdict"] for t in trends]
    )
    flags = freshness_flags(metrics)
    judged = dict(
        metrics,
        latency_judged_on=judged_latency(metrics)[1] or None,
        flags=flags,
        level=level,
        thresholds=thresholds,
        breaches=breaches,
        not_measured=unmeasured,
        verdict=verdict,
    )
    if faults:
        judged["faults"] = faults
    judged.pop("trend_series", None)
    if trends:
        judged["trends"] = trends
    texts = [b["message"] for b in breaches]
    texts += [fault_line(f) for f in faults if f["verdict"] != PASS]
    texts += ["trend " + t["message"] for t in trends if t["verdict"] != PASS]
    texts += ["NOT MEASURED %s: %s" % (u["criterion"], u["reason"]) for u in unmeasured]
    texts += ["flagged: %s" % flag for flag in flags]
    if metrics.get("stopped_early_s"):
        texts.append("stopped early after %.0f s of %g s: judged on what ran"
                     % (metrics["stopped_early_s"], metrics.get("planned_duration_s") or 0))  # fmt: skip
    line = "level %s (%g/s) %s%s" % (
        level,
        metrics["rate"],
        verdict,
        ": " + "; ".join(texts) if texts else "",
    )
    return judged, line


# -- capacity steps ---------------------------------------------------------------------------

# What limits a capacity step, named by the gate's criterion it breaks first, in the order the
# limits are named: the first broken is the step's limit ("generator": the load generator's
# own, never the Observer's).
LIMITED_BY: dict[str, str] = {
    "process_failure": "stability",
    "generator": "generator",
    "integrity_lost": "integrity",
    "integrity_duplicated": "integrity",
    "integrity_modified": "integrity",
    "error_rate": "errors",
    "min_throughput": "throughput",
    "max_latency_ms": "latency",
    "max_cpu_pct": "cpu",
    "max_memory_pct": "memory",
}
LIMIT_ORDER = ("stability", "generator", "integrity", "errors", "throughput", "latency", "cpu",
               "memory")  # fmt: skip


def _delivery_breaches(step: dict, delivery: dict) -> list[dict]:
    """The generator's delivery: short of the offered rate, or late, with a full pipe to blame
    (the Observer's back-pressure: its throughput) or without one (generator-bound)."""
    rate, achieved = step["rate"], step["achieved_rate"]
    lateness = (step.get("lateness_ms") or {}).get("p99", 0.0)
    # What the schedule offered: random arrivals draw about the rate, a little more or less.
    planned, length = step.get("planned"), step["warmup_s"] + step["step_s"]
    random = delivery.get("arrivals") == "poisson" and planned and length > 0
    offered = planned / length if random else rate
    short = achieved < delivery["generator_min_ratio"] * offered
    late = lateness > delivery["generator_max_lateness_ms"]
    if not (short or late):
        return []
    # How far behind its schedule the generator ended, and how much of that it spent waiting
    # for room in the pipe: a generator held back by a slow reader waits about all of it.
    sending = step["finished_at"] - step["started_at"]
    lag = max(sending - step["warmup_s"] - step["step_s"], lateness / 1000.0, 1e-3)
    blocked = step.get("blocked_s", 0.0)
    detail = "achieved %.1f/s of %g/s offered, send lateness p99 %.1f ms, %.2f s behind" % (
        achieved, rate, lateness, lag)  # fmt: skip
    if blocked / lag >= delivery["backpressure_share"]:
        return [
            _breach(
                "min_throughput", achieved, rate,
                "back-pressure: %s, %.2f s of it waiting on a full pipe" % (detail, blocked),
            )
        ]  # fmt: skip
    return [
        _breach(
            "generator", achieved, rate,
            "the load generator could not deliver: %s, only %.2f s of it waiting on the pipe"
            % (detail, blocked),
        )
    ]  # fmt: skip


def judge_step(
    step: dict, thresholds: dict, limits: dict, delivery: dict
) -> tuple[list[dict], list[dict]]:
    """A capacity step judged as a level is (``judge_level`` against the step's
    ``thresholds``), after the generator's delivery (``delivery``: its bounds): its breaches,
    the step's limit first, and what it could not measure. The Observer's CPU is judged
    without the generator's, which shares its host; the contract is judged over the whole run,
    not as a step's limit."""
    figures = dict(
        step,
        cpu_pct=dict(step.get("cpu_pct") or {}, sustained=step["cpu_excluding_generator_pct"]),
        extra_fields=[],
        decision_fields=[],
    )
    breaches = _delivery_breaches(step, delivery) + judge_level(figures, thresholds, limits)
    breaches.sort(key=lambda b: LIMIT_ORDER.index(LIMITED_BY[b["criterion"]]))
    return breaches, level_unmeasured(figures)


def _criterion(name: str, verdict: str | bool, evidence: str, measured=None, limit=None) -> dict:
    if isinstance(verdict, bool):
        verdict = PASS if verdict else FAIL
    return {
        "name": name,
        "verdict": verdict,
        "evidence": evidence,
        "measured": measured,
        "limit": limit,
    }


def _levels_text(levels: list[dict], render: Callable[[dict], str]) -> str:
    return "; ".join("%g/s: %s" % (level["rate"], render(level)) for level in levels)


def _with_records(levels: list[dict]) -> list[dict]:
    return [lv for lv in levels if lv.get("written")]


def _stability(levels: list[dict], planned: int, start_pid, end_pid) -> dict:
    crashed = [lv for lv in levels if lv.get("failure")]
    evidence = "levels run %d/%d; Observer pid %s at start, %s at end%s" % (
        len(levels),
        planned,
        start_pid,
        end_pid,
        "; " + "; ".join(lv["failure"] for lv in crashed) if crashed else "",
    )
    if start_pid is None and not crashed:
        return _criterion("stability", NOT_MEASURED, "no Observer PID before the first level")
    # Planned kills and restarts (stress_faults) change the PID: the chain must be theirs.
    restarts = [r for lv in levels for r in lv.get("restarts") or []]
    chained = all(a["pid_after"] == b["pid_before"] for a, b in zip(restarts, restarts[1:]))
    same = (
        start_pid == end_pid
        if not restarts
        else (
            chained
            and restarts[0]["pid_before"] == start_pid
            and restarts[-1]["pid_after"] == end_pid
        )
    )
    if restarts:
        evidence += "; restarted by %d planned fault(s): %s" % (
            len(restarts),
            ", ".join("%s -> %s" % (r["pid_before"], r["pid_after"]) for r in restarts),
        )
    ok = not crashed and len(levels) == planned and same
    return _criterion("stability", ok, evidence)


def offered_rate(level: dict) -> float:
    """What a level offered per second on average: its rate, or for a shaped level what its
    schedule held over its length (a burst level's bursts count, random arrivals drew a little
    more or less than the rate)."""
    return level.get("offered_rate") or level["rate"]


def _delivered(levels: list[dict]) -> tuple[list[dict], str]:
    """The levels whose shape the generator delivered, and the note naming the others (their
    Observer figures are not measured)."""
    bound = [lv for lv in levels if lv.get("generator_bound")]
    note = "; not measured at %s (the load generator did not deliver the level)" % ", ".join(
        "%g/s" % lv["rate"] for lv in bound
    )
    return [lv for lv in levels if not lv.get("generator_bound")], note if bound else ""


def _scaling(all_levels: list[dict], limits: dict) -> dict:
    levels, note = _delivered(all_levels)
    if not any(lv.get("sent") for lv in levels):
        why = "no level was delivered" if note else "no level offered any load"
        return _criterion("scaling", NOT_MEASURED, why + note)
    ratios = [lv["throughput"] / offered_rate(lv) for lv in levels if lv.get("sent")]
    rising = all(
        b["throughput"] >= a["throughput"]
        for a, b in zip(levels, levels[1:])
        if offered_rate(b) > offered_rate(a) and b.get("sent") and a.get("sent")
    )
    return _criterion(
        "scaling",
        verdict_of(min(ratios) < limits["scaling_min_ratio"] or not rising, bool(note)),
        _levels_text(
            levels,
            lambda lv: (
                "%.3f/s (%.0f %%)" % (lv["throughput"], 100 * lv["throughput"] / offered_rate(lv))
            ),
        )
        + note,
        round(min(ratios), 4),
        limits["scaling_min_ratio"],
    )


def _resources(levels: list[dict], limits: dict) -> dict:
    # The machine's CPU and memory are judged at every level, the generator's delivery aside.
    note = ""
    measured = [lv for lv in levels if lv.get("samples", 0) >= MIN_SAMPLES]
    unmeasured = [lv for lv in levels if lv.get("samples", 0) < MIN_SAMPLES]
    if not measured:
        return _criterion("resources", NOT_MEASURED, "no level has monitor samples" + note)
    cpu_level = max(measured, key=lambda lv: lv["cpu_pct"]["sustained"])
    mem_level = max(measured, key=lambda lv: lv["memory_pct"]["sustained"])
    peak_cpu, peak_mem = cpu_level["cpu_pct"]["sustained"], mem_level["memory_pct"]["sustained"]
    failed = not under_limit(peak_cpu, limits["max_cpu_pct"]) or not under_limit(
        peak_mem, limits["max_memory_pct"]
    )
    evidence = (
        "highest sustained CPU %.1f %% at %g/s (limit %g; %s), memory %.1f %% at %g/s (limit %g; %s)"
        % (
            peak_cpu,
            cpu_level["rate"],
            limits["max_cpu_pct"],
            observer_share(cpu_level, "cpu"),
            peak_mem,
            mem_level["rate"],
            limits["max_memory_pct"],
            observer_share(mem_level, "memory"),
        )
    )
    if unmeasured:
        evidence += "; not measured at %s" % ", ".join("%g/s" % lv["rate"] for lv in unmeasured)
    return _criterion(
        "resources",
        verdict_of(failed, bool(unmeasured) or bool(note)),
        evidence + note,
        {"cpu_pct": peak_cpu, "memory_pct": peak_mem},
        {"cpu_pct": limits["max_cpu_pct"], "memory_pct": limits["max_memory_pct"]},
    )


def _error_rate(levels: list[dict], limits: dict) -> dict:
    sent = sum(lv["sent"] for lv in levels)
    if not sent:
        return _criterion("error_rate", NOT_MEASURED, "no snapshot was sent")
    errors = sum(lv["errors"] for lv in levels)
    error_rate = 100.0 * errors / sent
    return _criterion(
        "error_rate",
        error_rate < limits["max_error_rate_pct"],
        "%d error(s) for %d snapshots: %.4f %%" % (errors, sent, error_rate),
        round(error_rate, 4),
        limits["max_error_rate_pct"],
    )


def _integrity(levels: list[dict]) -> dict:
    sent = sum(lv["sent"] for lv in levels)
    if not sent:
        return _criterion("integrity", NOT_MEASURED, "no snapshot was sent")
    lost, duplicated, modified, written = (
        sum(lv[key] for lv in levels) for key in ("lost", "duplicated", "modified", "written")
    )
    return _criterion(
        "integrity",
        lost == duplicated == modified == 0,
        "%d sent, %d written once, %d lost, %d duplicated, %d modified"
        % (sent, written, lost, duplicated, modified),
    )


def _degradation_latency(level: dict) -> tuple[dict | None, bool]:
    """The latency a level's degradation is judged on, and whether it is its visibility (the
    Observer reports none of its own)."""
    if level.get("latency_ms"):
        return level["latency_ms"], False
    visible = (level.get("freshness") or {}).get("observer_visibility_ms")
    return (visible, True) if visible else (None, False)


def collapse_signs(level: dict, before: dict | None, limits: dict) -> list[str]:
    """Why a level, or a capacity step, collapsed rather than degraded (the spec's catastrophic
    degradation), each sign a phrase; none is a graceful degradation. ``before`` is the level
    under it, for the growth of its p99."""
    signs = []
    latency, visible = _degradation_latency(level)
    # The absolute limit is a processing latency's: a visibility latency holds the Observer's
    # flush interval by design. Its growth from level to level still tells a collapse.
    if latency and not visible and latency["max"] > limits["fail_latency_ms"]:
        signs.append(
            "%g/s: max latency %.1f ms over %g ms"
            % (level["rate"], latency["max"], limits["fail_latency_ms"])
        )
    if level["throughput"] < limits["collapse_throughput_ratio"] * offered_rate(level):
        signs.append(
            "%g/s: throughput %.3f/s under %g %% of the offered rate"
            % (level["rate"], level["throughput"], 100 * limits["collapse_throughput_ratio"])
        )
    earlier = _degradation_latency(before)[0] if before else None
    if latency and earlier:
        p99, floor = latency["p99"], max(earlier["p99"], 1e-3)
        if (
            p99 > limits["collapse_latency_floor_ms"]
            and p99 / floor > limits["collapse_latency_growth"]
        ):
            signs.append("%g/s: p99 jumped %.0fx to %.1f ms" % (level["rate"], p99 / floor, p99))
    return signs


def _graceful_degradation(all_levels: list[dict], limits: dict) -> dict:
    levels, note = _delivered(all_levels)
    judged = [lv for lv in _with_records(levels) if _degradation_latency(lv)[0] is not None]
    if not judged:
        return _criterion(
            "graceful_degradation",
            NOT_MEASURED,
            ("no level was delivered" if note and not levels
             else "no level wrote any record" if not _with_records(levels)
             else "this Observer records no processing latency, in its records or its log")
            + note,
        )  # fmt: skip
    collapses = [
        sign
        for previous, level in zip([None, *judged], judged)
        for sign in collapse_signs(level, previous, limits)
    ]
    return _criterion(
        "graceful_degradation",
        verdict_of(bool(collapses), bool(note)),
        ("; ".join(collapses)
         or _levels_text(judged, lambda lv: "%sp99 %.1f ms" % (
             "visibility " if _degradation_latency(lv)[1] else "",
             _degradation_latency(lv)[0]["p99"])))
        + note,
    )  # fmt: skip


def _recovery(baseline: dict | None, recovery: dict | None, limits: dict) -> dict:
    for name, window in (("baseline", baseline), ("recovery", recovery)):
        samples = (window or {}).get("samples", 0)
        if samples < MIN_SAMPLES:
            return _criterion(
                "recovery",
                NOT_MEASURED,
                "%d monitor sample(s) in the %s window (at least %d needed)"
                % (samples, name, MIN_SAMPLES),
            )
    if baseline is None or recovery is None:  # unreachable: no samples above
        raise AssertionError("recovery judged without a baseline or recovery window")
    cpu_gap = recovery["cpu_pct"]["sustained"] - baseline["cpu_pct"]["sustained"]
    mem_gap = recovery["memory_pct"]["sustained"] - baseline["memory_pct"]["sustained"]
    return _criterion(
        "recovery",
        cpu_gap <= limits["recovery_cpu_points"] and mem_gap <= limits["recovery_memory_points"],
        "CPU %.1f %% -> %.1f %% (allowed +%g), memory %.1f %% -> %.1f %% (allowed +%g)"
        % (
            baseline["cpu_pct"]["sustained"],
            recovery["cpu_pct"]["sustained"],
            limits["recovery_cpu_points"],
            baseline["memory_pct"]["sustained"],
            recovery["memory_pct"]["sustained"],
            limits["recovery_memory_points"],
        ),
        {"cpu_points": round(cpu_gap, 3), "memory_points": round(mem_gap, 3)},
        {
            "cpu_points": limits["recovery_cpu_points"],
            "memory_points": limits["recovery_memory_points"],
        },
    )


def _contract(levels: list[dict]) -> dict:
    if not _with_records(levels):
        return _criterion("contract", NOT_MEASURED, "no record was written to inspect")
    modified = sum(lv["modified"] for lv in levels)
    extra = sorted({field for lv in levels for field in lv.get("extra_fields", [])})
    decisions = sorted({field for lv in levels for field in lv.get("decision_fields", [])})
    evidence = "%d modified snapshot(s); fields beyond PatternRecord metadata: %s" % (
        modified,
        ", ".join(extra) or "none",
    )
    if decisions:
        evidence += "; decision fields: %s" % ", ".join(decisions)
    return _criterion("contract", modified == 0 and not extra and not decisions, evidence)


def _held_lost(after_stop: dict | None) -> tuple[int, str]:
    """Records the Observer had taken in and never wrote, and how the figure is known."""
    if not after_stop:
        return 0, ""
    held = after_stop.get("held_lost")
    if held is None:
        return 0, "; records held at the stop not counted (the Observer logs no dispatch line)"
    if not held:
        return 0, ""
    return (
        held,
        "; %d record(s) taken in and never written: lost at the stop (%d sent, %d missing)"
        % (
            held,
            after_stop.get("sent", 0),
            after_stop.get("missing", 0),
        ),
    )


def _clean_shutdown(shutdown: dict | None, after_stop: dict | None = None) -> dict:
    if shutdown is None:
        return _criterion("clean_shutdown", NOT_MEASURED, "the Observer was not stopped")
    if not shutdown.get("was_running", True):
        return _criterion(
            "clean_shutdown",
            NOT_MEASURED,
            "the Observer was not running when the run stopped it",
        )
    elapsed = shutdown.get("elapsed_s")
    ended = (
        "killed by signal %s" % shutdown["exit_signal"]
        if shutdown.get("exit_signal")
        else "exit status %s" % shutdown.get("exit_status")
    )
    held, held_text = _held_lost(after_stop)
    return _criterion(
        "clean_shutdown",
        bool(shutdown.get("stopped_cleanly")) and not held,
        "SIGTERM: %s after %s (timeout %s s)%s"
        % (
            ended,
            "%.2f s" % elapsed if isinstance(elapsed, (int, float)) else "an unmeasured time",
            shutdown.get("timeout_s"),
            held_text,
        ),
        elapsed,
        shutdown.get("timeout_s"),
    )


def _capacity(capacity: dict, min_capacity: float | None) -> dict:
    """The capacity search's result, against ``stress_min_capacity`` when one is set."""
    result = capacity.get("result")
    if not result:
        return _criterion("capacity", NOT_MEASURED, "the capacity search did not finish")
    best = result["highest_sustainable_rate"]
    evidence = "highest sustainable rate %s, %s%s" % (
        "%g/s" % best if best is not None else "none",
        result["summary"],
        "; limited by %s" % result["limited_by"] if result["limited_by"] else "",
    )
    if result["first_failing_rate"] is not None:
        evidence += "; first failing rate %g/s (%s)" % (
            result["first_failing_rate"],
            result["failed_how"],
        )
    if min_capacity:
        evidence += "; floor %g/s" % min_capacity
    generator_bound = result["ending"] == "generator"
    if best is None:
        # Nothing sustained: the Observer's failure, unless the generator could not even
        # deliver the start rate.
        return _criterion("capacity", NOT_MEASURED if generator_bound else FAIL, evidence)
    if min_capacity and best < min_capacity:
        # Generator-bound under the floor: the Observer's limit was never reached.
        verdict = NOT_MEASURED if generator_bound else FAIL
        return _criterion("capacity", verdict, evidence, best, min_capacity)
    return _criterion("capacity", PASS, evidence, best, min_capacity)


def judge_run(
    levels: list[dict],
    planned_levels: int,
    *,
    baseline: dict | None,
    recovery: dict | None,
    shutdown: dict | None,
    start_pid: int | None,
    end_pid: int | None,
    limits: dict | None = None,
    after_stop: dict | None = None,
    capacity: dict | None = None,
    min_capacity: float | None = None,
) -> list[dict]:
    """The spec's run-wide criteria, each with its evidence. With a capacity search
    (``capacity``: its state), its steps count for stability (the Observer must not die),
    integrity and the contract, and its result is the ``capacity`` criterion; a run of the
    search alone (no level planned) has no level to judge scaling, resources, error rate and
    degradation on: the search's steps judge those, and its result reports them."""
    limits = {**RUN_LIMITS, **(limits or {})}
    steps = (capacity or {}).get("steps", [])
    stability = _stability(levels + [s for s in steps if s.get("failure")],
                           planned_levels + sum(1 for s in steps if s.get("failure")),
                           start_pid, end_pid)  # fmt: skip
    criteria = [stability]
    if planned_levels or capacity is None:
        criteria += [
            _scaling(levels, limits),
            _resources(levels, limits),
            _error_rate(levels, limits),
        ]
    criteria.append(_integrity(levels + steps))
    if planned_levels or capacity is None:
        criteria.append(_graceful_degradation(levels, limits))
    criteria += [
        _recovery(baseline, recovery, limits),
        _contract(levels + steps),
        _clean_shutdown(shutdown, after_stop),
    ]
    if capacity is not None:
        criteria.append(_capacity(capacity, min_capacity))
    return criteria


def judged_run(levels: list[dict], planned_levels: int | None, **inputs) -> tuple[dict, str]:
    """A host's whole run judged: its run-wide criteria over its judged levels (``inputs``:
    those of ``judge_run``), the host's verdict over both, and the one line that names what
    did not pass."""
    criteria = judge_run(
        levels, len(levels) if planned_levels is None else planned_levels, **inputs
    )
    verdict = combine([c["verdict"] for c in criteria] + [lv.get("verdict") for lv in levels])
    reasons = [
        "level %s (%g/s): %s" % (lv.get("level"), lv.get("rate", 0), lv.get("verdict"))
        for lv in levels
        if lv.get("verdict") != PASS
    ]
    reasons += [
        "%s %s: %s" % (c["name"], c["verdict"], c["evidence"])
        for c in criteria
        if c["verdict"] != PASS
    ]
    host = {
        "verdict": verdict,
        "criteria": criteria,
        "observer": {"pid_start": inputs.get("start_pid"), "pid_end": inputs.get("end_pid")},
    }
    return host, "run-wide verdict %s%s" % (verdict, ": " + " | ".join(reasons) if reasons else "")
