#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: a level's faults applied to the running Observer at their moments, each
reverted, and nothing left from an earlier run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_fault
short_description: Apply a level's faults to the running Observer on schedule and revert each
version_added: "0.1.0"
description:
  - >-
    Holds the Observer host to the run's plan of faults. First it reverts every fault an
    earlier job left applied (the play was interrupted, the job killed, the host rebooted),
    as listed in O(state_file). Then it applies each fault of O(faults) at O(start_at)
    plus its C(at_s) and reverts it once its C(duration_s) is over, or at once when the level
    ends first (O(progress_file) says it is done). Each fault is written to O(state_file)
    before it is applied and taken out once reverted.
  - "Faults: C(kill) (SIGKILL; the Observer's service manager restarts it, and the module
    waits until a new Observer reads its input again), C(pause) (SIGSTOP, then SIGCONT),
    C(cpu) (systemd's runtime C(CPUQuota=) on the Observer's unit, then its old value) and
    C(io) (systemd's runtime C(IOWriteBandwidthMax=) on the output folder's device, then its
    old value), C(restart) (C(systemctl stop), C(duration_s) down, C(systemctl start)) and
    C(disk_full)
    (a filler file, mode 0600, takes every free block of the output folder's filesystem for
    C(duration_s), then is removed)."
  - >-
    With no fault it only reverts what was left; run as
    C(ansible observers -b -m qts.observer.stress_fault) it is the documented way to clean a
    host after a run that could not.
  - >-
    In check mode nothing is applied or reverted; the result says which faults cannot be
    applied on this host and why (C(refused)), and what is left to revert (C(left)).
  - Runs as an async job beside the level's load (M(qts.observer.stress_level) starts it).
author:
  - QTS (@qts)
