"""files/supervisor/qts_supervise.py with real processes: start, crash/restart, stop."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[2]
SUPERVISOR = REPO / "files" / "supervisor" / "qts_supervise.py"
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
import supervision  # noqa: E402  (standard library only, importable on its own)

pytestmark = pytest.mark.process

CHILD = """
import os, signal, sys, time

mode = sys.argv[1]
if mode == "hang":
    signal.signal(signal.SIGTERM, lambda *_: None)
if mode == "ok":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
signal.signal(signal.SIGHUP, lambda *_: open(sys.argv[2], "a").write("HUP\\n"))
with open(sys.argv[2], "a") as out:  # written once the signal handlers are in place
    out.write(f"{os.getpid()} {os.getuid()} {os.environ.get('GREETING', '')}\\n")
if mode == "crash":
    time.sleep(0.2)
    sys.exit(1)
if mode == "usage":
    sys.exit(2)
while True:
    time.sleep(0.1)
"""


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


class Service:
    def __init__(self, tmp: Path, mode: str, python: str = sys.executable, **spec: Any) -> None:
        self.tmp = tmp
        child = tmp / "child.py"
        child.write_text(CHILD)
        self.starts = tmp / "starts.txt"
        self.spec = {
            "name": "toy",
            "argv": [python, str(child), mode, str(self.starts)],
            "cwd": str(tmp),
            "env": {"PATH": "/usr/bin:/bin", "GREETING": "hello"},
            "log_file": str(tmp / "toy.log"),
            "pidfile": str(tmp / "toy.pid"),
            "state_file": str(tmp / "toy.state.json"),
            "restart_delay_s": 0.1,
            "restart_max_delay_s": 0.4,
            "stop_timeout_s": 2.0,
            **spec,
        }
        self.spec_file = tmp / "toy.spec.json"
        self.spec_file.write_text(json.dumps(self.spec))

    def start(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(SUPERVISOR), "--spec", str(self.spec_file)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def started(self) -> bool:
        """The child wrote its start line (complete): its signal handlers are in place."""
        return self.starts.exists() and self.starts.read_text().endswith("\n")

    def state(self) -> dict[str, Any]:
        return supervision.read_json(self.spec["state_file"]) or {}

    def supervisor_pid(self) -> int | None:
        return supervision.running_pid(self.spec["pidfile"])

    def stop(self, timeout: float = 10.0) -> dict[str, Any]:
        pid = self.supervisor_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not supervision.pidfile_locked(self.spec["pidfile"]), timeout)
        return self.state()


@pytest.fixture
def service(tmp_path: Path):
    made: list[Service] = []

    def make(mode: str = "ok", directory: Path = tmp_path, **spec: Any) -> Service:
        made.append(Service(directory, mode, **spec))
        return made[-1]

    yield make
    for item in made:
        pid = item.supervisor_pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        child = item.state().get("child_pid")
        if child and supervision.pid_alive(child):
            os.kill(child, signal.SIGKILL)


def test_spec_digest_is_the_same_in_the_supervisor_and_the_module_utils() -> None:
    spec = {"name": "x", "argv": ["a", "b"], "env": {"B": "2", "A": "1"}, "stop_timeout_s": 1.0}
    namespace: dict[str, Any] = {}
    exec(compile(SUPERVISOR.read_text(), str(SUPERVISOR), "exec"), namespace)
    assert namespace["spec_digest"](spec) == supervision.spec_digest(spec)


def test_starts_daemonized_and_tracks_the_child_by_pidfile(service) -> None:
    svc = service()
    proc = svc.start()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok supervisor=")
    supervisor = svc.supervisor_pid()
    assert supervisor is not None
    state = svc.state()
    assert state["status"] == "running"
    assert state["supervisor_pid"] == supervisor
    child = state["child_pid"]
    assert supervision.parent_pid(child) == supervisor
    assert os.getsid(supervisor) != os.getsid(0)  # a new session: detached from the caller
    wait_for(svc.started)
    assert svc.starts.read_text().split() == [str(child), str(os.getuid()), "hello"]
    assert "started child pid" in Path(svc.spec["log_file"]).read_text()


def test_refuses_a_second_supervisor_for_the_same_pidfile(service) -> None:
    svc = service()
    assert svc.start().returncode == 0
    second = svc.start()
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert svc.supervisor_pid() is not None


def test_stop_forwards_sigterm_and_records_a_clean_stop(service) -> None:
    svc = service()
    assert svc.start().returncode == 0
    child = svc.state()["child_pid"]
    wait_for(svc.started)  # the child handles SIGTERM from here on
    state = svc.stop()
    assert state["status"] == "stopped"
    assert state["stopped_cleanly"] is True
    assert state["last_exit"]["code"] == 0
    assert state["last_exit"]["pid"] == child
    assert state["last_exit"]["during_stop"] is True
    assert state["stop_elapsed_s"] < 2.0
    assert not Path(svc.spec["pidfile"]).exists()
    assert not supervision.pid_alive(child)


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(service) -> None:
    svc = service("hang", stop_timeout_s=0.5)
    assert svc.start().returncode == 0
    wait_for(svc.started)
    state = svc.stop()
    assert state["stopped_cleanly"] is False
    assert state["last_exit"]["signal"] == "SIGKILL"
    assert state["last_exit"]["killed_after_timeout"] is True
    assert 0.5 <= state["stop_elapsed_s"] < 2.0


def test_a_crash_is_restarted_with_a_new_pid_and_backoff(service) -> None:
    # A long interval and long waits: the limit is reached by the count of restarts, however
    # slow a busy machine makes each start.
    svc = service("crash", start_limit_burst=3, start_limit_interval_s=600)
    assert svc.start().returncode == 0
    first = svc.state()["child_pid"]
    restarted = wait_for(
        lambda: (state := svc.state()).get("restarts", 0) >= 1 and state.get("child_pid") and state,
        timeout=30,
    )
    assert restarted["child_pid"] != first
    # After start_limit_burst restarts the supervisor gives up, like systemd's start limit.
    wait_for(lambda: svc.state().get("status") == "failed", timeout=60)
    state = svc.state()
    assert state["restarts"] == 3
    assert state["last_exit"]["code"] == 1
    # It records the failure, then exits: on a busy machine the exit may come a moment later.
    wait_for(lambda: svc.supervisor_pid() is None, timeout=10)
    pids = [line.split()[0] for line in svc.starts.read_text().splitlines()]
    assert len(set(pids)) == 4
    log = Path(svc.spec["log_file"]).read_text()
    assert "restarting in 0.1 s" in log
    assert "restarting in 0.2 s" in log
    assert "start limit hit" in log


def test_a_bad_configuration_exit_is_not_restarted(service) -> None:
    svc = service("usage")
    assert svc.start().returncode == 0
    wait_for(lambda: svc.state().get("status") == "failed")
    state = svc.state()
    assert state["restarts"] == 0
    assert state["last_exit"]["code"] == 2
    wait_for(lambda: svc.supervisor_pid() is None, timeout=10)  # it exits after recording


def test_sighup_is_forwarded_to_the_child(service) -> None:
    svc = service()
    assert svc.start().returncode == 0
    wait_for(svc.started)
    os.kill(svc.supervisor_pid(), signal.SIGHUP)
    wait_for(lambda: "HUP" in svc.starts.read_text())
    assert svc.state()["restarts"] == 0


def test_a_stale_pidfile_is_not_taken_for_a_running_supervisor(tmp_path: Path) -> None:
    pidfile = tmp_path / "stale.pid"
    pidfile.write_text(f"{os.getpid()}\n")  # a live PID, but nobody holds the lock
    assert supervision.read_pid(str(pidfile)) == os.getpid()
    assert supervision.running_pid(str(pidfile)) is None


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
@pytest.mark.skipif(not Path("/usr/bin/python3").exists(), reason="needs /usr/bin/python3")
def test_the_child_runs_as_the_service_user(service) -> None:
    nobody = pwd.getpwnam("nobody")
    shared = Path(tempfile.mkdtemp(prefix="qts-supervise-"))
    shared.chmod(0o777)  # the child (nobody) reads its script and writes its start line here
    try:
        svc = service(directory=shared, python="/usr/bin/python3", user="nobody", group=None)
        proc = svc.start()
        assert proc.returncode == 0, proc.stderr
        wait_for(svc.started)
        assert svc.starts.read_text().split()[1] == str(nobody.pw_uid)
        assert Path(svc.spec["log_file"]).stat().st_uid == nobody.pw_uid
        assert Path(svc.spec["pidfile"]).stat().st_uid == 0  # the supervisor itself stays root
        assert svc.stop()["stopped_cleanly"] is True
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_a_symlinked_log_file_is_refused(service, tmp_path: Path) -> None:
    target = tmp_path / "precious"
    target.write_text("keep\n")
    svc = service()
    Path(svc.spec["log_file"]).symlink_to(target)
    proc = svc.start()
    assert proc.returncode == 1
    assert target.read_text() == "keep\n"
    assert not Path(svc.spec["pidfile"]).exists()
