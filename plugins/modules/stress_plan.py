#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: validate the stress run's variables and open its artifacts folder."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_plan
short_description: Validate a stress run's variables and open its artifacts folder
version_added: "0.1.0"
description:
  - Runs once on the controller before anything is started. Resolves the levels to run
    (O(levels) when given, else the named O(profile), whose levels and thresholds are the
    spec's table kept in C(plugins/module_utils/profile.py)), the timings and the run-wide
    O(limits), and validates them. A rate or duration that is not above zero, an unknown key,
    a missing threshold, or a window that could not be measured (a level shorter than the
    sustained window, a baseline or recovery window without enough samples) fails here, with
    every problem named, and nothing is started.
  - Creates C(<artifacts_dir>/<run_id>/), also when it refuses the run, so that
    M(qts.observer.stress_verdict) can write the refused run's report there.
    C(<artifacts_dir>/latest) is moved only once a report is written.
  - Returns C(qts_stress_run), and C(errors) naming every problem; the run is refused when
    C(errors) is not empty (the task itself does not fail; the stress role shows the errors,
    ends the play, and the refused run's report says why).
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
attributes:
  check_mode:
    support: full
    details: Validates and returns the plan without creating the artifacts folder.
  diff_mode:
    support: none
options:
  profile:
    description: >-
      Named profile, V(full) (the spec, about 22 minutes), V(smoke) (about a minute) or
      V(capacity) (no fixed level: the capacity search alone, at most 10 minutes by default).
    type: str
    default: full
  levels:
    description: "Levels overriding the profile, each C({rate, duration_s, thresholds: {min_throughput, max_latency_ms, max_cpu_pct, max_memory_pct}})."
    type: raw
    default: []
  timings:
    description: Overrides of the profile's C(cooldown_s), C(setup_wait_s), C(final_cooldown_s) and C(sustained_window_s) (null keeps the profile's).
    type: dict
    default: {}
  limits:
    description: "Overrides of the spec's run-wide limits (C(RUN_LIMITS) in C(plugins/module_utils/profile.py)), for example C({max_cpu_pct: 100})."
    type: dict
    default: {}
  seed:
    description: Seed of the simulation.
    type: int
    default: 0
  artifacts_dir:
    description: Folder that receives one sub-folder per run.
    type: path
    default: artifacts
  run_id:
    description: Name of the run's folder (default a UTC timestamp).
    type: str
  hosts:
    description: The hosts of the run, echoed in C(qts_stress_run) for the report.
    type: list
    elements: str
    default: []
  settings:
    description:
      - The run's other variables, checked here so that a bad value refuses the run (with a
        report saying why) before anything starts.
      - C(abort_on_breach), C(any_errors_fatal), C(keep_host_files) are booleans (also as the
        words true/false/yes/no/on/off/1/0 that C(-e) gives); C(progress_interval_s) is in
        (0, 10]; C(settle_s) and C(start_delay_s) are 0 or more; C(paths) maps names to
        paths that must be absolute.
      - C(capacity_search) (boolean) appends the capacity search after the levels;
        C(min_capacity) (0 or more, snapshots/s) is the floor of its result.
    type: dict
    default: {}
  forks:
    description: The controller's forks; fewer than O(hosts) would start the levels host batch after host batch, and is refused.
    type: int
  callbacks_enabled:
    description: The controller's enabled callbacks; without C(qts.observer.stress_report) the run says, once, what enabling it adds.
    type: list
    elements: str
  interface:
    description:
      - The output of the P(qts.observer.observer_interface#filter) filter on the stress role's
        C(stress_observer_interface), C({interface, errors}); its errors refuse the run and its
        interface is returned in the plan. Default the reference Observer's.
    type: dict
  capacity:
    description:
      - >-
        Overrides of the capacity search's settings (C(SEARCH_DEFAULTS) in
        C(plugins/module_utils/capacity.py)), for example C({start_rate: 500, max_total_s:
        300}). Every key is described with the stress role's C(stress_capacity).
    type: raw
    default: {}
"""

EXAMPLES = r"""
- name: Plan the run
  qts.observer.stress_plan:
    profile: smoke
    limits: {max_cpu_pct: 100}
    artifacts_dir: "{{ playbook_dir }}/../artifacts"
    hosts: "{{ ansible_play_hosts_all }}"
  delegate_to: localhost
  run_once: true
  register: __stress_plan
