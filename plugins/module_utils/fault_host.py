# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to the collection: faults applied to a running Observer on its host, and reverted.

Each fault is written to the host's fault state file before it is applied and taken out once
reverted, so that whatever ends the job that applied it (the play interrupted, the job killed,
the host rebooted), the next run or ``stress_fault`` with no fault reverts what is left
(``revert_left``). The Observer's service manager is found from its process: a systemd unit
when its cgroup is a ``.service`` of systemd's hierarchy, else whoever supervises it (a kill
is restarted by either; a cpu cap and a graceful restart need systemd). No shell: every
command is an argument list. Standard library only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import stat
import time
from collections.abc import Callable

from .injector import InjectionError, process_start_time, read_pidfile

POLL_S = 0.1
CGROUP_ROOT = "/sys/fs/cgroup"


class FaultError(Exception):
    """A fault cannot be applied or reverted; the message says why."""


def unit_of(pid: int) -> str | None:
    """The systemd service ``pid`` runs in (``qts-observer.service``), or None."""
    try:
        with open("/proc/%d/cgroup" % pid) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _number, controllers, path = line.split(":", 2)
        if controllers in ("", "name=systemd") and path.endswith(".service"):
            return path.rsplit("/", 1)[-1]
    return None


# How commands run: the module's run_command (an argument list, no shell), given by
# ``use_runner``; (rc, stdout, stderr).
_RUNNER: list[Callable[[list[str]], tuple[int, str, str]]] = []


def use_runner(runner: Callable[[list[str]], tuple[int, str, str]]) -> None:
    """Run systemctl with ``runner`` (AnsibleModule.run_command) from now on."""
    _RUNNER[:] = [runner]


def _run(argv: list[str]) -> tuple[int, str, str]:
    if not _RUNNER:
        raise FaultError("no command runner: %s is run by the stress_fault module" % argv[0])
    return _RUNNER[0](argv)


def systemctl(*args: str) -> str:
    code, out, err = _run(["systemctl", *args])
    if code:
        raise FaultError("systemctl %s: %s" % (" ".join(args), (err or out).strip()))
    return out.strip()


def _cgroup_file(unit_cgroup: str, v2_name: str, v1_name: str) -> str | None:
    """The unit's cgroup file of a controller: cgroup v2's, else v1's cpu hierarchy's."""
    for path in (os.path.join(CGROUP_ROOT, unit_cgroup.lstrip("/"), v2_name),
                 os.path.join(CGROUP_ROOT, "unified", unit_cgroup.lstrip("/"), v2_name),
                 os.path.join(CGROUP_ROOT, "cpu,cpuacct", unit_cgroup.lstrip("/"), v1_name),
                 os.path.join(CGROUP_ROOT, "cpu", unit_cgroup.lstrip("/"), v1_name)):  # fmt: skip
        if os.path.exists(path):
            return path
    return None


def cpu_controller_reason(unit: str) -> str | None:
    """Why systemd cannot cap the unit's CPU here (None: it can): the kernel's cpu controller
    must reach the unit's cgroup and be writable (a container's read-only cgroup tree takes
    CPUQuota= and enforces nothing)."""
    parent = os.path.dirname(systemctl("show", "--property=ControlGroup", "--value", unit) or "/")
    controllers = os.path.join(CGROUP_ROOT, parent.lstrip("/"), "cgroup.controllers")
    with contextlib.suppress(OSError), open(controllers) as handle:
        if "cpu" in handle.read().split() and os.access(os.path.dirname(controllers), os.W_OK):
            return None
    for hierarchy in ("cpu,cpuacct", "cpu"):
        path = os.path.join(CGROUP_ROOT, hierarchy)
        if os.path.isdir(path) and not os.statvfs(path).f_flag & os.ST_RDONLY:
            return None
    return ("the kernel's cpu controller is not writable for %s on this host (a container's "
            "cgroups, or cgroup v2 without cpu delegated): CPUQuota= would be set and not "
            "enforced" % unit)  # fmt: skip


