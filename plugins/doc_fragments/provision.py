# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of provision_check and provision_stamp: what a role's provisioning depends on
(its inputs, on the controller) and what it manages (on the host)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  stamp:
    description:
      - The stamp on the host, where M(qts.observer.provision_stamp) records a completed
        provisioning (JSON, mode 0600, written whole). It is never part of its own record.
    type: path
    required: true
  items:
    description:
      - What the role manages on the host, each a dictionary with C(kind) and C(name).
      - "C(kind): V(path) (the path itself: its type, mode, owner and group, a regular file's
        SHA-256, a link's target), V(tree) (the path and everything under it, no link followed,
        without byte-code caches and the paths of the item's C(exclude) list), V(venv) (its
        C(pyvenv.cfg), its interpreter and the distributions installed in it), V(user) or
        V(group) (the account's entry: a user's ids, home, shell and groups; a group's id)."
    type: list
    elements: dict
    required: true
  variable_prefixes:
    description:
      - Every variable of the host whose name starts with one of these is an input, as its
        templated value. Names starting with C(__) (a run's own results) never are.
      - Read by the action plugin on the controller.
    type: list
    elements: str
    default: []
  facts:
    description: The facts the role decides on (keys of C(ansible_facts)); read by the action plugin.
    type: list
    elements: str
    default: []
  trees:
    description:
      - Controller paths whose content is an input (each file's path and SHA-256, byte-code
        caches aside; a missing path counts as missing). Read by the action plugin.
    type: list
    elements: path
    default: []
  inputs_digest:
    description: The digest of the inputs; the action plugin sets it, a task never does.
    type: str
"""
