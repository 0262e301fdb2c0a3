#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: judge a host's whole stress run against the spec's run-wide criteria."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_gate
short_description: Judge a host's whole stress run against the run-wide criteria
version_added: "0.1.0"
description:
  - Judges the spec's run-wide criteria (stability, scaling, resources, error rate,
    integrity, graceful degradation, recovery to baseline, contract, clean shutdown, and the
    capacity when a search ran) over every judged level of the host, with the gate in
    C(plugins/module_utils/gate.py), the one place where the spec's thresholds and run-wide
    criteria are evaluated, and returns C(qts_stress_host). Each level is judged by
    M(qts.observer.stress_level), with the same gate.
  - A criterion without the data to judge it (no snapshot sent, no monitor sample, no
    Observer running) is C(NOT MEASURED) with the reason, never C(PASS).
  - The task returns the verdict without failing (its result is data, not a wall of text);
    the stress role shows the breaches in a task of its own, and
    M(qts.observer.stress_verdict) fails the run.
  - Judging is pure computation on what the host recorded, so the action plugin judges on the
    controller, in the controller's process; nothing runs on the host.
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
    details: Pure computation; judges the same way in check mode.
  diff_mode:
    support: none
options:
  limits:
    description: The run-wide limits (C(limits) of M(qts.observer.stress_plan)); default the spec's.
    type: dict
    default: {}
  levels:
    description: The judged levels, C(qts_stress_level) of each level's M(qts.observer.stress_level).
    type: list
    elements: dict
    required: true
  planned_levels:
    description: How many levels the run planned.
    type: int
  baseline:
    description: Monitor figures before the levels (C(qts_stress_metrics) of M(qts.observer.stress_window)).
    type: dict
  recovery:
    description: Monitor figures after the final cooldown (C(qts_stress_metrics) of M(qts.observer.stress_window)).
    type: dict
  shutdown:
    description: Result of stopping the Observer (C(was_running), C(stopped_cleanly), C(exit_status), C(elapsed_s), C(timeout_s)).
    type: dict
  after_stop:
    description: >-
      The run's records after the stop (C(qts_stress_after_stop) of
      M(qts.observer.stress_reconcile)); records the Observer had taken in and never wrote fail
      C(clean_shutdown).
    type: dict
  start_pid:
    description: The Observer's PID before the first level.
    type: int
  end_pid:
    description: The Observer's PID after the last level.
    type: int
  capacity:
    description: >-
      The capacity search's state (C(steps) and C(result)) when one ran: its
      steps count for stability, integrity and the contract, its result is the criterion
      C(capacity).
    type: dict
  min_capacity:
    description: A highest sustainable rate under this (snapshots/s) fails C(capacity); 0 sets no floor.
    type: float
    default: 0.0
"""

EXAMPLES = r"""
- name: Judge the run
  qts.observer.stress_gate:
    levels: "{{ __stress_levels }}"
    planned_levels: 4
    baseline: "{{ __stress_baseline.qts_stress_metrics }}"
    recovery: "{{ __stress_recovery.qts_stress_metrics }}"
    shutdown: "{{ __stress_shutdown }}"
    start_pid: 4242
    end_pid: 4242
"""

RETURN = r"""
msg:
  description: One line naming the run-wide verdict and every level or criterion that did not pass.
  returned: always
  type: str
  sample: "run-wide verdict FAIL: level 1 (5/s): FAIL"
passed:
  description: Whether the host's run-wide verdict is C(PASS) (what a task tests, rather than the verdict's word).
  returned: always
  type: bool
  sample: true
qts_stress_host:
  description: The host's run-wide judgment.
  returned: always
  type: dict
  contains:
    verdict: {description: "C(PASS), C(FAIL) or C(NOT MEASURED), over the levels and the criteria.", type: str, sample: PASS}
    criteria: {description: "Each criterion: C(name), C(verdict), C(evidence), C(measured), C(limit).", type: list, elements: dict, sample: []}
    observer: {description: The Observer's PID at the start and at the end., type: dict, sample: {pid_start: 4242, pid_end: 4242}}
"""
