#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: inject one load level of snapshots into the running Observer."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snapshot_load
short_description: Inject one load level of simulated snapshots into the running Observer
version_added: "0.1.0"
description:
  - Runs on the Observer host. Generates contract-compliant C(ObservationSnapshot)s (the
    Observer's C(observation_snapshot.schema.json) is the contract) with the spec's realistic
    variation and unique run_ids, and writes them into the B(running) Observer's input pipe.
  - Open loop. Send times follow the schedule whatever the Observer does, C(t0 + n / rate) or
    the O(shape)'s (random arrivals, bursts, a replayed capture). Lateness against the schedule is measured (p50,
    p99, max) and reported, never hidden by skipping. Each line goes into the pipe as soon as
    it is due.
  - The delivered shape is measured against the intended one (RV(delivery)), and every
    snapshot's intended and actual send times are written beside the ledger, in
    C(<ledger>.times).
  - Seeded. The same O(seed), O(level), O(run_tag) and O(start_at) reproduce the same
    snapshots byte for byte, so a failing level can be replayed. Each snapshot's timestamps
    are its scheduled send time.
  - Watches the Observer's PID (from its pidfile, never by command line) while the level runs.
    If the Observer dies, the level ends within 2 seconds and fails with C(process failure).
  - Every line sent is also written to O(ledger), so the measuring step can check that each
    snapshot was written exactly once and unchanged.
  - The folders of O(ledger) and O(progress_file) are made when missing (the run's work
    folder), with mode C(0700), as any missing parent of them.
  - "Meant to run with C(async) and C(poll: 0) while the controller polls O(progress_file)."
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.attributes.async
attributes:
  check_mode:
    support: full
    details: Validates the arguments, the pipe and the Observer's PID and returns the plan without sending anything.
  diff_mode:
    support: none
  async:
    support: full
options:
  pipe:
    description: The Observer's input named pipe.
    type: path
    required: true
  pidfile:
    description: The Observer's pidfile (written by the Observer itself).
    type: path
    required: true
  rate:
    description: Snapshots per second. Must be greater than 0.
    type: float
    required: true
  duration_s:
    description: Length of the level in seconds. Must be greater than 0.
    type: float
    required: true
  level:
    description: Level number (from 1); part of every run_id and of the seed.
    type: int
    default: 1
  seed:
    description: Seed of the simulation.
    type: int
    default: 0
  run_tag:
    description: Tag put in every run_id (C(stress_<run_tag>L<level>_<n>)) so run_ids are unique across runs. Letters, digits, C(.), C(_), C(-) only.
    type: str
    default: ""
  start_at:
    description: Epoch seconds at which to start sending (lets every host start a level together). Default is now.
    type: float
  ledger:
    description:
      - File that receives a copy of every line sent.
      - C(<ledger>.stop) appearing ends the level early (looked for once a second); one left
        from before is removed as the level starts.
    type: path
    required: true
  progress_file:
    description: JSON file rewritten every second with the level's progress.
    type: path
  output_dir:
    description:
      - The Observer's records folder. Given, a follower (a process of its own) reads the
        records files there while the level runs and stamps when each of the level's records
        became visible (RV(freshness)); the sightings are written to C(<ledger>.visible).
    type: path
  record_files:
    description: Regular expression of the records files' names in O(output_dir) (the Observer's interface). Default is the reference Observer's.
    type: str
  settle_s:
    description: After the last send, how long the follower waits at most for records still to come (2 to 60 s).
    type: float
    default: 10.0
  outages:
    description:
      - Planned outages of the Observer (a kill or a restart of the stress role's C(stress_faults)), each
        C([from_s, until_s]) from the level's start. An Observer that dies within one is
        waited for; once O(pidfile) names a new live process that reads O(pipe), the level
        goes on sending to it (late sends are sent, never skipped). Dead outside one, or not
        back by its end, it is a process failure as always.
    type: list
    elements: list
    default: []
  shape:
    description:
      - When the level's snapshots are due. C(type=constant) (the default) is O(rate) evenly.
      - C(type=poisson) draws exponential gaps at the mean O(rate) (seeded by O(seed) and
        O(level)).
      - C(type=burst) sends O(rate) as a base plus, every C(period_s) seconds from
        C(first_at_s) (default half a period), a burst of C(size) snapshots due evenly within
        C(window_ms) milliseconds.
      - C(type=replay) sends the snapshots of C(capture) (a file on the host, JSON lines) at
        their recorded gaps (their C(meta.timestamp)) divided by C(speed) (default 1), each
        line as captured except its C(meta.run_id), the level's own. O(rate) and
        O(duration_s) are the capture's (the stress role's plan sets them).
    type: dict
