#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: validate the stress run's variables and open its artifacts folder."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_plan
short_description: Validate a stress run's variables and open its artifacts folder
version_added: "1.0.0"
description:
  - Runs once on the controller before anything is started. Resolves the levels to run
    (O(levels) when given, else the named O(profile), whose levels and thresholds are the
    spec's table kept in C(plugins/module_utils/profile.py)) and validates them. A rate or
    duration that is not above zero, an unknown key or a missing threshold fails here, with
    every problem named, and nothing is started.
  - Creates C(<artifacts_dir>/<run_id>/) and points C(<artifacts_dir>/latest) at it.
  - Returns C(qts_stress_run), which the C(qts.observer.stress_report) callback reads.
author:
  - qts.observer contributors
attributes:
  check_mode:
    support: full
    details: Validates and returns the plan without creating the artifacts folder.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  profile:
    description: Named profile, V(full) (the spec, about 22 minutes) or V(smoke) (about a minute).
    type: str
    default: full
  levels:
    description: "Levels overriding the profile, each C({rate, duration_s, thresholds: {min_throughput, max_latency_ms, max_cpu_pct, max_memory_pct}})."
    type: raw
    default: []
  timings:
    description: Overrides of the profile's C(cooldown_s), C(setup_wait_s) and C(final_cooldown_s) (null keeps the profile's).
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
"""

EXAMPLES = r"""
- name: Plan the run
  qts.observer.stress_plan:
    profile: smoke
    artifacts_dir: "{{ playbook_dir }}/../artifacts"
  delegate_to: localhost
  run_once: true
  register: __stress_plan
"""

RETURN = r"""
qts_stress_run:
  description: run_id, artifacts_dir, profile, levels, timings, seed, started_at.
  returned: always
  type: dict
"""

import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.profile import PROFILE_TIMINGS, resolve_levels

RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
TIMING_KEYS = ("cooldown_s", "setup_wait_s", "final_cooldown_s")


def _timings(profile: str, overrides: dict) -> tuple[dict, list[str]]:
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
            errors.append("%s must be a number of seconds, 0 or more, got %r" % (key, value))
        else:
            timings[key] = value
    return timings, errors


def _link_latest(artifacts_dir: str, run_id: str) -> None:
    latest = os.path.join(artifacts_dir, "latest")
    temporary = "%s.%d" % (latest, os.getpid())
    os.symlink(run_id, temporary)
    os.replace(temporary, latest)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "profile": {"type": "str", "default": "full"},
            "levels": {"type": "raw", "default": []},
            "timings": {"type": "dict", "default": {}},
            "seed": {"type": "int", "default": 0},
            "artifacts_dir": {"type": "path", "default": "artifacts"},
            "run_id": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    errors = []
    if params["profile"] not in PROFILE_TIMINGS:
        errors.append(
            "stress_profile must be one of %s, got %r"
            % (", ".join(sorted(PROFILE_TIMINGS)), params["profile"])
        )
        levels = []
    else:
        try:
            levels = resolve_levels(params["profile"], params["levels"] or None)
        except ValueError as exc:
            errors.append(str(exc))
            levels = []
    timings, timing_errors = _timings(params["profile"], params["timings"])
    errors.extend(timing_errors)
    run_id = params["run_id"] or "%s-%s" % (
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        os.urandom(2).hex(),
    )
    if not RUN_ID.match(run_id):
        errors.append("run_id may hold only letters, digits, '.', '_' and '-', got %r" % run_id)
    if errors:
        module.fail_json(msg="stress run not started: " + "; ".join(errors), errors=errors)
    artifacts_dir = os.path.abspath(params["artifacts_dir"])
    run_dir = os.path.join(artifacts_dir, run_id)
    plan = {
        "run_id": run_id,
        "run_tag": re.sub(r"[^A-Za-z0-9]", "", run_id)[-24:],
        "artifacts_dir": run_dir,
        "profile": "custom" if params["levels"] else params["profile"],
        "levels": levels,
        "timings": timings,
        "seed": params["seed"],
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if not module.check_mode:
        os.makedirs(run_dir, mode=0o755, exist_ok=True)
        _link_latest(artifacts_dir, run_id)
    module.exit_json(changed=not module.check_mode, qts_stress_run=plan)


if __name__ == "__main__":
    main()
