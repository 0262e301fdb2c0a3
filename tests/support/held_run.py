"""Not collected on its own (its name is not test_*.py): the test that
tests/lab/test_interrupted_run.py runs inside a `make test` of its own, to stop that run
midway. It starts what a real test leaves running while it works, with no teardown of its
own: a lab host booting systemd (tools/lab.py), and an Observer and a monitor, each under the
bundled supervisor, which daemonizes (it leaves the run's process group, as the local
inventory's services do). Then it writes the file `held` and waits to be stopped.

QTS_HELD_DIR (set by the caller) is where the Observer and monitor write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labkit import Lab
from stressrun import ROOT

pytestmark = pytest.mark.lab

LAB = Lab(name="pytest-held", base_addr="127.0.0.214", port=2214)
SUPERVISOR = ROOT / "files" / "supervisor" / "qts_supervise.py"


def supervise(folder: Path, name: str, argv: list[str]) -> None:
    """Start `argv` under the bundled supervisor, daemonized, as the role's module does."""
    spec = {
        "name": name,
        "argv": argv,
        "cwd": str(folder),
        "env": {"PATH": "/usr/bin:/bin", "QTS_OBSERVER_STANDALONE": "1"},
        "log_file": str(folder / f"{name}.log"),
        "pidfile": str(folder / f"{name}.pid"),
        "state_file": str(folder / f"{name}.state.json"),
        "stop_timeout_s": 5.0,
    }
    spec_file = folder / f"{name}.spec.json"
    spec_file.write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, str(SUPERVISOR), "--spec", str(spec_file)], check=True, timeout=120
    )


def test_hold_a_lab_host_an_observer_and_a_monitor_until_stopped():
    folder = Path(os.environ["QTS_HELD_DIR"])
    LAB.run("up", "--hosts", "1")
    observer = ROOT / "files" / "observer"
    os.mkfifo(folder / "input", 0o600)
    supervise(
        folder,
        "observer",
        [sys.executable, str(observer / "observer.py"), "--output-dir", str(folder / "out"),
         "--pidfile", str(folder / "observer-child.pid"), "--input", str(folder / "input")],
    )  # fmt: skip
    monitor = ROOT / "files" / "monitor" / "qts_monitor.py"
    supervise(
        folder,
        "monitor",
        [sys.executable, str(monitor), "--pidfile", str(folder / "observer-child.pid"),
         "--output", str(folder / "monitor.csv")],
    )  # fmt: skip
    (folder / "held").write_text(str(os.getpid()))
    time.sleep(900)
