# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stress run's plan, made once on the controller by the stress_plan action: the levels,
timings, limits and settings resolved and checked, every problem named."""

from __future__ import annotations

import os
import time

from ansible_collections.qts.observer.plugins.module_utils.artifacts import (
    RUN_ID,
    new_run_id,
    run_tag,
)
from ansible_collections.qts.observer.plugins.module_utils.capacity import resolve_settings
from ansible_collections.qts.observer.plugins.module_utils.faults import plan_faults
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (
    resolved_reference,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import (
    CAPACITY_PROFILES,
    MAX_LEVEL_DURATION_S,
    PROFILE_TIMINGS,
    SOAK_PROFILES,
    is_replay,
    resolve_levels,
    resolve_limits,
    resolve_timings,
    window_errors,
)
from ansible_collections.qts.observer.plugins.module_utils.snapshots import run_id_prefix
from ansible_collections.qts.observer.plugins.module_utils.trends import (
    MIN_WINDOWS,
    judged_span,
    trend_settings_errors,
)
from ansible_collections.qts.observer.plugins.plugin_utils.replay import replay_level

CALLBACK = "qts.observer.stress_report"


def _levels(params: dict, errors: list[str]) -> list[dict]:
    if params["profile"] not in PROFILE_TIMINGS:
        errors.append(
            "stress_profile must be one of %s, got %r"
            % (", ".join(sorted(PROFILE_TIMINGS)), params["profile"])
        )
        return []
    try:
        levels = resolve_levels(params["profile"], params["levels"] or None)
    except ValueError as exc:
        errors.append(str(exc))
        return []
    soak_s = params["settings"].get("soak_duration_s")
    if params["profile"] in SOAK_PROFILES and not params["levels"] and (_number(soak_s) or 0) > 0:
        for level in levels:
            level["duration_s"] = _number(soak_s)
    for number, level in enumerate(levels, start=1):
        if is_replay(level):
            errors += replay_level(level, "stress_levels[%d]" % number)
    return levels


def _trend_levels(params: dict, levels: list[dict], errors: list[str]) -> dict:
    """stress_trends, resolved; each level long enough for them gets them (``trends``), and a
    soak's level too short for them is refused."""
    settings, trend_errors = trend_settings_errors(params.get("trends"))
    errors += trend_errors
    soak = params["profile"] in SOAK_PROFILES
    for number, level in enumerate(levels, start=1):
        span = judged_span(level.get("duration_s") or 0.0, settings)
        level["trends"] = settings if span >= MIN_WINDOWS and not trend_errors else None
        if soak and not trend_errors and span < MIN_WINDOWS:
            errors.append(
                "level %d (%g s) is too short for its trends: after the warm-up "
                "(stress_trends.warmup_s, %g s) it must hold %d windows of "
                "stress_trends.window_s (%g s), at least %g s"
                % (number, level.get("duration_s") or 0.0, settings["warmup_s"], MIN_WINDOWS,
                   settings["window_s"], settings["warmup_s"] + MIN_WINDOWS * settings["window_s"])
            )  # fmt: skip
    return settings


BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True}
BOOLEAN_WORDS.update({"false": False, "no": False, "off": False, "0": False})
BOOLEAN_SETTINGS = ("abort_on_breach", "any_errors_fatal", "keep_host_files", "capacity_search")
# Setting -> (lowest, whether the lowest is allowed, highest).
NUMBER_SETTINGS = {
    "progress_interval_s": (0.0, False, 10.0),
    "settle_s": (0.0, True, None),
    "start_delay_s": (0.0, True, None),
    "min_capacity": (0.0, True, None),
    "soak_duration_s": (0.0, False, MAX_LEVEL_DURATION_S),
}


def _boolean(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    return BOOLEAN_WORDS.get(str(value).strip().lower())


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def check_settings(settings: dict, errors: list[str]) -> dict:
    """The settings, normalised; each bad value named in ``errors``."""
    checked: dict = {}
    for key in BOOLEAN_SETTINGS:
        if key in settings:
            value = _boolean(settings[key])
            if value is None:
                errors.append(
                    "stress_%s must be a boolean (true/false/yes/no/on/off/1/0), got %r"
                    % (key, settings[key])
                )
            checked[key] = bool(value)
    for key, (lowest, inclusive, highest) in NUMBER_SETTINGS.items():
        if key not in settings:
            continue
        value = _number(settings[key])
        too_low = value is not None and (value < lowest or (value == lowest and not inclusive))
        if value is None or too_low or (highest is not None and value > highest):
            errors.append(
                "stress_%s must be a number %s %g%s, got %r"
                % (
                    key,
                    ">=" if inclusive else ">",
                    lowest,
                    " and at most %g" % highest if highest is not None else "",
                    settings[key],
                )
            )
        checked[key] = value
    paths = settings.get("paths") or {}
    for name, path in sorted(paths.items()):
        if not isinstance(path, str) or not os.path.isabs(path) or "\n" in path:
            errors.append("%s must be an absolute path, got %r" % (name, path))
    checked["paths"] = paths
    return checked


def plan_run(params: dict) -> tuple[dict, list[str]]:
    """The run's plan and every problem with it."""
    errors: list[str] = []
    levels = _levels(params, errors)
    timings, timing_errors = resolve_timings(params["profile"], params["timings"])
    limits, limit_errors = resolve_limits(params["limits"])
    errors += timing_errors + limit_errors
    if not timing_errors:
        errors += window_errors(levels, timings)
    settings = check_settings(params["settings"], errors)
    search, search_errors = resolve_settings(params["capacity"])
    errors += search_errors
    hosts, forks = params["hosts"], params["forks"]
    if forks is not None and forks < len(hosts):
        errors.append(
            "%d hosts but only %d forks: the levels would start host batch after host batch, "
            "not together. Run with --forks %d (or ANSIBLE_FORKS, or forks in ansible.cfg)"
            % (len(hosts), forks, len(hosts))
        )
    resolved = params["interface"] or {"interface": resolved_reference(), "errors": []}
    errors += resolved.get("errors") or []
    run_id = params["run_id"] or new_run_id()
    if not RUN_ID.match(run_id):
        errors.append("run_id may hold only letters, digits, '.', '_' and '-', got %r" % run_id)
        run_id = new_run_id()
    faults, fault_errors = plan_faults(params.get("faults"), levels, hosts)
    errors += fault_errors
    trends = _trend_levels(params, levels, errors)
    started = time.time()
    tag = run_tag(run_id)
    for number, level in enumerate(levels, start=1):
        level["run_id_prefix"] = run_id_prefix(tag, number)
        level["faults"] = [f for f in faults if f["level"] == number]
    capacity = None
    if params["profile"] in CAPACITY_PROFILES or settings.get("capacity_search"):
        # The search's steps are levels numbered after the fixed ones (one run_id format).
        capacity = {
            "settings": search,
            "level_base": len(levels),
            "min_capacity": settings.get("min_capacity") or 0.0,
        }
    plan = {
        "run_id": run_id,
        "run_tag": tag,
        "run_id_prefix": run_id_prefix(tag),
        "artifacts_dir": os.path.join(os.path.abspath(params["artifacts_dir"]), run_id),
        "profile": "custom" if params["levels"] else params["profile"],
        "levels": levels,
        "faults": faults,
        "trends": trends,
        "capacity": capacity,
        "timings": timings,
        "limits": limits,
        "seed": params["seed"],
        "hosts": hosts,
        "settings": settings,
        "interface": resolved.get("interface") or resolved_reference(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "started_epoch": started,
    }
    return plan, errors
