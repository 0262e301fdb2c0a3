#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: whether a role's last provisioning of this host still holds."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: provision_check
short_description: Tell whether a role's last provisioning of a host still holds
version_added: "0.2.0"
description:
  - Compares what the role would provision now with what its last completed provisioning
    recorded on the host (M(qts.observer.provision_stamp)), and returns C(unchanged=true) only
    when both are the same. The observer and monitor roles then skip their installation and
    configuration and only make sure the service runs; anything else provisions as usual.
  - "Two things must be equal. The role's inputs: the digest, computed on the controller by the
    action plugin, of every variable whose name starts with one of O(variable_prefixes), the
    facts named by O(facts), and the content of every file under O(trees) (the roles, the
    collection's files and plugins, the Observer's source). And the host: every item of
    O(items), described now on the host (type, mode, owner, group, and a regular file's
    SHA-256; a venv's interpreter and installed distributions; a user's or group's entry), as
    the stamp recorded it."
  - The first difference is returned in words (RV(reason)), so a run that provisions says why.
  - Read-only on the host. The roles do not ask it in check mode, so that check mode always
    reports what would change.
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.action
  - qts.observer.provision
attributes:
  action:
    support: full
    details: The inputs' digest is computed on the controller; the host is described by a module run.
  check_mode:
    support: full
    details: Read-only.
  diff_mode:
    support: none
notes:
  - The comparison is of what the role manages, not of everything on the host. A file the role
    does not manage, added to an install folder, is found only under a V(tree) item.
seealso:
  - module: qts.observer.provision_stamp
"""

EXAMPLES = r"""
- name: Tell whether the Observer's last provisioning still holds
  qts.observer.provision_check:
    stamp: /opt/qts_observer/provisioned.json
    items:
      - {kind: tree, name: /opt/qts_observer, exclude: [/opt/qts_observer/venv]}
      - {kind: venv, name: /opt/qts_observer/venv}
      - {kind: path, name: /run/qts_observer/input.fifo}
      - {kind: user, name: qts_observer}
    variable_prefixes: [observer_, _observer_]
    facts: [user_id, service_mgr, os_family]
    trees: ["{{ role_path }}"]
  register: observer_provisioned
"""

RETURN = r"""
unchanged:
  description: Whether the inputs and the host are as the last completed provisioning left them.
  returned: always
  type: bool
  sample: false
reason:
  description: Why the role must provision (the first difference found); empty when unchanged.
  returned: always
  type: str
  sample: "/opt/qts_observer/config/stress_config.json: its content changed"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.provision_state import (
    ARGUMENT_SPEC,
    first_difference,
    read_stamp,
    record_of,
)


def _reason(stamp_path: str, inputs_digest: str, items: list[dict]) -> str:
    """Why the role must provision, or an empty string when nothing changed."""
    stamp, unusable = read_stamp(stamp_path)
    if stamp is None:
        return unusable
    if stamp.get("inputs_digest") != inputs_digest:
        return (
            "the role's inputs (variables, facts, the collection's or the source's files) changed"
        )
    difference = first_difference(stamp.get("record") or {}, record_of(items, stamp_path))
    return "on the host since the last provisioning: " + difference if difference else ""


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    if not module.params["inputs_digest"]:
        module.fail_json(msg="inputs_digest is missing: the module runs through its action plugin")
    try:
        reason = _reason(
            module.params["stamp"], module.params["inputs_digest"], module.params["items"]
        )
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(msg="cannot describe the provisioned host: %s" % exc)
    module.exit_json(changed=False, unchanged=not reason, reason=reason)


if __name__ == "__main__":
    main()
