"""Remove what a test run started and left behind: lab hosts, Observers, monitors.

A run of the suite (`make test`'s tools/phases.py, or pytest on its own) gives everything it
starts the environment variable QTS_TEST_RUN=<pid>.<start time> of its owner; tools/lab.py
writes it into the lab's state and hands it to the hosts' systemd-nspawn. The bundled
supervisor daemonizes (it leaves the run's process group), so a signal to the group does not
reach it, but its environment still names the run.

- ``clean_run(run_id)``: after a stopped run, everything of that run.
- ``clean_orphans()``: at the start of a run, everything of earlier runs whose owner is gone
  (killed: SIGKILL, a lost session). A live run's processes are never touched, nor a lab the
  suite did not start (a user's `make lab-up` lab has no owner).

    python3 tools/janitor.py            # what earlier, killed runs left
    python3 tools/janitor.py --run ID   # what run ID left

Standard library only; needs the rights to signal those processes (root for the lab).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RUN_VARIABLE = "QTS_TEST_RUN"
CHECKOUT = Path(__file__).resolve().parent.parent
LAB_TOOL = CHECKOUT / "tools" / "lab.py"
# Labs this suite starts (tests/support/labkit.py, Molecule's resources): never a user's.
SUITE_LAB_PREFIXES = ("pytest", "molecule-")
TERM_GRACE_S = 15.0


def new_run_id(pid: int | None = None) -> str:
    """`<pid>.<start time in clock ticks>`: a process, not a PID that may be reused."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{_start_time(pid)}"


def run_alive(run_id: str) -> bool:
    pid, _sep, started = run_id.partition(".")
    return pid.isdigit() and _start_time(int(pid)) == started and _alive(int(pid))


def _stat_fields(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _start_time(pid: int) -> str:
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else ""


def _alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _parent(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def _run_of(pid: int) -> str:
    """The QTS_TEST_RUN value in a process's environment ('' for none)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return ""
    for entry in environ.split(b"\0"):
        if entry.startswith(RUN_VARIABLE.encode() + b"="):
            return entry.split(b"=", 1)[1].decode(errors="replace")
    return ""


def _pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _ancestors() -> set[int]:
    found, pid = set(), os.getpid()
    while pid > 1:
        found.add(pid)
        pid = _parent(pid)
    return found


def _processes_of(wanted: callable) -> list[int]:
    """Live processes whose run matches `wanted(run_id)`, with every descendant they have now
    (an Observer started by a marked supervisor has an environment of its own)."""
    spared = _ancestors()
    parents = {pid: _parent(pid) for pid in _pids() if _alive(pid)}
    marked = {pid for pid in parents if (run := _run_of(pid)) and wanted(run)}
    tree = set(marked)
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    return sorted(tree - spared)


def _describe(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return str(pid)
    return f"{pid} {Path(argv[0].decode(errors='replace')).name}" if argv and argv[0] else str(pid)


def _end(pids: list[int]) -> list[str]:
    """SIGTERM (a supervisor stops its child cleanly, nspawn powers its host off), then
    SIGKILL what is still there after the grace."""
    names = [_describe(pid) for pid in pids]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + TERM_GRACE_S
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return names


def _suite_labs() -> list[tuple[str, str]]:
    """(name, owner) of every lab of this checkout that the suite started."""
    labs = []
    for state in sorted((CHECKOUT / "lab").glob("*/state.json")):
        name = state.parent.name
        if not name.startswith(SUITE_LAB_PREFIXES):
            continue
        try:
            owner = str(json.loads(state.read_text()).get("owner") or "")
        except (OSError, ValueError):
            owner = ""
        labs.append((name, owner))
    return labs


def _lab_down(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(LAB_TOOL), "down", "--name", name, "--stop-timeout", "5"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    outcome = "down" if done.returncode == 0 else f"down failed: {done.stderr.strip()[-300:]}"
    return f"lab {name} {outcome}"


def remove_job_cgroups(wanted: callable) -> list[str]:
    """The CPU accounting cgroups tools/phases.py made for a run's jobs (`qts-test-<run>`),
    once empty; rmdir refuses one that still holds a process."""
    removed = []
    for top in Path("/sys/fs/cgroup").glob("**/qts-test-*"):
        run = top.name.removeprefix("qts-test-")
        if not top.is_dir() or not wanted(run):
            continue
        for folder in sorted(top.rglob("*"), key=lambda p: -len(p.parts)):
            if folder.is_dir():
                with contextlib.suppress(OSError):
                    folder.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
            removed.append(str(top))
    return [f"removed the empty cgroups {', '.join(removed)}"] if removed else []


def _clean(wanted: callable) -> list[str]:
    cleaned = [_lab_down(name) for name, owner in _suite_labs() if owner and wanted(owner)]
    pids = _processes_of(wanted)
    if pids:
        cleaned.append("ended " + ", ".join(_end(pids)))
    return cleaned + remove_job_cgroups(wanted)


def clean_run(run_id: str) -> list[str]:
    """Everything of run `run_id` (this run, once stopped)."""
    return _clean(lambda run: run == run_id)


def clean_orphans() -> list[str]:
    """Everything of earlier runs whose owner is gone."""
    return _clean(lambda run: not run_alive(run))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--run", help="clean this run's leftovers (default: every dead run's)")
    args = parser.parse_args()
    cleaned = clean_run(args.run) if args.run else clean_orphans()
    print("\n".join(cleaned) or "nothing to clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