"""

RETURN = r"""
qts_stress_run:
  description: The run's plan (also when the run is refused).
  returned: always
  type: dict
  contains:
    run_id: {description: Name of the run and of its folder., type: str, sample: 20261127T162013Z-ab12}
    run_tag: {description: The run's tag inside every run_id sent., type: str, sample: 20261127T162013Zab12}
    run_id_prefix:
      description: >-
        The start of every run_id the run sends (each level's is in its C(run_id_prefix)).
      type: str
      sample: stress_20261127T162013Zab12L
    artifacts_dir: {description: The run's folder on the controller., type: str, sample: /work/artifacts/20261127T162013Z-ab12}
    profile: {description: "The profile, or C(custom) when O(levels) override it.", type: str, sample: smoke}
    levels: {description: "The levels to run, each C({rate, duration_s, thresholds, run_id_prefix})", type: list, elements: dict, sample: []}
    capacity:
      description: The capacity search to run after the levels, or null.
      type: dict
      contains:
        settings: {description: The search's settings in force., type: dict, sample: {start_rate: 50.0, growth: 2.0}}
        level_base: {description: "The search's step N runs as level C(level_base) + N.", type: int, sample: 4}
        min_capacity: {description: The floor of the highest sustainable rate (0 for none)., type: float, sample: 0.0}
    interface:
      description: >-
        How the Observer is read: the resolved C(stress_observer_interface), see
        P(qts.observer.observer_interface#filter).
      type: dict
      sample: {run_id: snapshot.meta.run_id}
    timings:
      description: >-
        Cooldown, set-up wait, final cooldown and sustained window in seconds.
      type: dict
      sample: {cooldown_s: 2, final_cooldown_s: 10, setup_wait_s: 5, sustained_window_s: 5}
    limits: {description: The run-wide limits in force., type: dict, sample: {max_cpu_pct: 80.0}}
    seed: {description: Seed of the simulation., type: int, sample: 0}
    hosts: {description: The hosts of the run., type: list, elements: str, sample: [observer-01]}
    settings:
      description: >-
        O(settings), checked and normalised (booleans as booleans).
      type: dict
      sample: {abort_on_breach: false, any_errors_fatal: false}
    started_at: {description: UTC time of the plan., type: str, sample: "2026-11-27T16:20:13Z"}
    started_epoch: {description: Epoch seconds of the plan (the start of the run's time span)., type: float, sample: 1795796413.0}
errors:
  description: Every problem found; the run is refused unless this is empty.
  returned: always
  type: list
  elements: str
  sample: ["stress_levels[1].rate must be greater than 0, got 0"]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.artifacts import (
    RUN_ID,
    new_run_id,
    run_tag,
)
from ansible_collections.qts.observer.plugins.module_utils.capacity import resolve_settings
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (
    resolved_reference,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import (
    CAPACITY_PROFILES,
    PROFILE_TIMINGS,
    resolve_levels,
    resolve_limits,
    resolve_timings,
    window_errors,
)
from ansible_collections.qts.observer.plugins.module_utils.snapshots import run_id_prefix

CALLBACK = "qts.observer.stress_report"


def _levels(params: dict, errors: list[str]) -> list[dict]:
    if params["profile"] not in PROFILE_TIMINGS:
        errors.append(
            "stress_profile must be one of %s, got %r"
            % (", ".join(sorted(PROFILE_TIMINGS)), params["profile"])
        )
        return []
    try:
        return resolve_levels(params["profile"], params["levels"] or None)
    except ValueError as exc:
        errors.append(str(exc))
        return []


BOOLEAN_WORDS = {"true": True, "yes": True, "on": True, "1": True}
BOOLEAN_WORDS.update({"false": False, "no": False, "off": False, "0": False})
BOOLEAN_SETTINGS = ("abort_on_breach", "any_errors_fatal", "keep_host_files", "capacity_search")
# Setting -> (lowest, whether the lowest is allowed, highest).
NUMBER_SETTINGS = {
    "progress_interval_s": (0.0, False, 10.0),
    "settle_s": (0.0, True, None),
    "start_delay_s": (0.0, True, None),
    "min_capacity": (0.0, True, None),
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
    started = time.time()
    tag = run_tag(run_id)
    for number, level in enumerate(levels, start=1):
        level["run_id_prefix"] = run_id_prefix(tag, number)
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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "profile": {"type": "str", "default": "full"},
            "levels": {"type": "raw", "default": []},
            "timings": {"type": "dict", "default": {}},
            "limits": {"type": "dict", "default": {}},
            "seed": {"type": "int", "default": 0},
            "artifacts_dir": {"type": "path", "default": "artifacts"},
            "run_id": {"type": "str"},
            "hosts": {"type": "list", "elements": "str", "default": []},
            "settings": {"type": "dict", "default": {}},
            "forks": {"type": "int"},
            "callbacks_enabled": {"type": "list", "elements": "str"},
            "interface": {"type": "dict"},
            "capacity": {"type": "raw", "default": {}},
        },
        supports_check_mode=True,
    )
    plan, errors = plan_run(module.params)
    if not module.check_mode:
        os.makedirs(plan["artifacts_dir"], mode=0o755, exist_ok=True)
    enabled = module.params["callbacks_enabled"]
    if enabled is not None and CALLBACK not in enabled:
        module.warn(
            "per-level metric lines and live output in CI logs need the callback: add "
            "'callbacks_enabled = %s' under [defaults] in ansible.cfg (report.json, junit.xml "
            "and the verdict are written without it)" % CALLBACK
        )
    # A refusal is data for the report, not a failure of this task (whose result would then be
    # printed whole): the role shows the errors and ends the play.
    module.exit_json(
        changed=not module.check_mode,
        qts_stress_run=plan,
        errors=errors,
        msg=("stress run refused: " + "; ".join(errors))
        if errors
        else "run %s planned" % plan["run_id"],
    )


if __name__ == "__main__":
    main()
