"""qts_supervise: keep one service process running where systemd is not the service manager.

Usage::

    qts_supervise.py --spec SPEC.json [--foreground]

The spec (JSON, written by the ``qts.observer.supervised_service`` module) says what to run:

    name                         service name, used in log lines
    argv                         the command, a list (no shell)
    cwd, env                     working directory and the whole environment of the child
    user, group                  drop the child to this user and group (needs root); null keeps
    umask                        octal string, for the child
    log_file                     the child's stdout and stderr, and this supervisor's events
    pidfile                      this supervisor's pidfile, flock'ed for as long as it runs
    state_file                   JSON status: child PID, restarts, the child's last exit status
    restart                      "on-failure" (default), "always" or "no"
    restart_delay_s              first delay before a restart; doubles up to restart_max_delay_s
    restart_prevent_exit_codes   exit codes never restarted (2: bad configuration)
    start_limit_burst            give up after this many restarts within start_limit_interval_s
    stop_timeout_s               on SIGTERM/SIGINT: forward, wait this long, then SIGKILL

Behaviour, like a systemd service with ``Restart=on-failure``:

* Daemonizes (double fork, setsid, umask 022, cwd /), unless ``--foreground``; the launching
  process exits 0 once the child runs, or 1 with the reason (already running, bad spec).
* Stays root when started as root and drops only the child's privileges, as systemd does,
  so the pidfile and the state file it writes can be trusted by root.
* Forwards SIGTERM, SIGINT and SIGHUP to the child (SIGHUP also reopens the log file).
  On SIGTERM/SIGINT it waits up to ``stop_timeout_s`` for the child, kills it with SIGKILL
  after that, records whether the child stopped cleanly (exit status 0 within the timeout),
  removes its pidfile and exits 0.
* Restarts a crashed child after a back-off delay; the new child has a new PID.

Only the standard library is used: this file is copied as is to the hosts.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import grp
import hashlib
import json
import os
import pwd
import select
import signal
import stat
import subprocess
import sys
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

STATE_VERSION = 1
RESTART_POLICIES = ("on-failure", "always", "no")
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
DEFAULTS: dict[str, Any] = {
    "cwd": "/",
    "env": {},
    "user": None,
    "group": None,
    "umask": "0027",
    "restart": "on-failure",
    "restart_delay_s": 1.0,
    "restart_max_delay_s": 30.0,
    "restart_prevent_exit_codes": [2],
    "start_limit_burst": 5,
    "start_limit_interval_s": 60.0,
    "stop_timeout_s": 10.0,
}
REQUIRED = ("name", "argv", "log_file", "pidfile", "state_file")


class SpecError(Exception):
    """The spec cannot be used; the message is one line."""


def spec_digest(spec: dict[str, Any]) -> str:
    """Digest of a spec; the module computes the same to tell whether a restart is needed."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def load_spec(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            spec = json.load(handle)
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SpecError(f"spec {path} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise SpecError(f"spec {path} must be a JSON object")
    validate_spec(spec)
    return spec


def validate_spec(spec: dict[str, Any]) -> None:
    missing = [key for key in REQUIRED if not spec.get(key)]
    if missing:
        raise SpecError(f"spec lacks {', '.join(missing)}")
    unknown = sorted(set(spec) - set(REQUIRED) - set(DEFAULTS))
    if unknown:
        raise SpecError(f"spec has unknown key(s) {', '.join(unknown)}")
    argv = spec["argv"]
    if not isinstance(argv, list) or not all(isinstance(part, str) for part in argv):
        raise SpecError("argv must be a non-empty list of strings")
    for key in ("log_file", "pidfile", "state_file"):
        if not os.path.isabs(spec[key]):
            raise SpecError(f"{key} must be an absolute path, not {spec[key]!r}")
    if spec.get("restart", "on-failure") not in RESTART_POLICIES:
        raise SpecError(f"restart must be one of {', '.join(RESTART_POLICIES)}")
    env = spec.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise SpecError("env must map names to strings")
    try:
        int(str(spec.get("umask", "0027")), 8)
    except ValueError:
        raise SpecError(f"umask {spec.get('umask')!r} is not an octal number") from None


def lookup_user(user: str) -> pwd.struct_passwd:
    """A user by name, or by number."""
    try:
        return pwd.getpwnam(user)
    except KeyError:
        if user.isdigit():
            return pwd.getpwuid(int(user))
        raise


def lookup_group(group: str) -> int:
    """A group's ID, by name or by number."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return grp.getgrgid(int(group)).gr_gid
        raise


class Identity:
    """Who the child runs as."""

    def __init__(self, user: str | None, group: str | None) -> None:
        self.uid: int | None = None
        self.gid: int | None = None
        self.groups: list[int] | None = None
        if user is None and group is None:
            return
        try:
            record = lookup_user(user) if user is not None else pwd.getpwuid(os.geteuid())
        except KeyError:
            raise SpecError(f"user {user!r} does not exist") from None
        try:
            gid = lookup_group(group) if group is not None else record.pw_gid
        except KeyError:
            raise SpecError(f"group {group!r} does not exist") from None
        if os.geteuid() != 0:
            if record.pw_uid != os.geteuid() or gid not in (os.getegid(), *os.getgroups()):
                raise SpecError(
                    f"running as uid {os.geteuid()}: cannot run the child as {record.pw_name}"
                    f"/{group or record.pw_gid} (only root can switch users)"
                )
            return
        self.uid, self.gid = record.pw_uid, gid
        self.groups = os.getgrouplist(record.pw_name, gid)


class Supervisor:
    def __init__(self, spec: dict[str, Any], ready_fd: int | None) -> None:
        self.spec = {**DEFAULTS, **spec}
        self.digest = spec_digest(spec)
        self.ready_fd = ready_fd
        self.identity = Identity(self.spec["user"], self.spec["group"])
        self.pid_fd = -1
        self.log_fd = -1
        self.wakeup_r = -1
        self.child: subprocess.Popen[bytes] | None = None
        self.child_started = 0.0
        self.starts = 0
        self.restarts = 0
        self.failures = 0
        self.restart_times: deque[float] = deque()
        self.next_start: float | None = None
        self.stopping = False
        self.stop_signal = signal.SIGTERM
        self.stop_started = 0.0
        self.kill_deadline: float | None = None
        self.killed = False
        self.child_at_stop = False
        self.status = "starting"
        self.last_exit: dict[str, Any] | None = None
        self.stopped_cleanly: bool | None = None
        self.stop_elapsed_s: float | None = None

    # ------------------------------------------------------------------ files
    def lock_pidfile(self) -> None:
        path = self.spec["pidfile"]
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(path, flags, 0o644)
        deadline = time.monotonic() + 1.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                if time.monotonic() > deadline:
                    other = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise SpecError(
                        f"already running (pid {other or '?'}, pidfile {path})"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self.pid_fd = fd

    def open_log(self) -> None:
        """Open the log file for appending; refuse symlinks and hard links (root writes it)."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(self.spec["log_file"], flags, 0o640)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            raise SpecError(f"log file {self.spec['log_file']} is not a plain file")
        if self.identity.uid is not None and (info.st_uid, info.st_gid) != (
            self.identity.uid,
            self.identity.gid,
        ):
            os.fchown(fd, self.identity.uid, self.identity.gid)
        if self.log_fd >= 0:
            os.close(self.log_fd)
        self.log_fd = fd
        os.dup2(fd, 1)
        os.dup2(fd, 2)

    def log(self, message: str) -> None:
        line = f"{now_iso()} qts_supervise[{os.getpid()}] {self.spec['name']}: {message}\n"
        with contextlib.suppress(OSError):
            os.write(self.log_fd if self.log_fd >= 0 else 2, line.encode())

    def write_state(self) -> None:
        child_pid = self.child.pid if self.child is not None else None
        state = {
            "version": STATE_VERSION,
            "name": self.spec["name"],
            "status": self.status,
            "supervisor_pid": os.getpid(),
            "spec_digest": self.digest,
            "child_pid": child_pid,
            "child_started_at": self.child_started if child_pid else None,
            "starts": self.starts,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "stopped_cleanly": self.stopped_cleanly,
            "stop_elapsed_s": self.stop_elapsed_s,
            "updated_at": now_iso(),
        }
        path = self.spec["state_file"]
        temporary = f"{path}.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(temporary, path)

    def ready(self, message: str) -> None:
        if self.ready_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.ready_fd, message.encode())
            os.close(self.ready_fd)
        self.ready_fd = None

    # ----------------------------------------------------------------- child
    def spawn(self) -> None:
        spec = self.spec
        kwargs: dict[str, Any] = {}
        if self.identity.uid is not None:
            kwargs.update(
                user=self.identity.uid, group=self.identity.gid, extra_groups=self.identity.groups
            )
        self.child = subprocess.Popen(
            spec["argv"],
            cwd=spec["cwd"],
            env=dict(spec["env"]),
            stdin=subprocess.DEVNULL,
            stdout=self.log_fd,
            stderr=self.log_fd,
            close_fds=True,
            umask=int(str(spec["umask"]), 8),
            **kwargs,
        )
        self.child_started = time.time()
        self.starts += 1
        self.status = "running"
        self.next_start = None
        self.log(f"started child pid {self.child.pid} (start {self.starts}): {spec['argv'][0]}")
        self.write_state()

    def child_exited(self, returncode: int) -> None:
        runtime = time.time() - self.child_started
        pid = self.child.pid if self.child else None
        self.child = None
        code = returncode if returncode >= 0 else None
        signum = -returncode if returncode < 0 else None
        self.last_exit = {
            "pid": pid,
            "code": code,
            "signal": signal.Signals(signum).name if signum else None,
            "at": now_iso(),
            "runtime_s": round(runtime, 3),
            "during_stop": self.stopping,
            "killed_after_timeout": self.killed,
        }
        how = f"exit status {code}" if code is not None else f"signal {self.last_exit['signal']}"
        self.log(f"child pid {pid} ended with {how} after {runtime:.1f} s")
        if self.stopping:
            self.finish_stop()
            return
        policy = self.spec["restart"]
        prevented = code is not None and code in self.spec["restart_prevent_exit_codes"]
        clean = code == 0
        if policy == "no" or prevented or (policy == "on-failure" and clean):
            self.status = "exited" if clean else "failed"
            reason = "restart prevented for this exit status" if prevented else "not restarted"
            self.log(f"{reason}; supervisor exits")
            self.stopped_cleanly = clean
            self.exit_now()
        self.schedule_restart(runtime)

    def schedule_restart(self, runtime: float) -> None:
        now = time.monotonic()
        interval = float(self.spec["start_limit_interval_s"])
        if runtime >= interval:
            self.failures = 0
        while self.restart_times and now - self.restart_times[0] > interval:
            self.restart_times.popleft()
        if len(self.restart_times) >= int(self.spec["start_limit_burst"]):
            self.status = "failed"
            self.log(
                f"start limit hit: {len(self.restart_times)} restarts within {interval:g} s; "
                "giving up"
            )
            self.exit_now()
        delay = min(
            float(self.spec["restart_max_delay_s"]),
            float(self.spec["restart_delay_s"]) * (2**self.failures),
        )
        self.failures += 1
        self.restarts += 1
        self.restart_times.append(now)
        self.next_start = now + delay
        self.status = "backoff"
        self.log(f"restarting in {delay:g} s (restart {self.restarts})")
        self.write_state()

    # --------------------------------------------------------------- signals
    def on_signal(self, signum: int) -> None:
        if signum == signal.SIGHUP:
            self.log("SIGHUP: reopening the log file and forwarding to the child")
            with contextlib.suppress(OSError, SpecError):
                self.open_log()
            if self.child is not None:
                self.child.send_signal(signal.SIGHUP)
            return
        if signum not in (signal.SIGTERM, signal.SIGINT) or self.stopping:
            return
        self.stopping = True
        self.stop_signal = signal.Signals(signum)
        self.stop_started = time.monotonic()
        self.status = "stopping"
        self.next_start = None
        self.child_at_stop = self.child is not None
        if self.child is None:
            self.log(f"{self.stop_signal.name}: no child running; stopping")
            self.finish_stop()
            return
        self.log(f"{self.stop_signal.name}: forwarding to child pid {self.child.pid}")
        self.child.send_signal(signum)
        self.kill_deadline = self.stop_started + float(self.spec["stop_timeout_s"])
        self.write_state()

    def finish_stop(self) -> None:
        self.stop_elapsed_s = round(time.monotonic() - self.stop_started, 3)
        last = self.last_exit
        if self.child_at_stop:
            self.stopped_cleanly = bool(
                last is not None
                and last["during_stop"]
                and last["code"] == 0
                and not last["killed_after_timeout"]
            )
        else:
            # Nothing was running when the stop came (waiting to restart): nothing to lose.
            self.stopped_cleanly = True
        self.status = "stopped"
        self.log(
            f"stopped in {self.stop_elapsed_s:.3f} s; "
            f"{'cleanly' if self.stopped_cleanly else 'NOT cleanly'}"
        )
        self.exit_now()

    def abandon(self, message: str) -> None:
        """Start-up or restart failed before a child could run: say so, leave no pidfile."""
        self.status = "failed"
        self.log(f"error: {message}")
        self.ready(f"error: {message}")
        if self.pid_fd >= 0:
            with contextlib.suppress(OSError):
                self.write_state()
                os.unlink(self.spec["pidfile"])

    def exit_now(self) -> None:
        self.write_state()
        with contextlib.suppress(OSError):
            os.unlink(self.spec["pidfile"])
        self.ready("exited: the child ended during start-up; see " + self.spec["log_file"])
        raise SystemExit(0)

    # ------------------------------------------------------------------ loop
    def install_signals(self) -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.wakeup_r = read_end
        signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        for signum in (*FORWARDED, signal.SIGCHLD):
            signal.signal(signum, lambda *_unused: None)

    def pending_signals(self) -> list[int]:
        received: list[int] = []
        while True:
            try:
                data = os.read(self.wakeup_r, 64)
            except BlockingIOError:
                break
            if not data:
                break
            received.extend(data)
        return received

    def timeout(self) -> float | None:
        deadlines = [d for d in (self.next_start, self.kill_deadline) if d is not None]
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - time.monotonic())

    def run(self) -> None:
        self.install_signals()
        self.lock_pidfile()
        self.open_log()
        self.log(f"supervisor started (pid {os.getpid()}, spec {self.digest[:12]})")
        self.spawn()
        assert self.child is not None
        self.ready(f"ok supervisor={os.getpid()} child={self.child.pid}\n")
        while True:
            with contextlib.suppress(InterruptedError):
                select.select([self.wakeup_r], [], [], self.timeout())
            for signum in self.pending_signals():
                if signum != signal.SIGCHLD:
                    self.on_signal(signum)
            if self.child is not None:
                returncode = self.child.poll()
                if returncode is not None:
                    self.child_exited(returncode)
            now = time.monotonic()
            if (
                self.child is not None
                and self.kill_deadline is not None
                and now >= self.kill_deadline
            ):
                self.log(
                    f"child pid {self.child.pid} still running {self.spec['stop_timeout_s']} s "
                    "after the stop signal: SIGKILL"
                )
                self.killed = True
                self.kill_deadline = None
                self.child.kill()
            if self.child is None and self.next_start is not None and now >= self.next_start:
                self.spawn()


def daemonize() -> int | None:
    """Double fork. Returns the ready pipe's write end in the daemon; exits in the others."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first > 0:
        os.close(write_end)
        chunks = []
        while True:
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.waitpid(first, 0)
        message = b"".join(chunks).decode(errors="replace").strip()
        if message.startswith("ok "):
            print(message)
            raise SystemExit(0)
        print(f"qts_supervise: {message or 'the supervisor died during start-up'}", file=sys.stderr)
        raise SystemExit(1)
    os.close(read_end)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    os.chdir("/")
    os.umask(0o022)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return write_end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qts_supervise.py", description=__doc__.split("\n", maxsplit=1)[0]
    )
    parser.add_argument("--spec", required=True, help="the service spec (JSON)")
    parser.add_argument("--foreground", action="store_true", help="do not daemonize")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        Identity(spec.get("user"), spec.get("group"))
    except SpecError as exc:
        print(f"qts_supervise: {exc}", file=sys.stderr)
        return 2
    ready_fd = None if args.foreground else daemonize()
    supervisor = Supervisor(spec, ready_fd)
    try:
        supervisor.run()
    except (SpecError, OSError) as exc:
        supervisor.abandon(str(exc))
        if args.foreground:
            print(f"qts_supervise: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
