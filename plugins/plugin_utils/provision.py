# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The digest of a role's inputs on the controller, for the provision_check and provision_stamp
actions: the variables it reads (by name prefix, templated), the facts it decides on, and the
content of the files it installs or renders from (its role folders, the collection's files,
the Observer's source)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase
from ansible_collections.qts.observer.plugins.module_utils.provision_state import (
    file_digest,
    is_runtime,
)


def _tree_lines(root: str) -> Iterable[str]:
    """One line per file under root (or root itself): its path and SHA-256, in a stable order."""
    if os.path.isfile(root):
        yield "%s %s" % (root, file_digest(root))
        return
    if not os.path.isdir(root):
        yield "%s missing" % root
        return
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(name for name in dirs if not is_runtime(name))
        for name in sorted(files):
            if not is_runtime(name):
                path = os.path.join(folder, name)
                yield "%s %s" % (path, file_digest(path) if os.path.isfile(path) else "not a file")


def inputs_digest(
    task_vars: dict[str, Any],
    template: Callable[[Any], Any],
    variable_prefixes: list[str],
    facts: list[str],
    trees: list[str],
) -> str:
    """The SHA-256 of every input: the variables named by prefix (templated), the facts, the trees."""
    prefixes = tuple(variable_prefixes)
    names = sorted(
        name for name in task_vars if name.startswith(prefixes) and not name.startswith("__")
    )
    variables = {}
    for name in names:
        try:
            variables[name] = template(task_vars[name])
        except Exception as exc:  # any template error: the role's own tasks will name it
            raise AnsibleError(
                "cannot template %s to digest the role's inputs: %s" % (name, exc)
            ) from exc
    gathered = task_vars.get("ansible_facts") or {}
    inputs = {
        "variables": variables,
        "facts": {name: gathered.get(name) for name in facts},
        "trees": [line for root in trees for line in _tree_lines(os.path.normpath(root))],
    }
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def run_with_inputs_digest(action: ActionBase, task_vars: dict[str, Any]) -> dict[str, Any]:
    """Run the action's module on the host with the digest of the task's inputs added."""
    args = dict(action._task.args)
    try:
        args["inputs_digest"] = inputs_digest(
            task_vars,
            action._templar.template,
            list(args.get("variable_prefixes") or []),
            list(args.get("facts") or []),
            list(args.get("trees") or []),
        )
    except AnsibleError as exc:
        return {"failed": True, "msg": str(exc)}
    return action._execute_module(module_args=args, task_vars=task_vars)
