#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: after the Observer stopped, what it wrote of everything the run sent."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_reconcile
short_description: After the Observer stopped, count what it wrote of everything the run sent
version_added: "0.1.0"
description:
  - Runs on the Observer host once the Observer has stopped. Reads every ledger of the run
    (each line sent) and the Observer's records, and counts what was written and what is
    missing.
  - Of the missing, those the Observer logged as dispatched (taken in, held, never written)
    were lost at the stop, whatever its exit status says; the M(qts.observer.stress_gate)
    module judges the clean shutdown with it.
author:
  - QTS (@qts)
options:
  ledgers:
    description: Every ledger of the run whose level did not crash the Observer.
    type: list
    elements: path
    required: true
  run_id_prefix:
    description: Prefix of the run's run_ids (C(stress_<run_tag>)).
    type: str
    required: true
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.read_only
  - qts.observer.measure.observer_files
  - qts.observer.observer_interface
"""

EXAMPLES = r"""
- name: Count what the Observer wrote of the run, now that it has stopped
  qts.observer.stress_reconcile:
    ledgers:
      - /run/qts_observer/stress/L1.sent.jsonl
      - /run/qts_observer/stress/L2.sent.jsonl
    run_id_prefix: stress_20261127T162013Z-ab12_
    output_dir: /opt/qts_observer/config/observer
    log_file: /var/log/qts_observer/observer.log
  register: __stress_after_stop
"""

RETURN = r"""
qts_stress_after_stop:
  description: The run's records after the stop.
  returned: always
  type: dict
  contains:
    sent: {description: Snapshots sent in the whole run., type: int, sample: 27000}
    written: {description: "Of them, run_ids found in the records.", type: int, sample: 27000}
    missing: {description: "Of them, run_ids found in no record.", type: int, sample: 0}
    held_lost:
      description: Of the missing, those the Observer logged as dispatched (taken in, held, never written); null when it logs no dispatch line.
      type: int
      sample: 0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.measure import after_stop
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (
    resolved_reference,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "ledgers": {"type": "list", "elements": "path", "required": True},
            "run_id_prefix": {"type": "str", "required": True},
            "output_dir": {"type": "path", "required": True},
            "log_file": {"type": "path", "required": True},
            "interface": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = after_stop(
            params["ledgers"],
            params["output_dir"],
            params["log_file"],
            params["run_id_prefix"].encode(),
            params["interface"] or resolved_reference(),
        )
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (exc.filename, exc.strerror))
    module.exit_json(changed=False, qts_stress_after_stop=result)


if __name__ == "__main__":
    main()
