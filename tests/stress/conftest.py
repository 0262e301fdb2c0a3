"""Fixtures of the load tests."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.fixture
def sleeper():
    """A live process whose PID stands for the Observer's (the injector watches it)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()
