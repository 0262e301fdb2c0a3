"""The qts.observer.supervised_service module, run by ansible-playbook against real processes."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
import supervision  # noqa: E402

pytestmark = pytest.mark.process

CHILD = """
import os, signal, sys, time

if sys.argv[1] == "hang":
    signal.signal(signal.SIGTERM, lambda *_: None)
else:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if sys.argv[1] == "usage":
    print("bad configuration: buffer.max_buffer_size", file=sys.stderr)
    sys.exit(2)
with open(sys.argv[2] + ".tmp", "w") as out:
    out.write(f"{os.getpid()}\\n")
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
while True:
    time.sleep(0.1)
"""

SERVICE = """
name: toy
command: ["{{ python }}", "{{ dir }}/child.py", "{{ mode | default('ok') }}", "{{ dir }}/child.pid"]
chdir: "{{ dir }}"
environment: {GREETING: "{{ greeting | default('hello') }}"}
log_file: "{{ dir }}/toy.log"
pidfile: "{{ dir }}/toy.pid"
supervisor: "{{ supervisor }}"
python: "{{ python }}"
ready_pidfile: "{{ dir }}/child.pid"
stop_timeout_s: 1
start_timeout_s: 10
"""


@pytest.fixture
def toy(tmp_path: Path):
    (tmp_path / "child.py").write_text(CHILD)
    variables = {
        "dir": str(tmp_path),
        "python": sys.executable,
        "supervisor": str(REPO / "files" / "supervisor" / "qts_supervise.py"),
    }
    yield variables
    pid = supervision.running_pid(str(tmp_path / "toy.pid"))
    if pid is not None:
        state = supervision.read_json(str(tmp_path / "toy.state.json")) or {}
        os.kill(pid, signal.SIGKILL)
        if state.get("child_pid") and supervision.pid_alive(state["child_pid"]):
            os.kill(state["child_pid"], signal.SIGKILL)


def service_task(
    name: str, register: str, params: dict[str, str] | None = None, **task_vars: str
) -> str:
    """A task of the module on the toy service; task_vars (mode, greeting) shape its spec."""
    lines = [f"- name: {name}", "  qts.observer.supervised_service:"]
    lines += ["    " + line for line in SERVICE.strip().splitlines()]
    lines += [f"    {key}: {value}" for key, value in (params or {}).items()]
    lines += [f"  register: {register}"]
    if task_vars:
        lines += ["  vars:"] + [f"    {key}: {value}" for key, value in task_vars.items()]
    return "\n".join(lines) + "\n"


def test_start_is_idempotent_restarts_on_spec_change_and_stops_cleanly(playbook, toy) -> None:
    tasks = (
        service_task("Start", "started")
        + service_task("Start again", "again")
        + service_task("Check a spec change", "would", greeting="bye")
        + "  check_mode: true\n"
        + service_task("Change the spec", "respec", greeting="bye")
        + service_task("Stop", "stopped", {"state": "stopped"}, greeting="bye")
        + service_task("Stop again", "stopped_again", {"state": "stopped"}, greeting="bye")
        + """
- name: Collect
  ansible.builtin.set_fact:
    results: "{{ {'started': started, 'again': again, 'would': would, 'respec': respec,
                  'stopped': stopped, 'stopped_again': stopped_again} }}"
"""
    )
    proc, results = playbook(tasks, toy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    started, again = results["started"], results["again"]
    assert started["changed"] and started["action"] == "start"
    assert started["state"] == "running"
    assert started["pid"] and started["supervisor_pid"]
    assert started["pid"] != started["supervisor_pid"]
    assert not again["changed"] and again["action"] == "none"
    assert again["pid"] == started["pid"]
    assert results["would"]["changed"] and results["would"]["action"] == "restart"
    respec = results["respec"]
    assert respec["changed"] and respec["action"] == "restart"
    assert respec["pid"] != started["pid"]
    assert respec["stopped_cleanly"] is True
    stopped = results["stopped"]
    assert stopped["changed"] and stopped["state"] == "stopped"
    assert stopped["stopped_cleanly"] is True
    assert stopped["exit_status"] == 0
    assert stopped["elapsed_s"] < 1.0
    assert not results["stopped_again"]["changed"]
    assert not supervision.pid_alive(respec["pid"])


def test_check_mode_starts_nothing(playbook, toy) -> None:
    proc, results = playbook(
        service_task("Start in check mode", "out")
        + "- name: Collect\n  ansible.builtin.set_fact:\n    results: '{{ out }}'\n",
        toy,
        check=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results["changed"] and results["action"] == "start"
    assert not Path(toy["dir"], "toy.pid").exists()
    assert not Path(toy["dir"], "toy.log").exists()


def test_an_unclean_stop_fails_or_warns(playbook, toy) -> None:
    tasks = (
        service_task("Start a child that ignores SIGTERM", "started", mode="hang")
        + service_task(
            "Stop it, warning only",
            "warned",
            {"state": "stopped", "on_unclean_stop": "warn"},
            mode="hang",
        )
        + service_task("Start it again", "again", mode="hang")
        + service_task("Stop it, failing", "failed", {"state": "stopped"}, mode="hang")
        + "  ignore_errors: true\n"
        + """
- name: Collect
  ansible.builtin.set_fact:
    results: "{{ {'warned': warned, 'failed': failed} }}"
"""
    )
    proc, results = playbook(tasks, toy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warned, failed = results["warned"], results["failed"]
    assert not warned.get("failed")
    assert warned["stopped_cleanly"] is False
    assert warned["exit_signal"] == "SIGKILL"
    assert any("did not stop cleanly" in w for w in warned["warnings"])
    assert failed["failed"] is True
    assert failed["stopped_cleanly"] is False
    assert "did not stop cleanly within 1 s" in failed["msg"]
    assert failed["elapsed_s"] >= 1.0


def test_a_service_that_cannot_start_fails_the_task(playbook, toy) -> None:
    tasks = (
        service_task("Start a child that exits 2", "out", mode="usage")
        + "  ignore_errors: true\n"
        + "- name: Collect\n  ansible.builtin.set_fact:\n    results: '{{ out }}'\n"
    )
    proc, results = playbook(tasks, toy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results["failed"] is True
    assert "did not start: pid" in results["msg"]
    assert "exit status 2" in results["msg"]
    assert results["exit_status"] == 2
    assert any("buffer.max_buffer_size" in line for line in results["log_tail"])
    assert supervision.running_pid(str(Path(toy["dir"], "toy.pid"))) is None