def _v2_controllers(unit: str) -> list[str]:
    """The cgroup v2 controllers the unit's parent hands down (none on cgroup v1)."""
    parent = os.path.dirname(systemctl("show", "--property=ControlGroup", "--value", unit) or "/")
    for root in (CGROUP_ROOT, os.path.join(CGROUP_ROOT, "unified")):
        path = os.path.join(root, parent.lstrip("/"), "cgroup.controllers")
        with contextlib.suppress(OSError), open(path) as handle:
            return handle.read().split()
    return []


def io_reason(unit: str | None, output_dir: str | None) -> str | None:
    """Why the Observer's writes cannot be capped here (None: they can): a systemd unit, on
    cgroup v2's io controller (cgroup v1 throttles direct writes only, not the page cache's
    writeback of the Observer's appends), and an output folder on a block device."""
    if unit is None:
        return "an I/O limit needs the Observer to be a systemd service (IOWriteBandwidthMax=)"
    if not output_dir or not os.path.isdir(output_dir):
        return "the Observer's output folder %s does not exist" % output_dir
    if "io" not in _v2_controllers(unit):
        return ("cgroup v2's io controller does not reach %s on this host (cgroup v1 throttles "
                "direct writes only): IOWriteBandwidthMax= would be set and not enforced" % unit)  # fmt: skip
    device = os.stat(output_dir).st_dev
    if os.major(device) == 0 or not os.path.exists(
        "/sys/dev/block/%d:%d" % (os.major(device), os.minor(device))
    ):
        return (
            "the output folder %s is on no block device (tmpfs, overlay): no I/O limit applies"
            % output_dir
        )
    return None


def io_limit_enforced(unit: str, output_dir: str, write_bps: int) -> bool:
    cgroup = systemctl("show", "--property=ControlGroup", "--value", unit)
    device = os.stat(output_dir).st_dev
    path = _cgroup_file(cgroup, "io.max", "-")
    if path is None:
        return False
    with open(path) as handle:
        lines = handle.read().splitlines()
    wanted = "%d:%d" % (os.major(device), os.minor(device))
    return any(line.startswith(wanted + " ") and "wbps=%d" % write_bps in line for line in lines)


def cpu_quota_enforced(unit: str) -> bool:
    cgroup = systemctl("show", "--property=ControlGroup", "--value", unit)
    path = _cgroup_file(cgroup, "cpu.max", "cpu.cfs_quota_us")
    if path is None:
        return False
    with open(path) as handle:
        value = handle.read().split()[0]
    return value not in ("max", "-1")


