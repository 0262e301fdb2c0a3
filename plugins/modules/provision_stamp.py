#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: record on the host what a role's completed provisioning left there."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: provision_stamp
short_description: Record what a role's completed provisioning left on a host
version_added: "0.2.0"
description:
  - Writes the stamp that M(qts.observer.provision_check) compares a later run with, made of
    the digest of the role's inputs (computed on the controller by the action plugin) and the
    record of every item of O(items) as it is now on the host.
  - The roles write it last, once everything ran and the service was (re)started, and only
    when the whole role ran (no tag left part of it out). A run that failed or stopped midway
    leaves the earlier stamp, whose record no longer matches what it changed.
  - The stamp is replaced whole (a temporary file renamed over it), mode 0600.
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
    details: The inputs' digest is computed on the controller; the stamp is written by a module run.
  check_mode:
    support: full
    details: Writes nothing and reports a change.
  diff_mode:
    support: none
seealso:
  - module: qts.observer.provision_check
"""

EXAMPLES = r"""
- name: Record the Observer's provisioning
  qts.observer.provision_stamp:
    stamp: /opt/qts_observer/provisioned.json
    items:
      - {kind: tree, name: /opt/qts_observer, exclude: [/opt/qts_observer/venv]}
      - {kind: venv, name: /opt/qts_observer/venv}
    variable_prefixes: [observer_, _observer_]
    facts: [user_id, service_mgr, os_family]
    trees: ["{{ role_path }}"]
"""

RETURN = r"""
recorded:
  description: How many items (paths, accounts, a venv's parts) the stamp records.
  returned: always
  type: int
  sample: 42
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.provision_state import (
    ARGUMENT_SPEC,
    STAMP_VERSION,
    record_of,
    write_stamp,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if not params["inputs_digest"]:
        module.fail_json(msg="inputs_digest is missing: the module runs through its action plugin")
    try:
        record = record_of(params["items"], params["stamp"])
        stamp = {
            "version": STAMP_VERSION,
            "inputs_digest": params["inputs_digest"],
            "record": record,
        }
        changed = True if module.check_mode else write_stamp(params["stamp"], stamp)
    except (OSError, ValueError, KeyError) as exc:
        module.fail_json(
            msg="cannot record the provisioned host in %s: %s" % (params["stamp"], exc)
        )
    module.exit_json(changed=changed, recorded=len(record))


if __name__ == "__main__":
    main()
