"""What every part of the lab tool shares: where the lab lives in the checkout (CHECKOUT, two
folders above this package), its defaults and constants, the error a command reports
(LabError), the state a lab records of itself and of its hosts (LabState, HostState), and
small helpers (logging, running a command, writing a file, host names)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent.parent
IMAGES = CHECKOUT / "lab" / "images"
# pip's cache, shared by every host of every lab of this checkout (bound into each host at
# HOST_PIP_CACHE, named in the image's pip.conf): a wheel is downloaded once, not once per
# host and per run.
PIP_CACHE = CHECKOUT / "lab" / "pip-cache"
HOST_PIP_CACHE = "/var/cache/qts-lab-pip"
DEFAULT_NAME = "default"
DEFAULT_BASE_ADDR = "127.0.0.11"
DEFAULT_PORT = 2222
DEFAULT_USER = "deploy"
HOST_PREFIX = "observer"
HOST_NAME = re.compile(rf"{HOST_PREFIX}-[0-9]+")
PROD_LIKE_GROUP_VARS = CHECKOUT / "inventories" / "prod-like" / "group_vars" / "observers.yml"
GENERATED_MARK = ".generated-by-tools-lab"
HOST_PYTHON = "/usr/bin/python3"
MIRROR = os.environ.get("LAB_MIRROR", "http://deb.debian.org/debian")
DISTROS = {"12": "bookworm", "13": "trixie"}
INITS = ("systemd", "sshd")
# What every image holds: systemd as init, sshd, sudo, the Python the roles need (venv, apt
# bindings for the package module, packaging for the pip module).
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "sudo", "ca-certificates",
    "python3", "python3-venv", "python3-apt", "python3-packaging",
)  # fmt: skip
# Units a lab host does not want: consoles nobody reads, timers that would run apt.
MASKED_UNITS = (
    "getty@tty1.service", "console-getty.service", "apt-daily.timer",
    "apt-daily-upgrade.timer", "e2scrub_reap.service", "e2scrub_all.timer", "fstrim.timer",
    "systemd-networkd.service", "systemd-resolved.service",
)  # fmt: skip
# Bump when the image fix-ups below change: the recipe then differs and images are rebuilt.
IMAGE_FIXUPS_VERSION = 3
# Each host's private writable layer over the image, one upper directory each.
LAYERED_DIRS = ("etc", "usr", "var", "opt", "home", "root", "srv")
SSHD_CONFIG = """\
# Lab host {host}: written by tools/lab.py.
ListenAddress {addr}:{port}
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 100
"""
# Without systemd, nspawn's stub init is PID 1 and sshd runs under it (a constant command).
SSHD_ONLY = ["/bin/sh", "-c", "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]
# A host that boots on a loaded machine (a test suite beside it, other hosts booting) takes
# far longer than the 2-3 s it takes alone; a host that cannot boot is found sooner, when its
# nspawn exits.
READY_TIMEOUT_S = 180.0
# Ansible's ssh `timeout` (the connection's and, plus 2 s, the wait for become's answer) in the
# lab's inventory and this tool's own logins. Ansible's default, 10 s, fails a host whose
# sudo is slow under load ("Timeout (12s) waiting for privilege escalation prompt") although
# it is up; a host that is down still fails at once (nothing listens: refused).
SSH_TIMEOUT_S = 60
# Who started the lab: a test run (tools/janitor.py) sets it; a lab started by hand has none.
OWNER_VARIABLE = "QTS_TEST_RUN"
TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "chroot": "coreutils",
}


class LabError(Exception):
    """A failure with a message for the user; the command exits 1."""


@dataclass
class HostState:
    name: str
    addr: str
    distro: str = "12"
    init: str = "systemd"
    nspawn_pid: int = 0
    cgroups: list[str] = field(default_factory=list)


@dataclass
class LabState:
    name: str
    lab_dir: str
    inventory_dir: str
    port: int
    user: str
    created: str
    hosts: list[HostState] = field(default_factory=list)
    owner: str = ""


# --- Small helpers ---------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    argv: list[str], what: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run argv, raising LabError with its output when it fails."""
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=timeout
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-2000:]
        raise LabError(f"{what} failed ({shlex.join(argv)}): {output}")
    return result


def write_file(
    path: Path, text: str | bytes, mode: int = 0o644, owner: tuple[int, int] = (0, 0)
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)
    os.chmod(path, mode)
    os.chown(path, *owner)


def read_text(path: Path | str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def host_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"{HOST_PREFIX}-{index:0{width}d}" for index in range(1, count + 1)]


def short_path(path: Path) -> str:
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if cwd in path.parents else str(path)


def yaml_str(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


def per_host(values: str, count: int, allowed: tuple[str, ...] | dict, what: str) -> list[str]:
    """`12,13` for 3 hosts: 12, 13, 12 (the list is cycled)."""
    items = [v.strip() for v in values.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if not items or bad:
        raise LabError(
            f"--{what} takes {', '.join(allowed)} (a comma list cycles over the hosts), got {values!r}"
        )
    return [items[index % len(items)] for index in range(count)]