def loss_window(config_file: str | None) -> dict | None:
    """What a kill may lose of the reference Observer, from its stress configuration: the
    records it holds in its buffer (``flush_interval_ms``, at most ``max_buffer_size``; none
    with ``enable_buffering: false``) and those awaiting dispatch (the hybrid trigger's
    ``max_interval_ms``, the longest it lets pending work wait: a flush a busy host delays is
    covered too). None when the file is not such a configuration (another Observer: its fault
    says ``max_lost``)."""
    if not config_file:
        return None
    try:
        with open(config_file) as handle:
            config = json.load(handle)
        buffer, trigger = config["buffer"], config["hybrid_trigger"]
        held_ms = float(buffer["flush_interval_ms"]) if buffer["enable_buffering"] else 0.0
        pending_ms = float(trigger["max_interval_ms"]) if trigger["enabled"] else 0.0
        return {
            "window_ms": held_ms + pending_ms,
            "max_buffer_size": int(buffer["max_buffer_size"]),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None


# Where a CPU cap puts an Observer that no systemd unit runs: a cgroup of its own, named by it.
FAULT_CGROUP = "qts-stress-fault-%d"
CFS_PERIOD_US = 100_000


def cpu_hierarchy(pid: int) -> tuple[str, str] | None:
    """Where ``pid``'s CPU can be capped through cgroupfs: (the cpu controller's mount, the
    cgroup of ``pid`` in it), writable; None when there is none (cgroup v2 here only when its
    root delegates cpu)."""
    try:
        with open("/proc/%d/cgroup" % pid) as handle:
            lines = [line.split(":", 2) for line in handle.read().splitlines()]
    except OSError:
        return None
    for _number, controllers, path in lines:
        if "cpu" in controllers.split(","):
            for mount in (os.path.join(CGROUP_ROOT, controllers), os.path.join(CGROUP_ROOT, "cpu")):
                if os.path.isfile(os.path.join(mount, "cpu.cfs_quota_us")) and os.access(
                    mount, os.W_OK
                ):
                    return mount, path
    root_controls = os.path.join(CGROUP_ROOT, "cgroup.subtree_control")
    v2_path = next((path for _number, controllers, path in lines if controllers == ""), None)
    with contextlib.suppress(OSError), open(root_controls) as handle:
        if (
            v2_path is not None
            and "cpu" in handle.read().split()
            and os.access(CGROUP_ROOT, os.W_OK)
        ):
            return CGROUP_ROOT, v2_path
    return None


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as handle:
            handle.write(value)
    except OSError as exc:
        raise FaultError("cannot write %s to %s: %s" % (value, path, exc.strerror)) from None


def cap_cgroup(pid: int, quota_pct: float) -> dict:
    """Move ``pid`` (all its threads) into a cgroup of its own capped at ``quota_pct`` % of a
    core: the revert entry (where it was, where it is)."""
    found = cpu_hierarchy(pid)
    if found is None:
        raise FaultError("no writable cpu controller for pid %d" % pid)
    mount, original = found
    group = os.path.join(mount, FAULT_CGROUP % pid)
    os.makedirs(group, exist_ok=True)
    quota_us = max(int(CFS_PERIOD_US * quota_pct / 100.0), 1000)
    if os.path.exists(os.path.join(group, "cpu.max")):
        _write(os.path.join(group, "cpu.max"), "%d %d" % (quota_us, CFS_PERIOD_US))
    else:
        _write(os.path.join(group, "cpu.cfs_period_us"), str(CFS_PERIOD_US))
        _write(os.path.join(group, "cpu.cfs_quota_us"), str(quota_us))
    entry = {"type": "cpu", "pid": pid, "start_time": process_start_time(pid),
             "original": os.path.join(mount, original.lstrip("/")), "group": group}  # fmt: skip
    return entry


def uncap_cgroup(entry: dict) -> str:
    """Every process of the fault's cgroup back where the Observer was, the cgroup removed."""
    procs = os.path.join(entry["group"], "cgroup.procs")
    with contextlib.suppress(FileNotFoundError), open(procs) as handle:
        for pid in handle.read().split():
            with contextlib.suppress(FaultError):
                _write(os.path.join(entry["original"], "cgroup.procs"), pid)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(entry["group"])
    return "cpu cap of pid %d: back in %s" % (entry["pid"], entry["original"])


FILLER_NAME = ".qts-stress-fault-filler"
FILL_CHUNK = 1 << 20


def mount_point(path: str) -> str:
    """The mount point of the filesystem holding ``path``."""
    path = os.path.realpath(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def disk_full_reason(output_dir: str | None, expendable: list[str]) -> str | None:
    """Why the Observer's output filesystem may not be filled (None: it may): it must be a
    filesystem of its own, named expendable, and never the host's root filesystem."""
    if not output_dir or not os.path.isdir(output_dir):
        return "the Observer's output folder %s does not exist" % output_dir
    mount = mount_point(output_dir)
    if mount == "/" or os.stat(mount).st_dev == os.stat("/").st_dev:
        return ("the Observer's output folder %s is on the host's root filesystem: never filled"
                % output_dir)  # fmt: skip
    if mount not in {os.path.realpath(path) for path in expendable}:
        return ("its output folder's filesystem (mounted on %s) is not named in "
                "stress_fault_expendable_filesystems" % mount)  # fmt: skip
    return None


def fill(filler: str) -> None:
    """Take every free block of the filesystem holding ``filler`` (a new file, mode 0600)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        free = os.statvfs(filler)
        with contextlib.suppress(OSError):
            os.posix_fallocate(fd, 0, free.f_bfree * free.f_frsize)
        os.lseek(fd, 0, os.SEEK_END)
        for chunk in (FILL_CHUNK, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * chunk)
    finally:
        os.close(fd)


class Observer:
    """The Observer as its pidfile names it now, and the service that runs it."""

    def __init__(self, pidfile: str) -> None:
        self.pidfile = pidfile
        try:
            self.pid = read_pidfile(pidfile)
        except InjectionError as exc:
            raise FaultError(str(exc)) from None
        self.start_time = process_start_time(self.pid)
        if self.start_time is None:
            raise FaultError("the Observer (pid %d from %s) is not running" % (self.pid, pidfile))
        self.unit = unit_of(self.pid)


def _reads(pipe: str) -> bool:
    """Whether a process reads the pipe (opening it to write succeeds)."""
    try:
        if not stat.S_ISFIFO(os.stat(pipe).st_mode):
            return False
        fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def wait_back(pidfile: str, pipe: str, old_pid: int, within_s: float) -> tuple[float, int] | None:
    """When a new Observer (not ``old_pid``) ran and read its input again: (epoch, its pid),
    or None when none did within ``within_s``."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with contextlib.suppress(InjectionError):
            pid = read_pidfile(pidfile)
            if pid != old_pid and process_start_time(pid) is not None and _reads(pipe):
                return time.time(), pid
        time.sleep(POLL_S)
    return None


class StateFile:
    """The faults applied and not yet reverted on this host (JSON list, mode 0600)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def read(self) -> list[dict]:
        try:
            with open(self.path) as handle:
                entries = json.load(handle)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise FaultError(
                "the fault state file %s cannot be read: %s" % (self.path, exc)
            ) from None
        return entries if isinstance(entries, list) else []

    def write(self, entries: list[dict]) -> None:
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        temporary = "%s.%d.tmp" % (self.path, os.getpid())
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(entries, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def add(self, entry: dict) -> None:
        self.write([*self.read(), entry])

    def remove(self, entry: dict) -> None:
        self.write([e for e in self.read() if e != entry])


def _cpu_quota_now(unit: str) -> str:
    """The unit's CPUQuota= as systemctl set-property takes it back (empty: none)."""
    per_second = systemctl("show", "--property=CPUQuotaPerSecUSec", "--value", unit)
    for suffix, scale in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
        if per_second.endswith(suffix):
            with contextlib.suppress(ValueError):
                return "%g%%" % (float(per_second[: -len(suffix)]) * scale * 100.0)
    return ""


def revert(entry: dict) -> str:
    """Undo one applied fault (a state file entry): what was done."""
    kind = entry["type"]
    if kind == "pause":
        if process_start_time(entry["pid"]) != entry["start_time"]:
            return "pause of pid %d: that process has ended, nothing to continue" % entry["pid"]
        os.kill(entry["pid"], signal.SIGCONT)
        return "pause of pid %d: continued (SIGCONT)" % entry["pid"]
    if kind == "cpu" and "group" in entry:
        return uncap_cgroup(entry)
    if kind == "cpu":
        systemctl("set-property", "--runtime", entry["unit"], "CPUQuota=%s" % entry["before"])
        return "cpu cap of %s: CPUQuota=%s again" % (entry["unit"], entry["before"] or " (none)")
    if kind == "io":
        systemctl("set-property", "--runtime", entry["unit"], "IOWriteBandwidthMax=")
        for before in entry["before"]:
            systemctl("set-property", "--runtime", entry["unit"], "IOWriteBandwidthMax=%s" % before)
        return "io cap of %s: IOWriteBandwidthMax=%s again" % (
            entry["unit"],
            "; ".join(entry["before"]) or " (none)",
        )
    if kind == "disk_full":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry["filler"])
        return "disk_full of %s: filler removed" % os.path.dirname(entry["filler"])
    if kind == "restart":
        if _active(entry["unit"]):
            return "restart of %s: already running" % entry["unit"]
        systemctl("start", entry["unit"])
        return "restart of %s: started again" % entry["unit"]
    return "%s: nothing to revert" % kind


def _active(unit: str) -> bool:
    return _run(["systemctl", "is-active", "--quiet", unit])[0] == 0


def revert_left(state: StateFile) -> list[str]:
    """Revert every fault an earlier job left applied; what was done for each."""
    done = []
    for entry in state.read():
        done.append(revert(entry))
        state.remove(entry)
    return done


def refusal(
    fault: dict, observer: Observer, disk: tuple[str | None, list[str]] = (None, [])
) -> str | None:
    """Why ``fault`` cannot be applied to this Observer on this host (None: it can); ``disk``:
    its output folder and the filesystems named expendable."""
    kind = fault["type"]
    if kind == "disk_full":
        reason = disk_full_reason(*disk)
        return "%s: %s" % (fault["name"], reason) if reason else None
    if kind == "io":
        reason = io_reason(observer.unit, disk[0])
        return "%s: %s" % (fault["name"], reason) if reason else None
    if kind == "restart" and observer.unit is None:
        return ("%s: the Observer (pid %d) is not a systemd service here (the bundled "
                "supervisor runs it, or another manager): a graceful restart needs systemd"
                % (fault["name"], observer.pid))  # fmt: skip
    if kind == "cpu" and observer.unit is None:
        if cpu_hierarchy(observer.pid) is None:
            return ("%s: the Observer (pid %d) is not a systemd service and this host has no "
                    "cpu controller this user may write (cgroup v1's cpu, or v2's with cpu "
                    "delegated at its root): no CPU cap" % (fault["name"], observer.pid))  # fmt: skip
        return None
    if kind == "cpu":
        reason = cpu_controller_reason(observer.unit)
        if reason:
            return "%s: %s" % (fault["name"], reason)
    if kind in ("kill", "pause"):
        try:
            os.kill(observer.pid, 0)
        except PermissionError:
            return "%s: not allowed to signal the Observer (pid %d): run with become" % (
                fault["name"],
                observer.pid,
            )
        except ProcessLookupError:
            return "%s: the Observer (pid %d) is not running" % (fault["name"], observer.pid)
    return None


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except OSError as exc:
        if exc.errno != errno.ESRCH:
            raise FaultError("cannot signal pid %d: %s" % (pid, exc.strerror)) from None


class FaultRun:
    """Applies one fault at its moment and reverts it when its time is up, or at once when
    ``stop()`` says the level is over; every moment in epoch seconds."""

    def __init__(self, fault: dict, *, pidfile: str, pipe: str, state: StateFile,
                 stop: Callable[[], bool], disk: tuple[str | None, list[str]] = (None, [])) -> None:  # fmt: skip
        self.fault, self.pidfile, self.pipe, self.state = fault, pidfile, pipe, state
        self.stop, self.disk = stop, disk
        self.record: dict = dict(self.not_applied(fault, ""), error=None)

    @staticmethod
    def not_applied(fault: dict, why: str) -> dict:
        """The record of a fault never applied, and why."""
        return {"fault": fault["fault"], "name": fault["name"], "type": fault["type"],
                "applied_at": None, "ended_at": None, "back_at": None, "pid_before": None,
                "pid_after": None, "error": "not applied: %s" % why}  # fmt: skip

    def _wait_until(self, moment: float) -> bool:
        """Sleep until ``moment``; False if the level ended first."""
        while time.time() < moment:
            if self.stop():
                return False
            time.sleep(min(POLL_S, max(moment - time.time(), 0.0)))
        return True

    def run(self, start_at: float) -> dict:
        fault = self.fault
        if not self._wait_until(start_at + fault["at_s"]):
            self.record["error"] = "not applied: the level ended before its moment"
            return self.record
        try:
            observer = Observer(self.pidfile)
            self.record["pid_before"] = observer.pid
            reason = refusal(fault, observer, self.disk)
            if reason:
                raise FaultError(reason)
            getattr(self, "_" + fault["type"])(
                observer, start_at + fault["at_s"] + fault["duration_s"]
            )
        except FaultError as exc:
            self.record["error"] = str(exc)
        return self.record

    def _applied(self, entry: dict | None) -> None:
        if entry is not None:
            self.state.add(entry)
        self.record["applied_at"] = time.time()

    def _reverted(self, entry: dict) -> None:
        revert(entry)
        self.state.remove(entry)
        self.record["ended_at"] = time.time()

    def _back(self, old_pid: int) -> None:
        back = wait_back(self.pidfile, self.pipe, old_pid, self.fault["back_within_s"])
        if back is None:
            self.record["error"] = (
                "the Observer was not back within %g s" % self.fault["back_within_s"]
            )
            return
        self.record["back_at"], self.record["pid_after"] = back

    def _kill(self, observer: Observer, _until: float) -> None:
        self._applied(None)
        _signal(observer.pid, signal.SIGKILL)
        self.record["ended_at"] = self.record["applied_at"]
        self._back(observer.pid)

    def _pause(self, observer: Observer, until: float) -> None:
        entry = {"type": "pause", "pid": observer.pid, "start_time": observer.start_time}
        self._applied(entry)
        try:
            _signal(observer.pid, signal.SIGSTOP)
            self._wait_until(until)
        finally:
            self._reverted(entry)

    def _cpu(self, observer: Observer, until: float) -> None:
        if observer.unit is None:
            # No systemd unit: the cap is a cgroup of its own (written to the state file first).
            entry = cap_cgroup(observer.pid, self.fault["quota_pct"])
            self._applied(entry)
            try:
                _write(os.path.join(entry["group"], "cgroup.procs"), str(observer.pid))
                self._wait_until(until)
            finally:
                self._reverted(entry)
            return
        unit = observer.unit
        entry = {"type": "cpu", "unit": unit, "before": _cpu_quota_now(unit)}
        self._systemd_cap(entry, "CPUQuota=%g%%" % self.fault["quota_pct"],
                          lambda: cpu_quota_enforced(unit), until)  # fmt: skip

    def _systemd_cap(self, entry: dict, assignment: str, enforced: Callable[[], bool],
                     until: float) -> None:  # fmt: skip
        """Set a runtime property of the Observer's unit (written to the state file first),
        check the kernel enforces it, hold it until ``until``, then put the old value back."""
        self._applied(entry)
        try:
            systemctl("set-property", "--runtime", entry["unit"], assignment)
            if not enforced():
                raise FaultError("%s: %s was set on %s and the kernel does not enforce it"
                                 % (self.fault["name"], assignment.partition("=")[0] + "=", entry["unit"]))  # fmt: skip
            self._wait_until(until)
        finally:
            self._reverted(entry)

    def _io(self, observer: Observer, until: float) -> None:
        unit, output_dir, bps = observer.unit or "", self.disk[0] or "", self.fault["write_bps"]
        before = systemctl("show", "--property=IOWriteBandwidthMax", "--value", unit)
        entry = {
            "type": "io",
            "unit": unit,
            "before": [line for line in before.splitlines() if line],
        }
        self._systemd_cap(entry, "IOWriteBandwidthMax=%s %d" % (output_dir, bps),
                          lambda: io_limit_enforced(unit, output_dir, bps), until)  # fmt: skip

    def _disk_full(self, _observer: Observer, until: float) -> None:
        entry = {
            "type": "disk_full",
            "filler": os.path.join(mount_point(self.disk[0] or "/"), FILLER_NAME),
        }
        self._applied(entry)
        try:
            fill(entry["filler"])
            self._wait_until(until)
        finally:
            self._reverted(entry)

    def _restart(self, observer: Observer, until: float) -> None:
        unit = observer.unit or ""
        entry = {"type": "restart", "unit": unit}
        self._applied(entry)
        try:
            systemctl("stop", unit)
            self._wait_until(until)
        finally:
            self._reverted(entry)
        self._back(observer.pid)
