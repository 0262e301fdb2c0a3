"""cgroups: one per host, since this machine's PID 1 is not systemd. Each host's cgroup goes
under this process's own, in every hierarchy the host needs; this module makes and removes
them (and the strays of a lab whose controller died), reads a host's CPU time there and
limits its CPU there (`limit-cpu`)."""

from __future__ import annotations

import errno
import time
from pathlib import Path

from .common import LabError, read_text


def cgroup_roots() -> list[Path]:
    """Where each host's cgroup goes: under this process's own cgroup, in the hierarchies
    nspawn and systemd in the host need (name=systemd, the unified one), the memory one (so a
    host's memory is its own), the CPU accounting one and the CPU one (`limit-cpu`)."""
    mounts: dict[str, Path] = {}
    for line in (read_text("/proc/self/mountinfo") or "").splitlines():
        left, _unused, right = line.partition(" - ")
        fstype, _source, options = [*right.split(), "", "", ""][:3]
        point = Path(left.split()[4])
        if fstype == "cgroup2":
            mounts.setdefault("", point)
        elif fstype == "cgroup":
            for option in options.split(","):
                if option in ("memory", "cpuacct", "cpu") or option.startswith("name="):
                    mounts.setdefault(option, point)
    roots: list[Path] = []
    for line in (read_text("/proc/self/cgroup") or "").splitlines():
        _unused, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") or [""]:
            wanted = ("", "name=systemd", "memory", "cpuacct", "cpu")
            if controller in mounts and controller in wanted:
                root = mounts[controller] / path.lstrip("/")
                if root not in roots:  # cpu and cpuacct often share one mount
                    roots.append(root)
    return roots


def make_cgroups(lab: str, host: str) -> list[str]:
    made = []
    for root in cgroup_roots():
        path = root / f"qtslab-{lab}" / host
        path.mkdir(parents=True, exist_ok=True)
        made.append(str(path))
    return made


def _rmdir(path: Path, timeout_s: float = 3.0) -> None:
    """Remove an empty cgroup, waiting out EBUSY: the kernel lets go of a cgroup a moment
    after its last process is reaped (cgroup v1 memory most of all), and a busy machine
    makes that moment longer."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                return  # reported by whoever checks for leftovers (make lab-status, the tests)
            time.sleep(0.05)


def remove_cgroups(paths: list[str]) -> None:
    """Remove each host cgroup and what nspawn made inside it, deepest first, then the lab's
    own level once its last host is gone."""
    for path in paths:
        base = Path(path)
        if not base.is_dir():
            continue
        for sub in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            _rmdir(sub)
        _rmdir(base)
        if base.parent.is_dir() and not any(p.is_dir() for p in base.parent.iterdir()):
            _rmdir(base.parent)


def remove_stray_cgroups(lab: str) -> None:
    """Empty cgroups of this lab that no state records: left by a lab whose controller died
    (a killed session, a rebooted runner's leftovers under another parent cgroup). A cgroup
    that still holds a process is left alone (rmdir refuses it)."""
    for found in Path("/sys/fs/cgroup").glob(f"**/qtslab-{lab}"):
        if found.is_dir():
            remove_cgroups([str(host) for host in found.iterdir() if host.is_dir()] or [str(found)])
            _rmdir(found)


def cpu_seconds(paths: list[str]) -> float | None:
    """CPU time of everything that ran in a host, from its cgroup."""
    for path in paths:
        stat = read_text(Path(path) / "cpu.stat")
        if stat:
            for line in stat.splitlines():
                key, _unused, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value) / 1e6
        usage = read_text(Path(path) / "cpuacct.usage")
        if usage:
            return int(usage) / 1e9
    return None


# The longest CFS period (1 s): the smallest share a quota can give is 1 ms of it (0.1 %).
CFS_PERIOD_US = 1_000_000
CFS_MIN_QUOTA_US = 1000


def limit_cpu(paths: list[str], percent: float) -> str:
    """Hold everything in a host to `percent` of one core (0: no limit), as a machine whose
    cores are taken by others would: a CFS quota on its cgroup (cgroup v1 `cpu`, or v2
    `cpu.max`). Returns what was written."""
    quota = max(CFS_MIN_QUOTA_US, round(CFS_PERIOD_US * percent / 100)) if percent > 0 else -1
    for path in map(Path, paths):
        if (path / "cpu.cfs_quota_us").is_file():
            (path / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota))
            return f"cpu.cfs_quota_us {quota} per {CFS_PERIOD_US} us"
        if (path / "cpu.max").is_file():
            value = f"{'max' if quota < 0 else quota} {CFS_PERIOD_US}"
            (path / "cpu.max").write_text(value)
            return f"cpu.max {value}"
    raise LabError(f"no CPU controller in the host's cgroups {paths}: cannot limit its CPU")
