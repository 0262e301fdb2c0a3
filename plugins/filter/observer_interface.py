# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter: resolve a stress_observer_interface (overrides of the reference's) on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: observer_interface
short_description: Resolve how the stress run reads an Observer
version_added: "0.1.0"
description:
  - Merges the given overrides over the reference Observer's interface (the defaults, kept in
    C(plugins/module_utils/observer_interface.py)) and checks every value.
  - Each JMESPath field path (C(run_id), C(snapshot), C(latency_ms), C(dispatched_at)) is
    parsed with the C(jmespath) library and turned into a list of keys that the modules on the
    hosts walk with the standard library; an expression that is not a chain of field names
    (C(a.b.c), quoted names allowed) is refused, since a record field has one place.
  - Never raises on a bad value; every problem is listed in C(errors), for the run's plan to
    refuse the run with all of them named.
positional: _input
options:
  _input:
    description: The overrides (the stress role's C(stress_observer_interface)); keys of the reference only.
    type: dict
    required: true
requirements:
  - jmespath (on the controller, only when a field path is overridden)
author:
  - QTS (@qts)
"""

EXAMPLES = r"""
- name: Resolve the interface of a runbook Observer
  ansible.builtin.set_fact:
    __interface: "{{ {'run_id': 'observed_run', 'snapshot': 'data'} | qts.observer.observer_interface }}"
"""

RETURN = r"""
_value:
  description: The resolved interface and the problems found.
  type: dict
  contains:
    interface:
      description: Every key of the reference, with C(paths) holding each field path as a list of keys (null when not recorded).
      type: dict
    errors:
      description: One message per bad value, naming the key.
      type: list
      elements: str
"""

import re
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (
    PATH_KEYS,
    REFERENCE,
    REGEX_GROUPS,
    REGEX_KEYS,
    reference_paths,
)


def field_path(expression: str) -> list[str]:
    """``a.b."c d"`` -> ``["a", "b", "c d"]``; ValueError for anything else."""
    try:  # only here: the default interface needs no library (community.general does the same)
        import jmespath  # noqa: PLC0415
        from jmespath.exceptions import ParseError  # noqa: PLC0415
    except ImportError as exc:
        raise ValueError(
            "reading records by JMESPath needs the jmespath library on the controller "
            "(pip install jmespath)"
        ) from exc
    try:
        node = jmespath.compile(expression).parsed
    except ParseError as exc:
        raise ValueError("not a JMESPath expression: %s" % exc) from None

    def keys(node: dict) -> list[str]:
        if node["type"] == "field":
            return [node["value"]]
        if node["type"] == "subexpression":
            return [key for child in node["children"] for key in keys(child)]
        raise ValueError(
            "only a chain of field names (a.b.c) names a record field, got a %s" % node["type"]
        )

    return keys(node)


def _check_type(key: str, value: Any, errors: list[str]) -> bool:
    expected = type(REFERENCE[key])
    if expected is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            errors.append("stress_observer_interface.%s must be a list of strings" % key)
            return False
    elif not isinstance(value, expected):
        errors.append(
            "stress_observer_interface.%s must be a %s, got %r"
            % (key, {bool: "boolean", str: "string"}[expected], value)
        )
        return False
    return True


def resolve(overrides: dict) -> dict:
    errors: list[str] = []
    if not isinstance(overrides, dict):
        return {"interface": None, "errors": ["stress_observer_interface must be a dict"]}
    unknown = sorted(set(overrides) - set(REFERENCE))
    if unknown:
        errors.append(
            "stress_observer_interface: unknown key(s) %s (known: %s)"
            % (", ".join(unknown), ", ".join(sorted(REFERENCE)))
        )
    interface = dict(REFERENCE)
    for key, value in overrides.items():
        if key in REFERENCE and _check_type(key, value, errors):
            interface[key] = value
    paths = _paths(interface, errors)
    for key in ("run_id", "snapshot"):
        if not interface[key]:
            errors.append("stress_observer_interface.%s is needed: records are matched by it" % key)
    for key in REGEX_KEYS:
        _check_regex(key, interface[key], errors)
    if interface["embeds_verbatim"] and paths["snapshot"] and len(paths["snapshot"]) != 1:
        errors.append(
            "stress_observer_interface.embeds_verbatim needs the snapshot as a top-level field "
            "(the record's last), got %r" % interface["snapshot"]
        )
    interface["decision_fields"] = [name.lower() for name in interface["decision_fields"]]
    interface["paths"] = paths
    return {"interface": interface, "errors": errors}


def _paths(interface: dict, errors: list[str]) -> dict:
    """Each field path key's parsed path (None when not given or not valid)."""
    paths = {}
    for key in PATH_KEYS:
        expression = interface[key]
        if expression == REFERENCE[key]:
            paths[key] = reference_paths()[key]  # the default needs no library
        elif not expression:
            paths[key] = None
        else:
            try:
                paths[key] = field_path(expression)
            except ValueError as exc:
                errors.append("stress_observer_interface.%s %r: %s" % (key, expression, exc))
                paths[key] = None
    return paths


def _check_regex(key: str, expression: str, errors: list[str]) -> None:
    """A regular expression key: given where needed, valid, with its named groups."""
    if not expression:
        if key in ("record_files", "log_stamp"):
            errors.append("stress_observer_interface.%s is needed" % key)
        return
    try:
        pattern = re.compile(expression)
    except re.error as exc:
        errors.append("stress_observer_interface.%s is not a regular expression: %s" % (key, exc))
        return
    missing = [g for g in REGEX_GROUPS.get(key, ()) if g not in pattern.groupindex]
    if missing:
        errors.append(
            "stress_observer_interface.%s needs the named group(s) %s, e.g. (?P<%s>...)"
            % (key, ", ".join(missing), missing[0])
        )


def observer_interface(overrides: Any) -> dict:
    try:
        return resolve(overrides)
    except Exception as exc:  # a filter error would hide which value was wrong
        raise AnsibleFilterError("observer_interface: %s" % exc) from exc


class FilterModule:
    def filters(self) -> dict:
        return {"observer_interface": observer_interface}
