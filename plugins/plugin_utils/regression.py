# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Regressions against a baseline run: each level's figures compared with the baseline's.

A regression needs both: the per-second samples differ in the worse direction by a one-sided
Mann-Whitney U test (``mann_whitney``, as scipy's; ``ALPHA``), and the change is at least the metric's minimum
effect (p99 latency or the Observer's CPU up, throughput down, by 20 % and an absolute floor). Noise between
two runs of the same configuration passes the first rarely and the second almost never;
``make bench-regression`` measures the false alarm rate. Runs on the controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.trends import figure
from ansible_collections.qts.observer.plugins.module_utils.verdicts import (
    FAIL,
    NOT_MEASURED,
    PASS,
    verdict_of,
)
from ansible_collections.qts.observer.plugins.plugin_utils import mann_whitney
from ansible_collections.qts.observer.plugins.plugin_utils.history import (
    comparable_runs,
    host_run,
    level_row,
    levels_key,
    trend_key,
)

ALPHA = 0.01
MIN_SAMPLES = 5
# metric -> (per-second samples, level figure of the effect, worse direction, minimum
# relative change, minimum absolute change in the figure's unit).
METRICS: dict[str, tuple[str, str, str, float, float]] = {
    "p99_latency_ms": ("p99_ms", "p99_ms", "up", 0.20, 1.0),
    "throughput": ("written", "throughput", "down", 0.20, 0.0),
    # The Observer's own CPU (percent of one core): the machine's moves with its neighbours.
    "observer_cpu_pct": ("observer_cpu_pct", "observer_cpu_pct", "up", 0.20, 5.0),
}


def _check(
    metric: str,
    number: int,
    current: Mapping[str, Any],
    baseline: Mapping[str, Any],
    baseline_run: str,
) -> dict:
    samples_key, figure, worse, relative, absolute = METRICS[metric]
    check = {
        "level": number, "rate": current.get("rate"), "metric": metric,
        "baseline_run": baseline_run, "baseline": baseline.get(figure),
        "current": current.get(figure), "change_pct": None, "p_value": None,
        "direction": "%s is worse" % worse,
    }  # fmt: skip
    now_samples = [float(v) for v in (current["samples"].get(samples_key) or [])]
    then_samples = [float(v) for v in (baseline["samples"].get(samples_key) or [])]
    if check["current"] is None or check["baseline"] is None:
        return dict(check, verdict=NOT_MEASURED, message="%s not measured in both runs" % metric)
    if min(len(now_samples), len(then_samples)) < MIN_SAMPLES:
        return dict(check, verdict=NOT_MEASURED,
                    message="%s: fewer than %d per-second samples (%d now, %d in the baseline)"
                    % (metric, MIN_SAMPLES, len(now_samples), len(then_samples)))  # fmt: skip
    p_value = mann_whitney.p_value(
        now_samples, then_samples, "greater" if worse == "up" else "less"
    )
    change = check["current"] - check["baseline"]
    worse_by = change if worse == "up" else -change
    ratio = worse_by / abs(check["baseline"]) if check["baseline"] else float("inf")
    check["change_pct"] = (
        round(100.0 * change / check["baseline"], 2) if check["baseline"] else None
    )
    check["p_value"] = round(p_value, 6)
    regressed = p_value < ALPHA and ratio >= relative and worse_by >= absolute
    check["verdict"] = verdict_of(regressed, False)
    check["message"] = "L%d (%g/s) %s: %s -> %s (%s), Mann-Whitney p=%.2g%s" % (
        number, current.get("rate") or 0, metric, _figure(check["baseline"]),
        _figure(check["current"]),
        "%+.1f %%" % check["change_pct"] if check["change_pct"] is not None else "from 0",
        p_value,
        ": a regression against %s (%s; at least %g %% worse needed)"
        % (baseline_run, check["direction"], 100 * relative) if regressed else "",
    )  # fmt: skip
    return check


# A fault's times, compared with the baseline's same fault (one figure each, no samples): worse
# by at least this share and this many seconds is a regression. Its losses are not compared:
# a kill's depends on where in the flush interval it fell.
FAULT_METRICS = ("back_s", "recovery_s")
FAULT_MIN_RELATIVE = 0.5
FAULT_MIN_SECONDS = 1.0


def _fault_check(metric: str, current: Mapping[str, Any], baseline: Mapping[str, Any],
                 baseline_run: str) -> dict:  # fmt: skip
    now, then = current.get(metric), baseline.get(metric)
    check = {"level": current.get("level"), "rate": None, "metric": "%s %s" % (current.get("name"), metric),
             "baseline_run": baseline_run, "baseline": then, "current": now, "change_pct": None,
             "p_value": None, "direction": "up is worse"}  # fmt: skip
    if now is None or then is None:
        return dict(
            check, verdict=NOT_MEASURED, message="%s not measured in both runs" % check["metric"]
        )
    check["change_pct"] = round(100.0 * (now - then) / then, 2) if then else None
    regressed = now - then >= FAULT_MIN_SECONDS and (
        not then or (now - then) / then >= FAULT_MIN_RELATIVE
    )
    check["verdict"] = verdict_of(regressed, False)
    check["message"] = "%s: %.2f -> %.2f s%s" % (
        check["metric"], then, now,
        ": a regression against %s (at least %g s and %g %% longer)"
        % (baseline_run, FAULT_MIN_SECONDS, 100 * FAULT_MIN_RELATIVE) if regressed else "",
    )  # fmt: skip
    return check


def _trend_check(key: str, trend: Mapping[str, Any], then: Mapping[str, Any],
                 baseline_run: str) -> dict:  # fmt: skip
    """A trend's slope against the baseline's same trend: a regression when its whole interval
    is above the baseline's and it grows faster by more than its tolerance (a leak that was
    not there, or grew)."""
    check = {"level": trend.get("level"), "metric": "trend %s slope" % key.split(".", 1)[1],
             "baseline_run": baseline_run, "baseline": then.get("slope_per_h"),
             "current": trend.get("slope_per_h"), "change_pct": None, "p_value": None,
             "direction": "up is worse"}  # fmt: skip
    figures = [trend.get(k) for k in ("slope_per_h", "lower_per_h")]
    figures += [then.get(k) for k in ("slope_per_h", "upper_per_h")]
    if any(value is None for value in figures):
        return dict(check, verdict=NOT_MEASURED,
                    message="%s not measured in both runs" % check["metric"])  # fmt: skip
    now, lower, before, upper = figures
    tolerance = trend.get("tolerance_per_h") or 0.0
    regressed = lower > upper and now - before > tolerance
    check["verdict"] = verdict_of(regressed, False)
    check["message"] = "%s: %s%s -> %s%s %s/h%s" % (
        check["metric"], "+" if before >= 0 else "", figure(before), "+" if now >= 0 else "",
        figure(now), trend.get("unit") or "",
        ": a regression against %s (its interval above the baseline's, by more than %g/h)"
        % (baseline_run, tolerance) if regressed else "",
    )  # fmt: skip
    return check


def _figure(value: Any) -> str:
    return "%.3g" % value if isinstance(value, (int, float)) else str(value)


def compare(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> list[dict]:
    """Every check of every level both runs have (rows as history.host_run gives them)."""
    checks = []
    for number, level in sorted(current["levels"].items()):
        then = baseline["levels"].get(number)
        if then is None:
            continue
        for metric in METRICS:
            checks.append(_check(metric, number, level, then, baseline["run_id"]))
    for number, fault in sorted((current.get("faults") or {}).items()):
        then = (baseline.get("faults") or {}).get(number)
        if then is None or then.get("type") != fault.get("type"):
            continue
        for metric in FAULT_METRICS:
            if fault.get("type") in ("kill", "restart") or metric != "back_s":
                checks.append(_fault_check(metric, fault, then, baseline["run_id"]))
    for key, trend in sorted((current.get("trends") or {}).items()):
        then = (baseline.get("trends") or {}).get(key)
        if then is not None:
            checks.append(_trend_check(key, trend, then, baseline["run_id"]))
    return checks


def summary(checks: list[dict]) -> str:
    regressions = [c for c in checks if c["verdict"] == FAIL]
    if not checks:
        return "no check"
    return "%d check(s), %d regression(s)%s" % (
        len(checks), len(regressions),
        ": " + "; ".join(c["message"] for c in regressions) if regressions else "")  # fmt: skip


BASELINE_CHOICES = ("previous", "none")


def _baseline_of(
    history_path: str,
    report: Mapping[str, Any],
    host: str,
    entry: Mapping[str, Any],
    baseline: str,
) -> tuple[dict | None, str]:
    """The baseline run of one host, or None and why there is none."""
    identity = entry.get("observer_identity") or {}
    levels = report.get("levels_planned") or []
    if baseline == "none":
        return None, "no baseline (stress_baseline: none)"
    if baseline == "previous":
        earlier = comparable_runs(
            history_path, host, levels, identity, report["started_at"], limit=1
        )
        if not earlier:
            return None, "no earlier comparable run (same levels, Observer and host) in %s" % (
                history_path)  # fmt: skip
        return host_run(history_path, earlier[0], host), ""
    found = host_run(history_path, baseline, host)
    if found is None:
        return None, "baseline run %s has no record of %s in %s" % (baseline, host, history_path)
    if found["levels"] == {} or found["levels_key"] != levels_key(levels):
        return None, "baseline run %s is not comparable: other levels" % baseline
    if found["code_digest"] != identity.get("code_digest"):
        return None, "baseline run %s is not comparable: another Observer (code digest)" % baseline
    return found, ""


def judge(report: dict, history_path: str, baseline: str, fail_on_regression: bool) -> None:
    """Add each host's regression checks to the report; with ``fail_on_regression`` a host
    with a regression fails, named in the run's reasons."""
    for host, entry in (report.get("hosts") or {}).items():
        if not entry.get("levels"):
            continue
        found, why = _baseline_of(history_path, report, host, entry, baseline)
        if found is None:
            entry["regression"] = {"baseline": None, "checks": [], "summary": why}
            if fail_on_regression and baseline not in BASELINE_CHOICES and entry["verdict"] == PASS:
                # A baseline named and not usable: the gate asked for could not be applied.
                entry["verdict"] = NOT_MEASURED
                report["reasons"].append("%s: regression check NOT MEASURED: %s" % (host, why))
                report["verdict"] = FAIL
            continue
        current = {
            "run_id": report["run_id"],
            # A level the generator did not deliver was not the load compared with.
            "levels": {
                lv.get("level"): level_row(lv)
                for lv in entry["levels"]
                if not lv.get("generator_bound")
            },
            "faults": {f.get("fault"): f for lv in entry["levels"] for f in lv.get("faults") or []},
            "trends": {
                trend_key(dict(t, level=lv.get("level"))): dict(t, level=lv.get("level"))
                for lv in entry["levels"]
                for t in lv.get("trends") or []
            },
        }
        checks = compare(current, found)
        text = summary(checks)
        if found["config_digest"] != (entry.get("observer_identity") or {}).get("config_digest"):
            text += "; the Observer's configuration differs from the baseline's"
        entry["regression"] = {"baseline": found["run_id"], "checks": checks, "summary": text}
        if not fail_on_regression:
            continue
        regressions = [c for c in checks if c["verdict"] == FAIL]
        unmeasured = [c for c in checks if c["verdict"] == NOT_MEASURED]
        if regressions:
            entry["verdict"] = FAIL
            report["reasons"].append(
                "%s: regression %s" % (host, ", ".join(c["message"] for c in regressions))
            )
        elif unmeasured and entry["verdict"] == PASS:
            # Gated on regressions, a check that could not be made is not a pass.
            entry["verdict"] = NOT_MEASURED
            report["reasons"].append(
                "%s: regression check NOT MEASURED: %s"
                % (host, ", ".join(c["message"] for c in unmeasured))
            )
        if report["reasons"]:
            report["verdict"] = FAIL
