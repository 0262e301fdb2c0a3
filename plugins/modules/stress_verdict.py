#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the stress_verdict action plugin (it runs on the controller only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_verdict
short_description: Give the stress run's verdict and write report.json and junit.xml
version_added: "0.1.0"
description:
  - Runs once on the controller after the stress play (C(playbooks/stress.yml) does it in
    its last play), whatever happened in it, and needs no callback.
  - Reads what each host of the run recorded, its outcome C(stress_outcome) (its judged
    levels, its run-wide criteria, its first failure, whether it was reached, what was
    fetched; the README's "The host's outcome" lists its keys), and the plan of
    M(qts.observer.stress_plan), combines them into each host's verdict (C(PASS), C(FAIL),
    C(NOT MEASURED), C(UNREACHABLE) or C(NOT RUN)) and the run's (C(PASS) only when every
    host passed), compares each host with its baseline, adds the run to the run history,
    prints the host x level table, each host's criteria and the line C(STRESS VERDICT), and
    writes C(report.json), C(junit.xml) and C(report.html) (charts drawn by matplotlib when
    it is installed) into the run's folder. Only then C(<artifacts_dir>/latest) points at
    the run.
  - Also when the run never started (variables refused, no host matched the inventory), a
    report says why. The task does not fail; the playbook fails the run on its C(verdict).
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.action
attributes:
  action:
    support: full
    details: Runs entirely on the controller.
  check_mode:
    support: full
    details: Prints the verdict and writes nothing.
  diff_mode:
    support: none
options:
  group:
    description: The inventory group the stress play ran on (used when no plan exists, to say that no host matched).
    type: str
    default: observers
  artifacts_dir:
    description: Folder receiving the run's folder when no plan made one (no host matched).
    type: path
    default: artifacts
  profile:
    description: The profile asked for, reported when no plan exists.
    type: str
    default: full
  seed:
    description: The seed asked for, reported when no plan exists.
    type: int
    default: 0
  baseline:
    description:
      - The run each host is compared with, from the run history C(history.sqlite) beside the
        runs' folders. V(previous) is the last comparable run (same levels, Observer code and
        configuration digests, host); a run_id names one; V(none) compares with nothing.
    type: str
    default: previous
  fail_on_regression:
    description: A regression against the baseline fails the host (and the run), named in the reasons.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Judge the whole run, write report.json and junit.xml
  qts.observer.stress_verdict:
    artifacts_dir: "{{ playbook_dir }}/../artifacts"
  register: __stress_verdict

- name: Fail the run unless every host passed
  ansible.builtin.fail:
    msg: "{{ __stress_verdict.msg }}"
  when: not __stress_verdict.passed
"""

RETURN = r"""
verdict:
  description: C(PASS) when every host of the run passed, else C(FAIL).
  returned: always
  type: str
  sample: FAIL
passed:
  description: Whether the run's verdict is C(PASS) (what a task tests, rather than the verdict's word).
  returned: always
  type: bool
  sample: false
reasons:
  description: Why the run is not PASS, one entry per host (or for the run).
  returned: always
  type: list
  elements: str
  sample: ["observer-02: L2 process_failure: process failure: the Observer (pid 4242) died"]
msg:
  description: The C(STRESS VERDICT) line.
  returned: always
  type: str
  sample: "STRESS VERDICT: PASS"
run_id:
  description: The run's name.
  returned: always
  type: str
  sample: 20261127T162013Z-ab12
hosts:
  description: Each host of the run and its verdict (C(PASS), C(FAIL), C(NOT MEASURED), C(UNREACHABLE), C(NOT RUN)).
  returned: always
  type: dict
  sample: {"observer-01": "PASS", "observer-02": "FAIL"}
report_file:
  description: Path of report.json (null in check mode).
  returned: always
  type: str
  sample: /work/artifacts/20261127T162013Z-ab12/report.json
junit_file:
  description: Path of junit.xml (null in check mode).
  returned: always
  type: str
  sample: /work/artifacts/20261127T162013Z-ab12/junit.xml
"""
