#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: a service's directories, each with its owner, group and mode, in one run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: directories
short_description: Make a service's directories exist, each with its owner, group and mode, in one run
version_added: "0.1.0"
description:
  - Ensures that every directory of O(directories) exists with the owner, group and mode given
    for it (or the defaults O(owner), O(group) and O(mode)), as M(ansible.builtin.file) with
    C(state=directory) does for one path. Missing parents are created with the same owner,
    group and mode, as M(ansible.builtin.file) creates them.
  - One module run for a service's whole set of directories. A loop over
    M(ansible.builtin.file) costs one module run per directory (a fork, a Python start, the
    module's transfer over the connection), which on a fleet is most of what provisioning
    costs the controller.
  - The directories are handled in the order given. A path that exists and is not a directory
    fails the task, naming it, before anything else is changed; nothing is ever removed.
author:
  - QTS (@qts)
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
options:
  directories:
    description:
      - The directories, each an absolute path or a dictionary with its C(path) and its own C(owner), C(group) and C(mode).
    type: list
    elements: raw
    required: true
  owner:
    description: Owner of a directory that names none (default, as M(ansible.builtin.file), the user running the module).
    type: str
  group:
    description: Group of a directory that names none.
    type: str
  mode:
    description: Mode of a directory that names none, octal (a string such as V('0750')) or symbolic.
    type: raw
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
"""

EXAMPLES = r"""
- name: Create the Observer's directories
  qts.observer.directories:
    owner: root
    group: qts_observer
    mode: "0750"
    directories:
      - /opt/qts_observer
      - /opt/qts_observer/bin
      - path: /var/lib/qts_observer
        owner: qts_observer
      - path: /run/qts_observer
        owner: qts_observer
        mode: "0755"
"""

RETURN = r"""
directories:
  description: Each directory, in the order given, with what was done to it.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /opt/qts_observer
      created: false
      changed: false
    - path: /run/qts_observer
      created: true
      changed: true
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

_ATTRIBUTES = ("owner", "group", "mode")


def _wanted(module: AnsibleModule) -> list[dict[str, Any]]:
    """Each directory as a path with its owner, group and mode (the defaults filled in)."""
    defaults = {key: module.params[key] for key in _ATTRIBUTES}
    wanted = []
    for index, given in enumerate(module.params["directories"]):
        entry = {"path": given} if isinstance(given, str) else given
        if not isinstance(entry, dict) or not entry.get("path"):
            module.fail_json(
                msg="directories[%d] must be a path or a dictionary with a path, not %r"
                % (index, entry)
            )
        unknown = sorted(set(entry) - {"path", *_ATTRIBUTES})
        if unknown:
            module.fail_json(
                msg="directories[%d] (%s): unknown key(s) %s; a directory takes path, %s"
                % (index, entry["path"], ", ".join(unknown), ", ".join(_ATTRIBUTES))
            )
        path = str(entry["path"])
        if not os.path.isabs(path):
            module.fail_json(msg="directories[%d] (%s): not an absolute path" % (index, path))
        path = os.path.normpath(path)
        wanted.append({"path": path} | {key: entry.get(key, defaults[key]) for key in _ATTRIBUTES})
    return wanted


def _refuse_non_directories(module: AnsibleModule, wanted: list[dict[str, Any]]) -> None:
    """Fail before changing anything when a path (or a parent of it) is not a directory."""
    for entry in wanted:
        path = entry["path"]
        while path and path != os.path.dirname(path):
            if os.path.lexists(path) and not os.path.isdir(path):
                module.fail_json(
                    msg="%s exists and is not a directory (for %s); nothing was changed"
                    % (path, entry["path"])
                )
            path = os.path.dirname(path)


def _ensure(module: AnsibleModule, entry: dict[str, Any], diffs: list[dict]) -> dict[str, Any]:
    """One directory and its missing parents, with the entry's owner, group and mode."""
    path = entry["path"]
    missing = []
    cursor = path
    while not os.path.isdir(cursor):
        missing.append(cursor)
        cursor = os.path.dirname(cursor)
    missing.reverse()  # parents first
    changed = False
    for created in missing:
        diffs.append({"before": {"path": created, "state": "absent"},
                      "after": {"path": created, "state": "directory"}})  # fmt: skip
        changed = True
        if module.check_mode:
            continue
        try:
            os.mkdir(created)
        except OSError as exc:
            module.fail_json(msg="cannot create %s: %s" % (created, exc))
        changed = _set_attributes(module, entry, created, changed, diffs)
    if not missing:
        changed = _set_attributes(module, entry, path, changed, diffs)
    return {"path": path, "created": bool(missing), "changed": changed}


def _set_attributes(
    module: AnsibleModule, entry: dict[str, Any], path: str, changed: bool, diffs: list[dict]
) -> bool:
    file_args = module.load_file_common_arguments(
        {key: entry[key] for key in _ATTRIBUTES}, path=path
    )
    diff: dict[str, dict] = {"before": {"path": path}, "after": {"path": path}}
    changed = module.set_fs_attributes_if_different(file_args, changed, diff, expand=False)
    if len(diff["before"]) > 1:
        diffs.append(diff)
    return changed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directories": {"type": "list", "elements": "raw", "required": True},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "mode": {"type": "raw"},
        },
        supports_check_mode=True,
    )
    wanted = _wanted(module)
    _refuse_non_directories(module, wanted)
    diffs: list[dict] = []
    done = [_ensure(module, entry, diffs) for entry in wanted]
    module.exit_json(changed=any(entry["changed"] for entry in done), directories=done, diff=diffs)


if __name__ == "__main__":
    main()