options:
  faults:
    description:
      - The level's faults on this host, as the plan resolved them (each with C(fault),
        C(name), C(type), C(at_s), C(duration_s), C(quota_pct), C(back_within_s)).
    type: list
    elements: dict
    default: []
  start_at:
    description:
      - Epoch seconds the level is agreed to start at. With O(progress_file), each fault comes
        C(at_s) after the level's first send as its progress file says (the load may start
        later than agreed on a busy host; the sender counts its level from then), else after
        this.
    type: float
    default: 0
  pidfile:
    description: The Observer's pidfile (read again at each fault's moment).
    type: path
    default: /run/qts_observer/observer.pid
  pipe:
    description: The Observer's input pipe; a restarted Observer is back when it reads it.
    type: path
    default: /run/qts_observer/input.fifo
  state_file:
    description: Where the faults applied and not yet reverted are kept (mode 0600).
    type: path
    default: /run/qts_observer/stress.faults.json
  output_dir:
    description: The Observer's output folder (a C(disk_full) fills its filesystem, an C(io) caps writes to its device).
    type: path
  expendable:
    description:
      - Mount points of the filesystems a C(disk_full) may fill. The Observer's output folder
        must be on one of them, a filesystem of its own; the host's root filesystem never is.
    type: list
    elements: path
    default: []
  config_file:
    description:
      - The Observer's stress configuration. For the reference Observer's, a kill's record
        carries C(loss_window) (what a kill may lose, its buffer's flush interval and size,
        and its trigger's interval).
    type: path
  progress_file:
    description: The level's progress file; its C(started_at) is when the level's clock starts,
      and once it says the level is done, a fault still applied is reverted and none is applied
      any more.
    type: path
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Revert whatever an interrupted run left applied on the Observer hosts
  qts.observer.stress_fault:
  become: true

- name: Pause the Observer 10 s, 60 s into the level
  qts.observer.stress_fault:
    start_at: 1796543210.0
    faults:
      - {fault: 1, name: "fault 1 (pause 10 s at 60 s of level 4)", type: pause, at_s: 60,
         duration_s: 10, back_within_s: 60}
  async: 600
  poll: 0
"""

RETURN = r"""
faults:
  description: Each fault, with when it was applied and ended (epoch seconds) or why not.
  returned: always
  type: list
  elements: dict
  sample:
    - fault: 1
      name: fault 1 (kill at 60 s of level 4)
      type: kill
      applied_at: 1796543270.01
      ended_at: 1796543270.01
      back_at: 1796543271.4
      pid_before: 4242
      pid_after: 4301
      error: null
      loss_window: {"window_ms": 700.0, "max_buffer_size": 50000}
reverted:
  description: What was reverted of the faults an earlier job left applied.
  returned: always
  type: list
  elements: str
  sample: ["pause of pid 4242: continued (SIGCONT)"]
refused:
  description: In check mode, why a fault cannot be applied on this host, one line each.
  returned: always
  type: list
  elements: str
  sample: ["fault 3 (cpu 20 % 10 s at 90 s of level 4): the Observer (pid 77) is not a systemd service here"]
left:
  description: In check mode, the faults an earlier job left applied (they would be reverted).
  returned: always
  type: list
  elements: dict
"""

import json
import signal
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.fault_host import (
    FaultError,
    FaultRun,
    Observer,
    StateFile,
    loss_window,
    refusal,
    revert_left,
    use_runner,
)

PROGRESS_POLL_S = 0.05
# How long after the agreed start the level's load may take to begin on a busy host.
START_WAIT_S = 300.0


class _Stopped(Exception):
    """A signal ended the job: what is applied is reverted on the way out."""


def _stopped(signum: int, _frame: object) -> None:
    raise _Stopped(signal.Signals(signum).name)


def _progress(path: str | None) -> dict:
    if not path:
        return {}
    try:
        with open(path) as handle:
            found = json.load(handle)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _level_done(path: str | None) -> bool:
    return bool(_progress(path).get("done"))


def _level_start(params: dict) -> float | None:
    """When the level's first snapshot went out (its progress file says so as soon as it
    starts): each fault's moment counts from it, on the sender's clock, even when the load
    started later than agreed on a busy host. Without a progress file, the agreed start; None
    when the level ended, or never started within START_WAIT_S, before its first send."""
    agreed = params["start_at"]
    if not params["progress_file"]:
        return agreed
    give_up = max(agreed, time.time()) + START_WAIT_S
    while time.time() < give_up:
        progress = _progress(params["progress_file"])
        started = progress.get("started_at") or 0.0
        if progress.get("done"):
            return None
        # Not a file left by an earlier level: a sender never starts before the agreed time.
        if started >= agreed - 0.001 and started > 0:
            return float(started)
        time.sleep(PROGRESS_POLL_S)
    return None


def _refused(faults: list[dict], pidfile: str, disk: tuple[str | None, list[str]]) -> list[str]:
    if not faults:
        return []
    try:
        observer = Observer(pidfile)
    except FaultError as exc:
        return ["%s: %s" % (fault["name"], exc) for fault in faults]
    return [reason for reason in (refusal(fault, observer, disk) for fault in faults) if reason]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "faults": {"type": "list", "elements": "dict", "default": []},
            "start_at": {"type": "float", "default": 0.0},
            "pidfile": {"type": "path", "default": "/run/qts_observer/observer.pid"},
            "pipe": {"type": "path", "default": "/run/qts_observer/input.fifo"},
            "state_file": {"type": "path", "default": "/run/qts_observer/stress.faults.json"},
            "progress_file": {"type": "path"},
            "config_file": {"type": "path"},
            "output_dir": {"type": "path"},
            "expendable": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    use_runner(lambda argv: module.run_command(argv, check_rc=False))
    state = StateFile(params["state_file"])
    disk = (params["output_dir"], params["expendable"])
    result = {"changed": False, "faults": [], "reverted": [], "refused": [], "left": []}
    try:
        if module.check_mode:
            result.update(
                left=state.read(), refused=_refused(params["faults"], params["pidfile"], disk)
            )
            module.exit_json(**result)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, _stopped)
        result["reverted"] = revert_left(state)
        begin = _level_start(params) if params["faults"] else params["start_at"]
        for fault in params["faults"]:
            if begin is None:
                result["faults"].append(
                    FaultRun.not_applied(fault, "the level's load ended, or never began")
                )
                continue
            run = FaultRun(fault, pidfile=params["pidfile"], pipe=params["pipe"], state=state,
                           stop=lambda: _level_done(params["progress_file"]), disk=disk)  # fmt: skip
            if fault["type"] == "kill":
                run.record["loss_window"] = loss_window(params["config_file"])
            result["faults"].append(run.record)  # kept whatever ends the job
            run.run(begin)
    except FaultError as exc:
        module.fail_json(msg=str(exc), **result)
    except _Stopped as exc:
        module.fail_json(msg="stopped by %s; every fault applied was reverted" % exc, **result)
    result["changed"] = bool(result["reverted"] or any(f["applied_at"] for f in result["faults"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
