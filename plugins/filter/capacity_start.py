# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: start a host's capacity search, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: capacity_start
short_description: Start a host's capacity search
version_added: "0.1.0"
description:
  - Returns the search's state before its first step, with the first step planned in
    C(next) (rate, warm-up and measured seconds, level number, run_id prefix).
  - The search itself (geometric ramp, then bisection until the bracket is within the
    precision; bounded by time and a highest rate) is in
    C(plugins/module_utils/capacity.py). Its companion filter
    P(qts.observer.capacity_record#filter) judges each step and plans the next.
positional: _input, limits, run_tag, now
options:
  _input:
    description: The plan's C(capacity) (C(settings), C(level_base)) of M(qts.observer.stress_plan).
    type: dict
    required: true
  limits:
    description: The run-wide limits in force (the plan's C(limits)).
    type: dict
    required: true
  run_tag:
    description: The run's tag (the plan's C(run_tag)).
    type: str
    required: true
  now:
    description: Epoch seconds now (the start of the search's time bound).
    type: float
    required: true
author:
  - QTS (@qts)
"""

EXAMPLES = r"""
- name: Start the capacity search
  ansible.builtin.set_fact:
    __search: >-
      {{ plan.capacity | qts.observer.capacity_start(plan.limits, plan.run_tag,
                                                      now(utc=true).timestamp()) }}
"""

RETURN = r"""
_value:
  description: The search's state.
  type: dict
  contains:
    next:
      description: The step to run (C(step), C(level), C(rate), C(warmup_s), C(step_s), C(run_id_prefix)), or null when done.
      type: dict
    done:
      description: Whether the search has ended.
      type: bool
    steps:
      description: The judged steps so far.
      type: list
      elements: dict
    result:
      description: The search's result once done (see the README, section Find the limit).
      type: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.qts.observer.plugins.module_utils import capacity


def capacity_start(plan: Any, limits: Any, run_tag: str, now: Any) -> dict:
    if not isinstance(plan, dict) or "settings" not in plan:
        raise AnsibleFilterError("capacity_start needs the plan's capacity, got %r" % (plan,))
    return capacity.start(plan["settings"], limits or {}, int(plan["level_base"]), run_tag,
                          float(now))  # fmt: skip


class FilterModule:
    def filters(self) -> dict:
        return {"capacity_start": capacity_start}