"""

EXAMPLES = r"""
- name: Run level 1 (5 snapshots/s for 3 minutes) in the background
  qts.observer.snapshot_load:
    pipe: /run/qts_observer/input.fifo
    pidfile: /run/qts_observer/observer.pid
    rate: 5
    duration_s: 180
    level: 1
    seed: 42
    ledger: /var/lib/qts_observer/stress/L1.sent.jsonl
    progress_file: /var/lib/qts_observer/stress/L1.progress.json
  async: 600
  poll: 0
  register: __stress_load_job

- name: Show the plan without sending anything
  qts.observer.snapshot_load:
    pipe: /run/qts_observer/input.fifo
    pidfile: /run/qts_observer/observer.pid
    rate: 50
    duration_s: 5
    ledger: /tmp/ledger.jsonl
  check_mode: true
"""

RETURN = r"""
planned:
  description: Snapshots the schedule holds (rate x duration, and the shape's bursts; a poisson level's drawn count).
  returned: always
  type: int
  sample: 900
sent:
  description: Snapshots written into the pipe in full.
  returned: always
  type: int
  sample: 900
first_run_id:
  description: run_id of the first snapshot of the level.
  returned: always
  type: str
  sample: stress_20261127T162013L1_0
last_run_id:
  description: run_id of the last planned snapshot.
  returned: always
  type: str
  sample: stress_20261127T162013L1_899
achieved_rate:
  description: Snapshots sent per second of sending.
  returned: success
  type: float
  sample: 4.999
lateness_ms:
  description: Lateness of the sends against the schedule (p50, p95, p99, max).
  returned: success
  type: dict
  sample: {"p50": 0.08, "p95": 0.12, "p99": 0.2, "max": 1.3}
started_at:
  description: Epoch seconds of the first send.
  returned: success
  type: float
finished_at:
  description: Epoch seconds of the end of the level.
  returned: success
  type: float
observer_pid:
  description: The Observer PID watched during the level.
  returned: always
  type: int
observer_pid_end:
  description: The Observer PID at the level's end (another after a planned restart).
  returned: success
  type: int
