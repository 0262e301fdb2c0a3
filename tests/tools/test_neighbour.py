"""The busy neighbour of the e2e tests keeps a free core busy and takes nothing from the
suite's other jobs, each of which runs in a session (an autogroup) of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stressrun import a_neighbour_keeps_one_core_busy

pytestmark = pytest.mark.process


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_neighbour_gives_way_to_jobs_in_other_sessions():
    """As many busy jobs as cores, each in its own session as tools/phases.py starts them:
    a `nice -n 19` spinner in a session of its own would take a third of the machine here
    (measured: 3.6 CPU-s in 6 s beside two such jobs); the neighbour takes almost none."""
    jobs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
        for _core in range(os.cpu_count() or 1)
    ]
    try:
        with a_neighbour_keeps_one_core_busy() as neighbour:
            time.sleep(0.5)  # started and scheduled
            before = _cpu_s(neighbour.pid)
            time.sleep(5.0)
            taken = _cpu_s(neighbour.pid) - before
            assert neighbour.poll() is None
    finally:
        for job in jobs:
            job.kill()
            job.wait()
    assert taken < 0.5, f"the neighbour took {taken:.2f} CPU-s of 5 s from busy jobs"
