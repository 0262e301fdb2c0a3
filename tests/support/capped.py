"""The load generator of one run held to a CPU quota (cgroup v1's cpu controller), the rest of
the machine uncapped: what a generator that cannot keep up looks like, made on purpose."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import is_root
from stressrun import ROOT, user_env

CPU_CGROUP = Path("/sys/fs/cgroup/cpu")  # cgroup v1's cpu controller (this machine's)
needs_cpu_cap = pytest.mark.skipif(
    not (is_root() and (CPU_CGROUP / "cpu.cfs_quota_us").exists()),
    reason="capping the generator needs root and cgroup v1's cpu controller",
)


def provision_uncapped(root: Path) -> None:
    """The embedded default provisioned under ``root`` before the cap: the Observer is not the
    generator's sibling in it."""
    provisioned = subprocess.run(
        ["make", "--no-print-directory", "provision", "INVENTORY=inventories/local",
         f"ARGS=-e qts_local_root={root}"],
        cwd=ROOT, env=user_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=600, check=False,
    )  # fmt: skip
    assert provisioned.returncode == 0, provisioned.stdout[-3000:]


@contextlib.contextmanager
def generator_capped(remote_tmp: Path, quota_us: int, period_us: int) -> Iterator[list[int]]:
    """This run's load generator (the snapshot_load module run from ``remote_tmp``) moved, as
    soon as it starts, into a cgroup allowed ``quota_us`` of CPU time each ``period_us``; the
    Observer and Ansible run uncapped, and so does every other run's generator: the tests
    beside this one in `make test` run theirs at the same time, and capping them would both
    starve this one and fail theirs. Yields the PIDs moved, as they are moved."""
    group = CPU_CGROUP / ("qts_capped_generator_%d" % os.getpid())
    group.mkdir()
    (group / "cpu.cfs_period_us").write_text(str(period_us))
    (group / "cpu.cfs_quota_us").write_text(str(quota_us))
    stop = threading.Event()
    moved: list[int] = []

    def ours(argv: list[bytes]) -> bool:
        # The module itself: `python <remote_tmp>/ansible-tmp-*/AnsiballZ_snapshot_load.py`
        # (its async wrapper names it later in its own command line, and only waits).
        module = Path(os.fsdecode(argv[1])) if len(argv) > 1 else Path()
        return module.name == "AnsiballZ_snapshot_load.py" and remote_tmp in module.parents

    def move() -> None:
        while not stop.wait(0.02):
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit() or int(proc.name) in moved:
                    continue
                with contextlib.suppress(OSError):
                    if ours((proc / "cmdline").read_bytes().split(b"\0")):
                        (group / "cgroup.procs").write_text(proc.name)
                        moved.append(int(proc.name))

    mover = threading.Thread(target=move, daemon=True)
    mover.start()
    try:
        yield moved
    finally:
        stop.set()
        mover.join()
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                (CPU_CGROUP / "cgroup.procs").write_text(pid)
        group.rmdir()
