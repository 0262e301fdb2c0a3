#!/usr/bin/python
# Copyright: (c) 2026, QTS
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: run a service under qts_supervise.py where systemd is not the service manager."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: supervised_service
short_description: Run a service under C(qts_supervise.py) where systemd is not the service manager
version_added: "0.1.0"
description:
  - Starts, stops or restarts one long-running process under the collection's small supervisor,
    C(files/supervisor/qts_supervise.py), for hosts whose PID 1 is not systemd (containers,
    build machines).
  - The supervisor daemonizes, drops the child's privileges to O(user)/O(group), restarts the
    child after a crash with a growing delay (like systemd C(Restart=on-failure)), forwards
    SIGTERM, SIGINT and SIGHUP, and records the child's last exit status in O(state_file).
  - The supervisor is tracked by its pidfile, which it keeps locked while it runs; processes are
    never looked up by command line.
  - O(state=started) is idempotent; when the requested spec (command, environment, user, restart
    policy, ...) differs from the one the running supervisor was started with, the service is
    restarted so that what runs is what was asked for.
  - O(state=stopped) sends SIGTERM, waits up to O(stop_timeout_s) and reports whether the child
    stopped cleanly (exit status 0 within the timeout). An unclean stop fails the task or warns,
    per O(on_unclean_stop).
author:
  - QTS (@qts)
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports what would change without starting or signalling anything.
  diff_mode:
    support: full
    details: Shows the running state and the spec before and after.
  platform:
    details: Linux; uses C(flock) and C(/proc).