restarts:
  description:
    - The planned restarts the level outlived, each with when the Observer died and when the
      new one read its input (seconds from the level's start) and both PIDs.
  returned: success
  type: list
  elements: dict
  sample: [{"died_s": 60.2, "back_s": 61.5, "pid_before": 4242, "pid_after": 4301}]
stopped_early_s:
  description:
    - When the level was asked to stop early (C(<ledger>.stop) appeared), in seconds from its
      start; what was sent until then is the level. Null when it ran its whole length.
  returned: success
  type: float
  sample: 5400.0
blocked_s:
  description: >-
    Seconds the generator waited for room in a full pipe: the Observer's back-pressure. A
    generator late without it could not keep the schedule by itself (generator-bound).
  returned: success
  type: float
  sample: 0.0
cpu_s:
  description: CPU seconds the generator used over the level.
  returned: success
  type: float
  sample: 0.41
generator_cpu_pct:
  description: The generator's own CPU (the sender and its records follower), in percent of the machine (all cores), over the level.
  returned: success
  type: float
  sample: 0.5
failure:
  description: "Why the level ended early (C(process failure: ...)), or null."
  returned: always
  type: str
ledger:
  description: Path of the ledger of lines sent.
  returned: always
  type: str
freshness:
  description:
    - With O(output_dir), when the level's records became visible in the records files, from
      each snapshot's intended send time (C(visibility_ms), p50, p95, p99, max) and from when
      the generator was ready to send it (C(observer_visibility_ms), its own lateness left
      out; an upper bound of the Observer's receipt-to-dispatch time, late by at most
      C(poll_ms)), how many of those sent were seen (C(visible); a record never seen,
      C(unseen), counts as seen when the follower gave up), the backlog's drain time after the last send
      (C(drain_ms)) and per burst the time from its due time until all of it was visible
      (C(visible_ms)) and from its last send (C(drain_ms)). Null without O(output_dir).
  returned: success
  type: dict
  sample:
    sent: 900
    visible: 900
    unseen: 0
    visibility_ms: {"p50": 251.2, "p95": 478.0, "p99": 496.3, "max": 503.9}
    observer_visibility_ms: {"p50": 251.0, "p95": 477.8, "p99": 496.0, "max": 503.5}
    poll_ms: 5.0
    drain_ms: 480.2
    bursts: []
delivery:
  description:
    - The shape delivered against the shape intended, per 1 ms and 10 ms window from the
      level's start, the peak count in a window and the index of dispersion (variance over
      mean of the counts; about 1 for random arrivals, far above for bursts, under 1 for a
      constant rate).
    - Per burst, its size, the snapshots sent and the milliseconds from its due time until its
      last snapshot was written (C(delivered_ms)), of which C(blocked_ms) waiting on a full pipe.
  returned: success
  type: dict
  sample:
    offered: {"1ms": {"peak": 10, "dispersion": 9.9}, "10ms": {"peak": 100, "dispersion": 97.0}}
    delivered: {"1ms": {"peak": 100, "dispersion": 99.0}, "10ms": {"peak": 100, "dispersion": 97.0}}
    bursts: [{"burst": 1, "due_at_s": 2.5, "size": 100, "sent": 100, "delivered_ms": 1.2, "blocked_ms": 0.0}]
    burst_window_ms: 10.0
    burst_delivered_ms: {"p50": 1.2, "p95": 1.2, "p99": 1.2, "max": 1.2}
"""

import contextlib
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.artifacts import make_private_folder
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    Follow,
    InjectionError,
    LevelPlan,
    Outages,
    ProcessWatch,
    inject,
    open_pipe,
    read_pidfile,
    write_progress,
)
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (
    resolved_reference,
)
from ansible_collections.qts.observer.plugins.module_utils.shapes import shape_errors
from ansible_collections.qts.observer.plugins.module_utils.snapshots import run_id_prefix

RUN_TAG = re.compile(r"^[A-Za-z0-9._-]{0,64}$")


def _plan(params: dict) -> LevelPlan:
    return LevelPlan(
        rate=params["rate"],
        duration_s=params["duration_s"],
        seed=params["seed"],
        level=params["level"],
        run_tag=params["run_tag"],
        start_at=params["start_at"],
        shape=params["shape"],
        stop_path=params["ledger"] + ".stop",
    )


def _follow(params: dict, prefix: str) -> Follow | None:
    """Where the follower finds the level's records, or None when it is not asked for."""
    if not params["output_dir"]:
        return None
    return Follow(
        output_dir=params["output_dir"],
        record_files=params["record_files"] or resolved_reference()["record_files"],
        prefix=prefix,
        settle_s=params["settle_s"],
        path=params["ledger"] + ".visible",
        folder_sizes=params["ledger"] + ".folder",
    )


def _outages(module: AnsibleModule) -> Outages | None:
    """The planned outages, each checked: two numbers, the first not after the second."""
    windows = []
    for window in module.params["outages"]:
        try:
            start, end = (float(moment) for moment in window)
        except (TypeError, ValueError):
            module.fail_json(msg="outages: each must be [from_s, until_s], got %r" % (window,))
        if end < start:
            module.fail_json(msg="outages: %r ends before it starts" % (window,))
        windows.append([start, end])
    if not windows:
        return None
    return Outages(windows=windows, pidfile=module.params["pidfile"], pipe=module.params["pipe"])


