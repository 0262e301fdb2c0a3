#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: cut the host's raw data to the run's time span, packed for one fetch."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_collect
short_description: Collect the host's raw data of a run into its folder on the controller
version_added: "0.1.0"
description:
  - Runs on the Observer host at the end of a stress run. Reads the monitor's CSV, the
    Observer's log, its C(metrics.jsonl) and C(rejects.jsonl) once each, up to what they hold
    at that moment, and writes the lines of the run's time span (O(since) to O(until)) into
    O(dest). The monitor and the Observer may go on writing; the copies do not change, so a
    fetch of them cannot fail its checksum, and they hold this run only.
  - Packs the copies and the levels' ledgers (O(ledgers)) into one gzipped tar, O(archive),
    so that the controller fetches one file per host, not one per file.
  - The action plugin then fetches the archive into O(local_dir) on the controller, unpacks it
    there (regular files only, by their names, no owner kept) and removes the fetched archive.
    Without privilege escalation the connection fetches it and its SHA-1 is checked against
    the one the module took when it wrote it; with privilege escalation
    M(ansible.builtin.fetch)'s own action fetches it, as the become user.
  - A missing or unreadable file, or an archive that cannot be fetched or unpacked, is reported
    in RV(problems), never fatal (collecting data never decides the verdict).
author:
  - QTS (@qts)
attributes:
  action:
    support: full
    details: The module cuts and packs on the host; the action fetches and unpacks on the controller.
  check_mode:
    support: none
  diff_mode:
    support: none
options:
  local_dir:
    description:
      - The host's folder of the run's artifacts on the controller (created, mode 0755), where
        the archive's files are unpacked. Used by the action plugin.
    type: path
    required: true
  monitor_csv:
    description: The monitor's CSV.
    type: path
    required: true
  log_file:
    description: The Observer's log.
    type: path
    required: true
  metrics_file:
    description: The Observer's metrics file (C(metrics.jsonl)); omitted for an Observer that writes none.
    type: path
  rejects_file:
    description: The Observer's C(rejects.jsonl); omitted for an Observer that writes none.
    type: path
  since:
    description: Epoch seconds where the run's span starts.
    type: float
    required: true
  until:
    description: Epoch seconds where it ends (default now).
    type: float
  dest:
    description: Folder receiving the copies (created, mode 0700).
    type: path
    required: true
  ledgers:
    description: The levels' ledgers (every line sent), packed as they are.
    type: list
    elements: path
    default: []
  archive:
    description: The gzipped tar written with the copies and the ledgers (mode 0600), by their file names.
    type: path
    required: true
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.action
  - qts.observer.observer_interface
"""

EXAMPLES = r"""
- name: Collect the host's raw data of the run
  qts.observer.stress_collect:
    monitor_csv: /var/lib/qts_monitor/system_monitor.csv
    log_file: /var/log/qts_observer/observer.log
    metrics_file: /opt/qts_observer/config/observer/metrics.jsonl
    rejects_file: /opt/qts_observer/config/observer/rejects.jsonl
    since: 1795796413.0
    dest: /run/qts_observer/stress/20261127T162013Z-ab12/collect
    ledgers:
      - /run/qts_observer/stress/20261127T162013Z-ab12/L1.sent.jsonl
    archive: /run/qts_observer/stress/20261127T162013Z-ab12/collect.tar.gz
    local_dir: artifacts/20261127T162013Z-ab12/observer-01
  register: __stress_collect
"""

RETURN = r"""
files:
  description: Each copy written, by kind (C(monitor_csv), C(log), C(metrics), C(rejects)).
  returned: always
  type: dict
  sample:
    log:
      source: /var/log/qts_observer/observer.log
      path: /run/qts_observer/stress/r/collect/observer.log
      name: observer.log
      lines: 1804
      bytes: 190012
archive:
  description: The archive written, its members (file names, in order), size and SHA-1.
  returned: when it could be written
  type: dict
  sample:
    path: /run/qts_observer/stress/r/collect.tar.gz
    members: [system_monitor.csv, observer.log, L1.sent.jsonl]
    bytes: 20480
    checksum: 2aae6c35c94fcfb415dbe95f408b9ce91ee846ed
unpacked:
  description: The files unpacked into O(local_dir) (empty when the archive could not be fetched or unpacked).
  returned: always
  type: list
  elements: str
  sample: [system_monitor.csv, observer.log, L1.sent.jsonl]
problems:
  description: Files that could not be collected, and why (a failed fetch or unpack too, starting with C(fetch:)).
  returned: always
  type: list
  elements: str
  sample: ["observer.log: /var/log/qts_observer/observer.log does not exist on the host"]
since:
  description: Start of the span, epoch seconds.
  returned: always
  type: float
until:
  description: End of the span, epoch seconds.
  returned: always
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.artifacts import HOST_FILES
from ansible_collections.qts.observer.plugins.module_utils.collect import collect, pack


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "monitor_csv": {"type": "path", "required": True},
            "log_file": {"type": "path", "required": True},
            "metrics_file": {"type": "path"},
            "rejects_file": {"type": "path"},
            "since": {"type": "float", "required": True},
            "until": {"type": "float"},
            "dest": {"type": "path", "required": True},
            "ledgers": {"type": "list", "elements": "path", "default": []},
            "archive": {"type": "path", "required": True},
            "interface": {"type": "dict"},
            "local_dir": {"type": "path", "required": True},  # the action plugin's
        },
        supports_check_mode=False,
    )
    params = module.params
    until = params["until"] if params["until"] is not None else time.time()
    sources = {
        key: path
        for key, path in (
            ("monitor_csv", params["monitor_csv"]),
            ("log", params["log_file"]),
            ("metrics", params["metrics_file"]),
            ("rejects", params["rejects_file"]),
        )
        if path
    }
    try:
        result = collect(
            sources,
            HOST_FILES,
            params["dest"],
            params["since"],
            until,
            interface=params["interface"],
        )
    except OSError as exc:
        module.fail_json(msg="cannot write into %s: %s" % (params["dest"], exc))
    ledgers = []
    for ledger in params["ledgers"]:
        if os.path.isfile(ledger):
            ledgers.append(ledger)
        else:
            result["problems"].append(
                "%s: %s does not exist on the host" % (os.path.basename(ledger), ledger)
            )
    copies = [copy["path"] for copy in result["files"].values()]
    try:
        result["archive"] = pack(copies + ledgers, params["archive"])
    except OSError as exc:
        result["problems"].append("cannot pack the raw data into %s: %s" % (params["archive"], exc))
    module.exit_json(changed=True, since=params["since"], until=until, **result)


if __name__ == "__main__":
    main()