options:
  name:
    description: Service name, used in messages and log lines.
    type: str
    required: true
  state:
    description:
      - V(started) starts the service unless it runs with the same spec.
      - V(stopped) stops it (SIGTERM, wait, SIGKILL after O(stop_timeout_s)).
      - V(restarted) stops it if it runs, then starts it.
    type: str
    choices: [started, stopped, restarted]
    default: started
  command:
    description: The command to run, as a list (no shell). Required to start.
    type: list
    elements: str
  chdir:
    description: Working directory of the service.
    type: path
    default: /
  environment:
    description:
      - The whole environment of the service (nothing is inherited from Ansible).
      - When C(PATH) is not given, C(/usr/local/bin:/usr/bin:/bin) is used.
    type: dict
    default: {}
  user:
    description: Run the service as this user. Needs root unless it is the current user.
    type: str
  group:
    description: Run the service with this primary group (default the user's).
    type: str
  umask:
    description: The service's umask, in octal.
    type: str
    default: "0027"
  log_file:
    description: The service's standard output and error, and the supervisor's own events.
    type: path
  pidfile:
    description: The supervisor's pidfile. Its directory should be writable by root only.
    type: path
    required: true
  state_file:
    description: The supervisor's JSON status (default beside O(pidfile), C(NAME.state.json)).
    type: path
  spec_file:
    description: Where the spec given to the supervisor is written (default beside O(pidfile)).
    type: path
  supervisor:
    description: Path of C(qts_supervise.py) on the host. Required to start.
    type: path
  python:
    description: Python interpreter that runs the supervisor (default the module's).
    type: path
  restart:
    description: When to restart the service after it ends by itself.
    type: str
    choices: [on-failure, always, "no"]
    default: on-failure
  restart_delay_s:
    description: Delay before the first restart; it doubles with each failure in a row.
    type: float
    default: 1.0
  restart_max_delay_s:
    description: Upper bound of the restart delay.
    type: float
    default: 30.0
  restart_prevent_exit_codes:
    description: Exit statuses that are never restarted (the Observer's 2 means bad configuration).
    type: list
    elements: int
    default: [2]
  start_limit_burst:
    description: Give up after this many restarts within O(start_limit_interval_s).
    type: int
    default: 5
  start_limit_interval_s:
    description: Window for O(start_limit_burst).
    type: float
    default: 60.0
  ready_pidfile:
    description:
      - The service's own pidfile. When set, the service is ready once this file names the
        supervisor's child; otherwise once the child survived one second.
    type: path
  start_timeout_s:
    description: How long to wait for the service to become ready before failing.
    type: float
    default: 15.0
  stop_timeout_s:
    description:
      - How long the service may take to stop after SIGTERM before it is killed with SIGKILL.
      - A stop is clean when the service exits with status 0 within this time.
    type: float
    default: 10.0
  on_unclean_stop:
    description: Fail the task, or only warn, when the service does not stop cleanly.
    type: str
    choices: [fail, warn]
    default: fail
notes:
  - The supervisor is not started at boot; it is meant for hosts whose service manager is not
    systemd. Use systemd units where systemd is PID 1.
seealso:
  - module: ansible.builtin.systemd_service
"""

EXAMPLES = r"""
- name: Run the Observer under the supervisor
  qts.observer.supervised_service:
    name: qts-observer
    command:
      - /opt/qts_observer/venv/bin/python
      - /opt/qts_observer/observer.py
      - --config
      - /opt/qts_observer/config/stress_config.json
    chdir: /opt/qts_observer
    environment:
      QTS_OBSERVER_STANDALONE: "1"
    user: qts-observer
    group: qts-observer
    log_file: /var/log/qts_observer/supervisor.log
    pidfile: /run/qts_supervise/qts-observer.pid
    supervisor: /opt/qts_observer/bin/qts_supervise.py
    python: /opt/qts_observer/venv/bin/python
    ready_pidfile: /run/qts_observer/observer.pid

- name: Stop it and report whether it stopped cleanly
  qts.observer.supervised_service:
    name: qts-observer
    pidfile: /run/qts_supervise/qts-observer.pid
    state: stopped
    stop_timeout_s: 10
    on_unclean_stop: warn
  register: stop_result
"""

RETURN = r"""
state:
  description: Whether the service runs after the task.
  returned: always
  type: str
  sample: running
action:
  description: What the task did (or would do in check mode).
  returned: always
  type: str
  sample: started
supervisor_pid:
  description: PID of the supervisor (null when stopped).
  returned: always
  type: int
  sample: 4242
pid:
  description: PID of the service process (the supervisor's child; null when stopped).
  returned: always
  type: int
  sample: 4243
restarts:
  description: Restarts after crashes since the supervisor started.
  returned: when known
  type: int
  sample: 0
stopped_cleanly:
  description: Whether the last stop ended with exit status 0 within O(stop_timeout_s).
  returned: when a stop is known
  type: bool
  sample: true
exit_status:
  description: Exit status of the service's last run (null when it ended by a signal).
  returned: when a run has ended
  type: int
  sample: 0
exit_signal:
  description: Signal that ended the service's last run, if any.
  returned: when a run has ended
  type: str
  sample: SIGKILL
elapsed_s:
  description: Seconds from the stop signal to the end of the supervisor.
  returned: when the task stopped the service
  type: float
  sample: 0.31
last_exit:
  description: The supervisor's record of the service's last exit.
  returned: when a run has ended
  type: dict
  sample: {code: 0, signal: null, during_stop: true, killed_after_timeout: false, runtime_s: 12.5}
log_tail:
  description: Last lines of O(log_file) when the service failed to start or stop.
  returned: on failure
  type: list
  elements: str
"""

import os
import signal
import subprocess
import sys
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.supervision import (
    describe_exit,
    parent_pid,
    pid_alive,
    pidfile_locked,
    read_json,
    read_pid,
    running_pid,
    spec_digest,
    tail,
    wait_until,
    write_json_atomic,
)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
STOP_MARGIN_S = 5.0
LAUNCH_TIMEOUT_S = 30.0


class ServiceError(Exception):
    """The service could not be brought to the requested state."""

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.facts = facts


def derived_path(pidfile: str, suffix: str) -> str:
    base = pidfile[:-4] if pidfile.endswith(".pid") else pidfile
    return f"{base}{suffix}"


def build_spec(params: dict[str, Any]) -> dict[str, Any]:
    """The spec the supervisor is given; its digest decides whether a restart is needed."""
    environment = {str(k): str(v) for k, v in (params["environment"] or {}).items()}
    environment.setdefault("PATH", DEFAULT_PATH)
    return {
        "name": params["name"],
        "argv": list(params["command"]),
        "cwd": params["chdir"],
        "env": environment,
        "user": params["user"],
        "group": params["group"],
        "umask": params["umask"],
        "log_file": params["log_file"],
        "pidfile": params["pidfile"],
        "state_file": params["state_file"],
        "restart": params["restart"],
        "restart_delay_s": float(params["restart_delay_s"]),
        "restart_max_delay_s": float(params["restart_max_delay_s"]),
        "restart_prevent_exit_codes": list(params["restart_prevent_exit_codes"]),
        "start_limit_burst": int(params["start_limit_burst"]),
        "start_limit_interval_s": float(params["start_limit_interval_s"]),
        "stop_timeout_s": float(params["stop_timeout_s"]),
    }


def current_status(params: dict[str, Any]) -> dict[str, Any]:
    pid = running_pid(params["pidfile"])
    state = read_json(params["state_file"]) or {}
    if pid is not None and state.get("supervisor_pid") != pid:
        state = {}
    return {"running": pid is not None, "supervisor_pid": pid, "state": state}


def exit_facts(state: dict[str, Any]) -> dict[str, Any]:
    last = state.get("last_exit") or None
    facts: dict[str, Any] = {"restarts": state.get("restarts")}
    if last:
        facts.update(last_exit=last, exit_status=last.get("code"), exit_signal=last.get("signal"))
    if state.get("stopped_cleanly") is not None:
        facts["stopped_cleanly"] = state["stopped_cleanly"]
    return facts


def validate(module: AnsibleModule) -> None:
    params = module.params
    for key in ("pidfile", "log_file", "state_file", "spec_file", "chdir"):
        value = params.get(key)
        if value and not os.path.isabs(value):
            module.fail_json(msg=f"{key} must be an absolute path, not {value!r}")
    for key in ("restart_delay_s", "restart_max_delay_s", "start_timeout_s", "stop_timeout_s"):
        if params[key] < 0:
            module.fail_json(msg=f"{key} must not be negative")
    if params["start_limit_burst"] < 1:
        module.fail_json(msg="start_limit_burst must be at least 1")
    try:
        int(params["umask"], 8)
    except ValueError:
        module.fail_json(msg=f"umask {params['umask']!r} is not an octal number")
    params["python"] = params["python"] or sys.executable
    if params["state"] != "stopped":
        if not params["command"]:
            module.fail_json(msg="command must not be empty")
        if module.check_mode:
            return  # in check mode, earlier tasks did not install them
        for key in ("supervisor", "python"):
            if not os.path.isfile(params[key]):
                module.fail_json(msg=f"{key} {params[key]} does not exist on the host")


def launch(params: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """Start the supervisor and wait until the service is ready."""
    write_json_atomic(params["spec_file"], spec, mode=0o600)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [params["python"], params["supervisor"], "--spec", params["spec_file"]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LAUNCH_TIMEOUT_S,
            env={"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ServiceError(f"{spec['name']}: the supervisor did not start within 30 s") from None
    if proc.returncode != 0:
        raise ServiceError(
            f"{spec['name']}: the supervisor refused to start: "
            f"{(proc.stderr or proc.stdout).strip() or 'exit status ' + str(proc.returncode)}",
            log_tail=tail(spec["log_file"]),
        )
    ready = wait_ready(params, spec, started)
    return {"state": "running", **ready}


def wait_ready(params: dict[str, Any], spec: dict[str, Any], started: float) -> dict[str, Any]:
    outcome: dict[str, Any] = {}

    def check() -> bool:
        status = current_status(params)
        state = status["state"]
        if not status["running"] or state.get("restarts"):
            outcome["failed"] = state or read_json(params["state_file"]) or {}
            return True
        child = state.get("child_pid")
        if params["ready_pidfile"]:
            ok = child is not None and read_pid(params["ready_pidfile"]) == child
        else:
            ok = pid_alive(child) and time.monotonic() - started >= 1.0
        if ok:
            outcome["ready"] = {"supervisor_pid": status["supervisor_pid"], "pid": child}
        return ok

    if wait_until(check, params["start_timeout_s"]) and "ready" in outcome:
        return outcome["ready"]
    state = outcome.get("failed") or current_status(params)["state"]
    reason = (
        describe_exit(state.get("last_exit"))
        if "failed" in outcome
        else f"not ready within {params['start_timeout_s']:g} s"
    )
    stop_quietly(params)
    raise ServiceError(
        f"{spec['name']} did not start: {reason}; see {spec['log_file']}",
        log_tail=tail(spec["log_file"]),
        **exit_facts(state),
    )


def stop_quietly(params: dict[str, Any]) -> None:
    """Stop a supervisor whose child failed to start, so no crash loop is left behind."""
    pid = running_pid(params["pidfile"])
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not pidfile_locked(params["pidfile"]), params["stop_timeout_s"] + 5)


def terminate(params: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    """SIGTERM the supervisor, wait, and report how the service ended."""
    pid = status["supervisor_pid"]
    pidfile = params["pidfile"]
    running_spec = read_json(params["spec_file"]) or {}
    supervisor_timeout = float(running_spec.get("stop_timeout_s", params["stop_timeout_s"]))
    started = time.monotonic()
    try:
        os.kill(pid, signal.SIGTERM)
    except PermissionError:
        raise ServiceError(
            f"not allowed to signal the supervisor (pid {pid}) of {params['name']}"
        ) from None
    except ProcessLookupError:
        pass
    wait_s = max(params["stop_timeout_s"], supervisor_timeout) + STOP_MARGIN_S
    gone = wait_until(lambda: not pidfile_locked(pidfile), wait_s)
    elapsed = round(time.monotonic() - started, 3)
    forced = False
    if not gone:
        forced = True
        child = (status["state"] or {}).get("child_pid")
        if child and parent_pid(child) == pid:
            os.kill(child, signal.SIGKILL)
        if not wait_until(lambda: not pidfile_locked(pidfile), STOP_MARGIN_S):
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not pid_alive(pid), STOP_MARGIN_S)
        if os.path.exists(pidfile) and not pidfile_locked(pidfile):
            os.unlink(pidfile)
    state = read_json(params["state_file"]) or {}
    facts = exit_facts(state)
    clean = bool(state.get("stopped_cleanly")) and not forced
    clean = clean and elapsed <= params["stop_timeout_s"] + 1.0
    facts.update(state="stopped", stopped_cleanly=clean, elapsed_s=elapsed)
    return facts


def choose_action(wanted: str, running: bool, spec_changed: bool) -> str:
    """What reaching the wanted state takes: stop, start, restart or none."""
    if wanted == "stopped":
        return "stop" if running else "none"
    if wanted == "restarted":
        return "restart" if running else "start"
    if running:
        return "restart" if spec_changed else "none"
    return "start"


def stop(module: AnsibleModule, status: dict, result: dict[str, Any]) -> None:
    """Stop the running service into result; an unclean stop fails or warns, as asked."""
    params = module.params
    stopped = terminate(params, status)
    result.update(stopped, supervisor_pid=None, pid=None)
    if stopped["stopped_cleanly"]:
        return
    message = (
        f"{params['name']} did not stop cleanly within {params['stop_timeout_s']:g} s: "
        f"{describe_exit(stopped.get('last_exit'))}"
    )
    if params["on_unclean_stop"] == "fail":
        module.fail_json(msg=message, log_tail=tail(params["log_file"] or ""), **result)
    module.warn(message)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {
                "type": "str",
                "default": "started",
                "choices": ["started", "stopped", "restarted"],
            },
            "command": {"type": "list", "elements": "str"},
            "chdir": {"type": "path", "default": "/"},
            "environment": {"type": "dict", "default": {}},
            "user": {"type": "str"},
            "group": {"type": "str"},
            "umask": {"type": "str", "default": "0027"},
            "log_file": {"type": "path"},
            "pidfile": {"type": "path", "required": True},
            "state_file": {"type": "path"},
            "spec_file": {"type": "path"},
            "supervisor": {"type": "path"},
            "python": {"type": "path"},
            "restart": {
                "type": "str",
                "default": "on-failure",
                "choices": ["on-failure", "always", "no"],
            },
            "restart_delay_s": {"type": "float", "default": 1.0},
            "restart_max_delay_s": {"type": "float", "default": 30.0},
            "restart_prevent_exit_codes": {"type": "list", "elements": "int", "default": [2]},
            "start_limit_burst": {"type": "int", "default": 5},
            "start_limit_interval_s": {"type": "float", "default": 60.0},
            "ready_pidfile": {"type": "path"},
            "start_timeout_s": {"type": "float", "default": 15.0},
            "stop_timeout_s": {"type": "float", "default": 10.0},
            "on_unclean_stop": {"type": "str", "default": "fail", "choices": ["fail", "warn"]},
        },
        required_if=[
            ("state", "started", ("command", "log_file", "supervisor")),
            ("state", "restarted", ("command", "log_file", "supervisor")),
        ],
        supports_check_mode=True,
    )
    params = module.params
    params["state_file"] = params["state_file"] or derived_path(params["pidfile"], ".state.json")
    params["spec_file"] = params["spec_file"] or derived_path(params["pidfile"], ".spec.json")
    validate(module)

    status = current_status(params)
    wanted = params["state"]
    spec = build_spec(params) if wanted != "stopped" else None
    running_digest = status["state"].get("spec_digest") if status["running"] else None
    spec_changed = spec is not None and running_digest != spec_digest(spec)

    action = choose_action(wanted, status["running"], spec_changed)
    result: dict[str, Any] = {
        "changed": action != "none",
        "action": action,
        "state": "running" if status["running"] else "stopped",
        "supervisor_pid": status["supervisor_pid"],
        "pid": status["state"].get("child_pid") if status["running"] else None,
        **exit_facts(status["state"] or read_json(params["state_file"]) or {}),
    }
    if module._diff:
        result["diff"] = {
            "before": {"state": result["state"], "spec": read_json(params["spec_file"])},
            "after": {
                "state": "stopped" if wanted == "stopped" else "running",
                "spec": spec if spec is not None else read_json(params["spec_file"]),
            },
        }
    if module.check_mode or action == "none":
        module.exit_json(**result)

    try:
        if action in ("stop", "restart"):
            stop(module, status, result)
        if action in ("start", "restart"):
            if spec is None:  # a start always has a spec: built above for every state but stopped
                raise AssertionError("no service spec to start %s" % params["name"])
            result.update(launch(params, spec))
    except ServiceError as exc:
        result.update(exc.facts)
        module.fail_json(msg=str(exc), **result)
    except OSError as exc:
        module.fail_json(msg=f"{params['name']}: {exc}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
