"""The launcher every foreign Observer runs behind: real named pipes, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

LAUNCH = Path(__file__).resolve().parents[2] / "files" / "supervisor" / "qts_launch.py"
# Echoes stdin lines to stdout until end of input, then exits 3; "pid" prints its own PID.
ECHO = (
    "import os, sys\n"
    "print('pid', os.getpid(), flush=True)\n"
    "for line in sys.stdin:\n"
    "    print('got', line.strip(), flush=True)\n"
    "sys.exit(3)\n"
)


def wait_for(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def launch(tmp_path: Path, *options: str, code: str = ECHO) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(LAUNCH), *options, "--", sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write_once(fifo: Path, text: str) -> None:
    """A producer that opens, writes and closes, as every level's generator does."""
    with open(fifo, "w") as handle:
        handle.write(text)


def test_stdin_from_the_pipe_outlives_every_producer(tmp_path):
    fifo, log, pidfile = tmp_path / "input.fifo", tmp_path / "observer.log", tmp_path / "o.pid"
    os.mkfifo(fifo, 0o600)
    proc = launch(
        tmp_path, "--stdin-fifo", str(fifo), "--output", str(log), "--pidfile", str(pidfile)
    )
    try:
        # The PID written is the command's own (exec): what the service manager sees. Wait
        # for the whole line: with PYTHONUNBUFFERED set, print writes "pid", " ", the number
        # and the newline one by one, and a read can fall between them.
        wait_for(lambda: log.exists() and log.read_text().endswith("\n"))
        own = int(log.read_text().split()[1])
        assert own == proc.pid == int(pidfile.read_text())
        for level in range(3):  # three producers, one after the other, each closing the pipe
            write_once(fifo, f"level-{level}\n")
        wait_for(lambda: log.read_text().count("got level-") == 3)
        time.sleep(0.3)
        assert proc.poll() is None, "a producer's close ended the Observer's input"
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=10)
    # SIGTERM reaches the command itself: no process in between to swallow it.
    assert status == -signal.SIGTERM
    assert [line for line in log.read_text().splitlines() if line.startswith("got")] == [
        "got level-0",
        "got level-1",
        "got level-2",
    ]
    assert oct(log.stat().st_mode & 0o777) == "0o640"


def test_exit_status_is_the_commands(tmp_path):
    proc = launch(tmp_path, code="import sys; sys.exit(7)")
    assert proc.wait(timeout=10) == 7


def test_output_is_appended_not_truncated(tmp_path):
    log = tmp_path / "observer.log"
    log.write_text("earlier run\n")
    proc = launch(tmp_path, "--output", str(log), code="print('this run')")
    assert proc.wait(timeout=10) == 0
    assert log.read_text() == "earlier run\nthis run\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("x"), "is not a named pipe"),
        (lambda p: None, "No such file or directory"),
    ],
)
def test_a_bad_input_pipe_is_named(tmp_path, make, message):
    path = tmp_path / "input.fifo"
    make(path)
    proc = launch(tmp_path, "--stdin-fifo", str(path))
    _unused, err = proc.communicate(timeout=10)
    assert proc.returncode != 0
    assert f"input pipe {path}" in err and message in err


def test_a_missing_command_is_named(tmp_path):
    done = subprocess.run(
        [sys.executable, str(LAUNCH), "--", str(tmp_path / "no-such-observer")],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode != 0
    assert "cannot run" in done.stderr and "no-such-observer" in done.stderr
    done = subprocess.run(
        [sys.executable, str(LAUNCH), "--stdin-fifo", "x"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode != 0 and "usage" in done.stderr
