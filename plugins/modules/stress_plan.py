#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: validate the stress run's variables and open its artifacts folder (the
stress_plan action does it on the controller; this file documents it)."""

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
  - Planning is computation on the run's variables and one folder on the controller, so the
    action plugin plans on the controller, in the controller's process; nothing runs on a host.
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.action
attributes:
  action:
    support: full
  check_mode:
    support: full
    details: Validates and returns the plan without creating the artifacts folder.
  diff_mode:
    support: none
options:
  profile:
    description: >-
      Named profile, V(full) (the spec, about 22 minutes), V(smoke) (about a minute),
      V(soak) (the spec's 25/s level for hours, C(settings.soak_duration_s), its trends
      judged) or V(capacity) (no fixed level: the capacity search alone, at most 10 minutes
      by default).
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
      - C(soak_duration_s) (over 0, at most a day) is the length of the V(soak) profile's
        level (default 4 hours).
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
  faults:
    description:
      - >-
        Faults during the levels (the stress role's C(stress_faults)), each checked against
        the levels and the hosts: C(type) (kill, pause, cpu, io, restart, disk_full),
        C(level), C(at_s), C(duration_s), C(quota_pct) (cpu), C(write_bps) (io), C(hosts)
        (default all), C(max_lost),
        C(max_recovery_s), C(back_within_s). Each level of the plan carries its own, named
        and with its hosts listed.
    type: raw
    default: []
  trends:
    description:
      - >-
        The trend verdicts (the stress role's C(stress_trends)): C(window_s) (60),
        C(warmup_s) (600), C(horizon_h) (8), C(tolerances) and C(limits) per series
        (C(rss_mb), C(open_files), C(records_mb), C(p99_ms), C(buffer_depth)). Each level
        with 8 windows after its warm-up carries them in C(trends) (null otherwise); a soak's
        level without is refused.
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
    trends:
      description: The trend settings in force (defaults filled); each level long enough carries them in C(trends).
      type: dict
      sample: {window_s: 60.0, warmup_s: 600.0, horizon_h: 8.0, tolerances: {rss_mb: 10.0}, limits: {}}
    faults:
      description: Every planned fault, resolved (defaults filled, named, hosts listed); each level carries its own in C(faults).
      type: list
      elements: dict
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
