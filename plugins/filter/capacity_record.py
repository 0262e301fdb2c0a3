# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: judge a capacity search's step and plan the next, on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: capacity_record
short_description: Judge a capacity search's step and plan the next one
version_added: "0.1.0"
description:
  - Adds the step just run to the search's state, judged (C(sustainable), and each
    C(breaches) item naming the criterion, measured value and limit), then plans the next
    step or ends the search with its C(result).
  - A step is sustainable when the generator delivered the offered rate, throughput follows
    it, p99 processing latency is under the limit, nothing is lost, duplicated or modified,
    the error rate is under its limit and sustained CPU (without the generator's own) and
    memory are under the fail limits. See C(plugins/module_utils/capacity.py).
positional: _input, measured, load, now
options:
  _input:
    description: The search's state (from P(qts.observer.capacity_start#filter) or this filter).
    type: dict
    required: true
  measured:
    description: The step's C(qts_stress_metrics) of M(qts.observer.stress_measure).
    type: dict
    required: true
  load:
    description: The step's result of M(qts.observer.snapshot_load).
    type: dict
    required: true
  now:
    description: Epoch seconds now (for the search's time bound).
    type: float
    required: true
author:
  - QTS (@qts)
"""

EXAMPLES = r"""
- name: Judge the step and plan the next
  ansible.builtin.set_fact:
    __search: >-
      {{ __search | qts.observer.capacity_record(__measure.qts_stress_metrics, __load,
                                                 now(utc=true).timestamp()) }}
"""

RETURN = r"""
_value:
  description:
    - The search's state as P(qts.observer.capacity_start#filter) returns it (C(next), C(done),
      C(steps), C(result)), with the step just run added to C(steps), and the next step in
      C(next) or the search's C(result) when it has ended.
  type: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.qts.observer.plugins.module_utils import capacity


def capacity_record(state: Any, measured: Any, load: Any, now: Any) -> dict:
    if not isinstance(state, dict) or not state.get("next"):
        raise AnsibleFilterError("capacity_record needs a search state with a step to record")
    for name, value in (("measured", measured), ("load", load)):
        if not isinstance(value, dict):
            raise AnsibleFilterError("capacity_record: %s must be a dict, got %r" % (name, value))
    return capacity.record(state, measured, load, float(now))


class FilterModule:
    def filters(self) -> dict:
        return {"capacity_record": capacity_record}