def _checked_plan(module: AnsibleModule) -> LevelPlan:
    """The level's plan, its schedule drawn once (a replay's capture read once); every bad
    argument refused by name."""
    params = module.params
    for name in ("rate", "duration_s"):
        if not params[name] > 0:
            module.fail_json(msg="%s must be greater than 0, got %r" % (name, params[name]))
    if params["level"] < 1:
        module.fail_json(msg="level must be 1 or more, got %r" % params["level"])
    if params["record_files"]:
        try:
            re.compile(params["record_files"])
        except re.error as exc:
            module.fail_json(msg="record_files is not a regular expression: %s" % exc)
    if not RUN_TAG.match(params["run_tag"]):
        module.fail_json(msg="run_tag may hold only letters, digits, '.', '_' and '-' (64 at most)")
    errors = shape_errors(params["shape"], "shape")
    if errors:
        module.fail_json(msg="; ".join(errors))
    plan = _plan(params)
    try:
        total = plan.total
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if total < 1:
        module.fail_json(msg="the level's shape plans no snapshot at all (rate x duration_s)")
    return plan


def _make_work_folders(module: AnsibleModule) -> None:
    """The folders of the ledger and the progress file: the run's work folder, private."""
    for path in (module.params["ledger"], module.params["progress_file"]):
        if not path:
            continue
        try:
            make_private_folder(os.path.dirname(path))
        except OSError as exc:
            module.fail_json(
                msg="cannot make the run's work folder %s: %s" % (exc.filename, exc.strerror)
            )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "pipe": {"type": "path", "required": True},
            "pidfile": {"type": "path", "required": True},
            "rate": {"type": "float", "required": True},
            "duration_s": {"type": "float", "required": True},
            "level": {"type": "int", "default": 1},
            "seed": {"type": "int", "default": 0},
            "run_tag": {"type": "str", "default": ""},
            "start_at": {"type": "float"},
            "ledger": {"type": "path", "required": True},
            "progress_file": {"type": "path"},
            "shape": {"type": "dict"},
            "output_dir": {"type": "path"},
            "record_files": {"type": "str"},
            "settle_s": {"type": "float", "default": 10.0},
            "outages": {"type": "list", "elements": "list", "default": []},
        },
        supports_check_mode=True,
    )
    plan = _checked_plan(module)
    prefix = run_id_prefix(plan.run_tag, plan.level)
    result = {
        "changed": False,
        "planned": plan.total,
        "sent": 0,
        "first_run_id": prefix + "0",
        "last_run_id": prefix + str(plan.total - 1),
        "ledger": module.params["ledger"],
        "failure": None,
        "observer_pid": 0,
    }
    if not module.check_mode:
        _make_work_folders(module)
        # A request to stop is for the level that was running when it came.
        with contextlib.suppress(FileNotFoundError):
            os.remove(module.params["ledger"] + ".stop")
    try:
        pid = read_pidfile(module.params["pidfile"])
        result["observer_pid"] = pid
        try:
            watch = ProcessWatch(pid)
        except InjectionError as exc:
            # The Observer is already gone: the level cannot run, a process failure.
            result["failure"] = "process failure: %s" % exc
            raise
        pipe_fd = open_pipe(module.params["pipe"])
    except InjectionError as exc:
        if not module.check_mode:
            write_progress(
                module.params["progress_file"],
                dict(result, done=True, elapsed_s=0.0, failed=True, error=str(exc)),
            )
        module.fail_json(msg=result["failure"] or str(exc), **result)
    if module.check_mode:
        module.exit_json(**result)
    try:
        outcome = inject(
            plan, pipe_fd, watch, module.params["ledger"], module.params["progress_file"],
            follow_spec=_follow(module.params, prefix), outages=_outages(module),
        )  # fmt: skip
    finally:
        os.close(pipe_fd)
    result.update(outcome.as_dict(), changed=outcome.sent > 0)
    if outcome.failure:
        module.fail_json(msg=outcome.failure, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
