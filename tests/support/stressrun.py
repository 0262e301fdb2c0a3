"""Run the stress playbook the way users do (`make smoke`) and read what it left behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The example every test that asserts a PASS uses: level and run-wide CPU, memory and
# recovery limits raised, so that a busy machine (CI runners are shared) cannot fail the
# run; everything else (throughput, latency, integrity, errors, stability) is still judged.
LAB_LEVELS = ROOT / "examples" / "lab-levels.json"
_EXAMPLE = json.loads(LAB_LEVELS.read_text())
LENIENT = {
    key: _EXAMPLE["stress_levels"][0]["thresholds"][key]
    for key in ("max_latency_ms", "max_cpu_pct", "max_memory_pct")
}
LENIENT_LIMITS = _EXAMPLE["stress_limits"]


# A spinner that runs on idle CPU only, as `nice -n 19` means on a machine without autogroup.
# With autogroup scheduling (Debian's default) a nice value only counts within its session:
# a `nice -n 19` spinner whose test waits on SSH takes its session's whole share, a third of
# the machine beside two other busy sessions, from the jobs running beside it. SCHED_IDLE, in
# a session of its own whose autogroup is niced to 19, takes only what nobody else wants.
# (Set by the spinner itself: a preexec_fn is unsafe in a process with threads.)
_IDLE_SPINNER = """
import contextlib, os
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
with contextlib.suppress(OSError), open("/proc/self/autogroup", "w") as autogroup:
    autogroup.write("19")
while True:
    pass
"""


@contextlib.contextmanager
def a_neighbour_keeps_one_core_busy() -> Iterator[subprocess.Popen]:
    """Another job on the machine, as on a shared CI runner: it keeps a core busy whenever
    one is free, and gives it up to any other work (see _IDLE_SPINNER)."""
    neighbour = subprocess.Popen([sys.executable, "-c", _IDLE_SPINNER], start_new_session=True)
    try:
        yield neighbour
    finally:
        neighbour.kill()
        neighbour.wait()


@contextlib.contextmanager
def local_install_root(root: Path) -> Iterator[Path]:
    """root as the embedded default's install root (qts_local_root): the supervisors started
    under it are stopped when it is left."""
    try:
        yield root
    finally:
        for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)


def user_env() -> dict[str, str]:
    """This environment without PYTHONUNBUFFERED, which users' machines do not set."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def shell_env() -> dict[str, str]:
    """A user's own shell: user_env() without this checkout's Ansible settings either (make
    exports ANSIBLE_CONFIG and a collections path holding the checkout itself)."""
    return {k: v for k, v in user_env().items() if not k.startswith("ANSIBLE_")}


def run_captured(
    argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    """A command as a user runs it, its output captured and its exit status kept."""
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


def build_tarball(output_dir: Path, bin_dir: Path = ROOT / ".venv" / "bin") -> Path:
    """The collection's tarball, built from this checkout with ansible-galaxy into output_dir."""
    output_dir.mkdir(parents=True, exist_ok=True)
    built = run_captured(
        [str(bin_dir / "ansible-galaxy"), "collection", "build", str(ROOT),
         "--output-path", str(output_dir)],
        output_dir, shell_env(), timeout_s=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = output_dir.glob("qts-observer-*.tar.gz")
    return tarball


def smoke_argv(
    inventory: Path | str, artifacts: Path, *extra: str, core: str | None = None
) -> list[str]:
    """`make smoke`, with .venv's ansible-core or, given core, that tested release's."""
    args = " ".join(["-e", f"stress_artifacts_dir={artifacts}", *extra])
    argv = ["make", "--no-print-directory", "smoke", f"INVENTORY={inventory}", f"ARGS={args}"]
    return [*argv, f"CORE={core}"] if core else argv


# The timeouts below only catch a run that hangs: sized for a loaded runner, where the lab's
# six-host run took 566 to 594 s in `make test` on 2 cores and over 900 s with more beside it.
def make_smoke(
    inventory: Path | str,
    artifacts: Path,
    *extra: str,
    timeout_s: float = 1800,
    core: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        smoke_argv(inventory, artifacts, *extra, core=core),
        cwd=ROOT,
        env=user_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class SmokeRun:
    """`make smoke` in the background, its output read as it comes (to act mid-run)."""

    def __init__(self, inventory: Path | str, artifacts: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            smoke_argv(inventory, artifacts, *extra),
            cwd=ROOT,
            env=user_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self._lines)

    def wait_for(self, pattern: str, timeout_s: float = 1500) -> re.Match[str]:
        """The first output line matching `pattern`; fails if the run ends or times out first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            lines = self._lines[seen:]
            for line in lines:
                if match := regex.search(line):
                    return match
            seen += len(lines)
            assert self.process.poll() is None, f"ended before {pattern!r}:\n{self.text[-4000:]}"
            assert time.monotonic() < deadline, f"no {pattern!r} in time:\n{self.text[-4000:]}"
            time.sleep(0.2)

    def wait(self, timeout_s: float = 1800) -> int:
        try:
            returncode = self.process.wait(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        self._reader.join(timeout=10)
        return returncode


def lenient_level(rate: int, duration_s: int, **thresholds: float) -> dict:
    """One level with lenient thresholds, throughput at least rate - 1 unless given."""
    return {
        "rate": rate,
        "duration_s": duration_s,
        "thresholds": {"min_throughput": rate - 1, **LENIENT, **thresholds},
    }


def levels_args(levels: list[dict], limits: dict | None = None) -> list[str]:
    """`-e` arguments overriding the profile's levels (and, by default, raising the run-wide
    limits a busy machine breaks), quoted for make's shell."""
    variables = {
        "stress_levels": levels,
        "stress_limits": LENIENT_LIMITS if limits is None else limits,
    }
    return ["-e", "'" + json.dumps(variables, separators=(",", ":")) + "'"]


def latest_report(artifacts: Path) -> tuple[dict, ET.Element, Path]:
    """report.json, junit.xml and the folder of the newest run under `artifacts`."""
    run_dir = (artifacts / "latest").resolve()
    report = json.loads((run_dir / "report.json").read_text())
    junit = ET.parse(run_dir / "junit.xml").getroot()
    return report, junit, run_dir


def failure_messages(junit: ET.Element) -> list[str]:
    return [f.get("message") or "" for f in junit.iter("failure")]
