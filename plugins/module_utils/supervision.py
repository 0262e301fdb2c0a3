# Copyright: (c) 2026, QTS
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers shared by the modules that drive ``qts_supervise.py`` (standard library only).

A supervisor is *running* when its pidfile exists and is flock'ed: the supervisor holds an
exclusive lock on it for its whole life, so a stale pidfile (crash, reboot, reused PID) is
told apart from a live one without ever matching command lines.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import time
from typing import Any, Callable

STATE_VERSION = 1


def spec_digest(spec: dict[str, Any]) -> str:
    """Digest of a supervisor spec; ``qts_supervise.py`` records the same for what it runs."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_pid(path: str) -> int | None:
    """The PID a pidfile names, or None when it is missing, empty or not a PID."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def pidfile_locked(path: str) -> bool:
    """Whether some process holds a lock on the pidfile (that is: the supervisor is alive)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def running_pid(pidfile: str) -> int | None:
    """The supervisor's PID if it runs, else None."""
    if not pidfile_locked(pidfile):
        return None
    return read_pid(pidfile)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parent_pid(pid: int) -> int | None:
    """The parent of a process (Linux /proc), or None when unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json_atomic(path: str, data: dict[str, Any], mode: int = 0o600) -> None:
    """Write JSON next to ``path`` and rename it into place."""
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: str, lines: int = 20, max_bytes: int = 16384) -> list[str]:
    """The last lines of a text file (empty when unreadable)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-lines:]


def describe_exit(last_exit: dict[str, Any] | None) -> str:
    """One line for a child's last exit as recorded in the state file."""
    if not last_exit:
        return "no exit recorded"
    if last_exit.get("signal"):
        how = f"killed by {last_exit['signal']}"
    else:
        how = f"exit status {last_exit.get('code')}"
    if last_exit.get("killed_after_timeout"):
        how += " after the stop timeout"
    return f"pid {last_exit.get('pid')} {how} (it ran {last_exit.get('runtime_s')} s)"
