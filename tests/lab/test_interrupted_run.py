"""A test run that is stopped midway leaves nothing behind, and the next run cleans what a
killed one left: `make test` itself, run on tests/support/held_run.py, which holds a lab host
booting systemd and an Observer and a monitor under the bundled supervisor (daemons, outside
the run's process group) when it is stopped.

A user's own lab (one the suite did not start) is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from held_run import LAB as HELD_LAB
from labkit import NEEDS_ROOT, Lab, is_root, live_pids
from stressrun import ROOT, user_env

pytestmark = pytest.mark.lab

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

HELD_TEST = ROOT / "tests" / "support" / "held_run.py"
JANITOR = ROOT / "tools" / "janitor.py"
# A lab started by hand (no test run owns it): what a developer has up beside the suite.
USER_LAB = Lab(name="userlab-beside-the-suite", base_addr="127.0.0.212", port=2212)
# make test on a loaded machine: venv check, the images' recipes, pytest's start, a host boot.
HELD_WITHIN_S = 600
STOPPED_WITHIN_S = 240


def start_make_test(folder: Path) -> subprocess.Popen[bytes]:
    """`make test` on the held test only (its lab job and the images it needs), its output
    in folder/make.log; make leads a process group of its own."""
    env = {**user_env(), "QTS_HELD_DIR": str(folder)}
    env.pop("QTS_TEST_RUN", None)  # a run of its own, as a developer starts one
    with (folder / "make.log").open("wb") as log:
        return subprocess.Popen(
            ["make", "--no-print-directory", "test", "JOBS=lab", f"PYTEST_ARGS={HELD_TEST}",
             f"TEST_TIMES={folder / 'times'}"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def log_of(folder: Path) -> str:
    return (folder / "make.log").read_text(errors="replace")


def wait_held(folder: Path, make: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + HELD_WITHIN_S
    while not (folder / "held").exists():
        assert make.poll() is None, f"make test ended before holding:\n{log_of(folder)[-4000:]}"
        assert time.monotonic() < deadline, f"nothing held in time:\n{log_of(folder)[-4000:]}"
        time.sleep(0.5)


def group_alive(make: subprocess.Popen[bytes]) -> bool:
    """Anything left in make's process group (make itself reaped first: a zombie counts)."""
    make.poll()
    try:
        os.killpg(make.pid, 0)
    except ProcessLookupError:
        return False
    return True


def leftovers(folder: Path) -> list[str]:
    """The held lab's processes, and every process naming the held folder (the supervisors,
    the Observer, the monitor)."""
    found = [f"lab host process {pid}" for pid in HELD_LAB.processes()]
    for pid in live_pids():
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            if str(folder) in argv and pid != os.getpid():
                found.append(f"{pid}: {argv[:200]}")
    return found


@pytest.fixture
def held(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("held")
    yield folder
    # Whatever the test did, nothing of it stays.
    subprocess.run([sys.executable, str(JANITOR)], check=False, timeout=300)
    HELD_LAB.run("down")


def test_sigterm_to_make_test_leaves_no_lab_host_observer_or_monitor(held):
    make = start_make_test(held)
    wait_held(held, make)
    assert HELD_LAB.processes(), "the held run has no lab host up"
    assert (held / "observer.pid").exists() and (held / "monitor.pid").exists()
    os.kill(make.pid, signal.SIGTERM)  # make alone, as `kill <pid>` does
    deadline = time.monotonic() + STOPPED_WITHIN_S
    while group_alive(make):
        assert time.monotonic() < deadline, f"make test still running:\n{log_of(held)[-4000:]}"
        time.sleep(0.5)
    text = log_of(held)
    assert "== SIGTERM: stopping" in text, text[-4000:]
    assert "== cleaned after the stop:" in text, text[-4000:]
    assert leftovers(held) == [], text[-4000:]
    assert not HELD_LAB.dir.exists()
    assert "== phase times" in text  # the table is still printed


def test_the_next_run_cleans_what_a_killed_run_left_and_never_a_users_lab(held):
    env = {k: v for k, v in user_env().items() if k != "QTS_TEST_RUN"}
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lab.py"), "up", "--hosts", "1", *USER_LAB.opts],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=True, timeout=900,
    )  # fmt: skip
    try:
        make = start_make_test(held)
        wait_held(held, make)
        os.killpg(make.pid, signal.SIGKILL)  # a killed CI job: no handler runs
        make.wait(timeout=60)
        left = leftovers(held)
        assert any("lab host" in item for item in left), left
        assert any("qts_supervise" in item for item in left), left
        # What the next run does first (tools/phases.py calls the same function).
        cleaned = subprocess.run(
            [sys.executable, str(JANITOR)], capture_output=True, text=True, check=True, timeout=300
        )
        assert "lab pytest-held down" in cleaned.stdout, cleaned.stdout
        assert leftovers(held) == [], cleaned.stdout
        assert USER_LAB.run("status", check=False).returncode == 0, "the user's lab was touched"
    finally:
        USER_LAB.run("down")
