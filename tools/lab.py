"""A prod-like lab of N Observer hosts on this machine: systemd-nspawn containers booting a
real systemd as PID 1, reached over real SSH.

Each host is a ``systemd-nspawn --boot`` container of a Debian image (12 by default, or 13)
made once with ``debootstrap`` and kept under ``lab/images/`` (rebuilt when its recipe
changes). nspawn gives each host its namespaces, its own hostname, process table, users and
journal, and a private writable layer over the read-only image (``--overlay`` on /etc, /usr,
/var, /opt, /home, /root, /srv; the upper layers live in the lab's folder). The network is
shared: each host's sshd listens on its own loopback address (127.0.0.11, .12, ...). A host
may also run without systemd (``--init sshd``: nspawn's stub init, sshd under it), for the
bundled supervisor's path.

What nspawn does, this tool does not: it builds the image, seeds each host's layer (hostname,
hosts, machine-id, host key, sshd's address, the lab user's key), gives each host a cgroup of
its own (this machine's PID 1 is not systemd, so nspawn runs with ``--register=no
--keep-unit`` in the cgroup made for it; the host's CPU time is read there), starts and stops
the containers, and writes the inventory.

    python3 tools/lab.py up --hosts 3        # make lab-up LAB_HOSTS=3 (replaces any old lab)
    python3 tools/lab.py up --hosts 2 --distro 12,13 --init systemd,sshd
    python3 tools/lab.py status              # make lab-status
    python3 tools/lab.py cpu                 # each host's CPU seconds so far (JSON)
    python3 tools/lab.py limit-cpu --host observer-01 --percent 1   # a starved host
    python3 tools/lab.py stop --host observer-01                    # a host that is down
    python3 tools/lab.py down                # make lab-down: no process, cgroup, listener left
    python3 tools/lab.py image --distro 13   # build (or check) an image only

Needs root, systemd-container (systemd-nspawn), debootstrap, openssh-client (ssh, ssh-keygen)
and network access to a Debian mirror to build an image. Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
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


# --- Processes and listeners ----------------------------------------------------------------


def proc_argv(pid: int) -> list[str]:
    raw = read_text(f"/proc/{pid}/cmdline")
    return raw.split("\0")[:-1] if raw else []


def is_alive(pid: int) -> bool:
    stat = read_text(f"/proc/{pid}/stat")
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def machine_name(lab: str, host: str) -> str:
    """nspawn's machine name: unique across labs on this machine."""
    return f"qtslab-{lab}-{host}"


def is_host_process(pid: int, lab: str, host: str) -> bool:
    argv = proc_argv(pid)
    return (
        bool(argv)
        and Path(argv[0]).name == "systemd-nspawn"
        and (f"--machine={machine_name(lab, host)}" in argv)
    )


def lab_nspawns(lab: str) -> dict[int, str]:
    """pid -> host of every live systemd-nspawn of this lab (of this lab only: lab `a` is not
    lab `a-b`, whose machine names start the same)."""
    found = {}
    prefix = f"--machine={machine_name(lab, '')}"
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        argv = proc_argv(int(entry))
        if argv and Path(argv[0]).name == "systemd-nspawn" and is_alive(int(entry)):
            for arg in argv:
                host = arg[len(prefix) :]
                if arg.startswith(prefix) and HOST_NAME.fullmatch(host):
                    found[int(entry)] = host
    return found


def tcp_listeners() -> set[tuple[str, int]]:
    """(address, port) of every IPv4 TCP listener, from /proc/net/tcp."""
    listeners = set()
    for line in (read_text("/proc/net/tcp") or "").splitlines()[1:]:
        columns = line.split()
        if len(columns) < 4 or columns[3] != "0A":
            continue
        hex_addr, hex_port = columns[1].split(":")
        listeners.add((socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1]), int(hex_port, 16)))
    return listeners


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if is_alive(pid)]
    return alive


# --- cgroups: one per host, since this machine's PID 1 is not systemd -------------------------


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


# --- Configuration -------------------------------------------------------------------------


@dataclass
class Config:
    name: str
    lab_dir: Path
    inventory_dir: Path
    base_addr: str
    port: int
    user: str
    stop_timeout_s: float

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Config:
        name = args.name
        reserved = (IMAGES.name, PIP_CACHE.name)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,40}", name) or name in reserved:
            raise LabError(f"bad lab name {name!r}: letters, digits, '.', '_' and '-' only")
        lab_dir = Path(args.lab_dir or CHECKOUT / "lab" / name).absolute()
        if args.inventory:
            inventory_dir = Path(args.inventory).absolute()
        elif name == DEFAULT_NAME:
            inventory_dir = CHECKOUT / "inventories" / "lab"
        else:
            inventory_dir = lab_dir / "inventory"
        return cls(
            name, lab_dir, inventory_dir, args.base_addr, args.port, args.user, args.stop_timeout
        )

    @property
    def state_file(self) -> Path:
        return self.lab_dir / "state.json"

    @property
    def key_file(self) -> Path:
        return self.lab_dir / "ssh" / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.lab_dir / "ssh" / "known_hosts"

    def host_dir(self, host: str) -> Path:
        return self.lab_dir / "hosts" / host

    def addresses(self, count: int) -> list[str]:
        try:
            base = ipaddress.IPv4Address(self.base_addr)
        except ipaddress.AddressValueError as exc:
            raise LabError(f"bad base address {self.base_addr!r}: {exc}") from exc
        addrs = [base + index for index in range(count)]
        loopback = ipaddress.IPv4Network("127.0.0.0/8")
        if any(addr not in loopback or str(addr).endswith((".0", ".255")) for addr in addrs):
            raise LabError(
                f"{count} host(s) from {base} reach {addrs[-1]}: lab addresses must be in "
                "127.0.0.0/8 and not end in .0 or .255; choose another LAB_BASE_ADDR"
            )
        return [str(addr) for addr in addrs]

    def ssh_options(self) -> list[str]:
        return [
            "-o", "StrictHostKeyChecking=yes",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "IdentitiesOnly=yes",
        ]  # fmt: skip


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """One at a time: a lock on the directory (labs of one root, or the images)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another lab command working under {directory}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_state(cfg: Config) -> LabState | None:
    raw = read_text(cfg.state_file)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        data["hosts"] = [HostState(**host) for host in data["hosts"]]
        return LabState(**data)
    except (ValueError, TypeError, KeyError):
        return None


def save_state(cfg: Config, state: LabState) -> None:
    write_file(cfg.state_file, json.dumps(asdict(state), indent=2) + "\n", 0o600)


def preflight(cfg: Config) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (containers, cgroups): run it as root")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found: apt-get install {package}")
    if not PROD_LIKE_GROUP_VARS.is_file():
        problems.append(f"{PROD_LIKE_GROUP_VARS} is missing (the lab copies its group_vars)")
    if re.search(r"[\s,:\\]", str(cfg.lab_dir)) or re.search(r"[\s,:\\]", str(IMAGES)):
        problems.append(
            f"{cfg.lab_dir} or {IMAGES} has a space, ',', ':' or '\\' (nspawn's --overlay)"
        )
    if problems:
        raise LabError("cannot start the lab:\n  " + "\n  ".join(problems))


def check_port_free(addr: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((addr, port))
        except OSError as exc:
            raise LabError(
                f"{addr}:{port} is taken ({exc.strerror}) by another program or lab: "
                "choose another LAB_BASE_ADDR or LAB_PORT"
            ) from exc


# --- The image -------------------------------------------------------------------------------


def local_ca_certificates() -> dict[str, bytes]:
    """This machine's own certificate authorities: the hosts trust what it trusts (an egress
    proxy's CA, a company CA), or pip inside them cannot reach the package index."""
    folder = Path("/usr/local/share/ca-certificates")
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.crt"))} if folder.is_dir() else {}


def image_recipe(distro: str, user: str) -> dict:
    return {
        "suite": DISTROS[distro],
        "variant": "minbase",
        "mirror": MIRROR,
        "packages": list(PACKAGES),
        "masked": list(MASKED_UNITS),
        "user": user,
        "ca_certificates": {
            name: hashlib.sha256(data).hexdigest() for name, data in local_ca_certificates().items()
        },
        "fixups": IMAGE_FIXUPS_VERSION,
    }


def image_dir(distro: str) -> Path:
    return IMAGES / f"debian-{distro}"


def image_fixups(rootfs: Path, user: str) -> None:
    """What a lab host needs from its image beyond the packages."""
    for key in rootfs.glob("etc/ssh/ssh_host_*"):
        key.unlink()  # each host gets its own
    write_file(rootfs / "etc" / "machine-id", "")  # each host gets its own
    for unit in MASKED_UNITS:
        link = rootfs / "etc" / "systemd" / "system" / unit
        with contextlib.suppress(FileNotFoundError):
            link.unlink()
        link.symlink_to("/dev/null")
    for wants in rootfs.glob("etc/systemd/system/*.wants/getty@*.service"):
        wants.unlink()
    for name, data in local_ca_certificates().items():
        write_file(rootfs / "usr" / "local" / "share" / "ca-certificates" / name, data)
    run(["chroot", str(rootfs), "update-ca-certificates", "--fresh"], "update-ca-certificates")
    # pip of Debian's venvs uses its own CA bundle unless told to use the system's; its cache
    # is the lab's shared one.
    write_file(
        rootfs / "etc" / "pip.conf",
        f"[global]\ncert = /etc/ssl/certs/ca-certificates.crt\ncache-dir = {HOST_PIP_CACHE}\n",
    )
    useradd = [
        "useradd",
        "--create-home",
        "--shell",
        "/bin/bash",
        "--user-group",
        "--password",
        "*",
    ]
    run(["chroot", str(rootfs), *useradd, "--comment", "lab deploy user", user], "useradd")
    write_file(
        rootfs / "etc" / "sudoers.d" / "lab-user", f"{user} ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440
    )
    (rootfs / "var" / "log" / "journal").mkdir(exist_ok=True)  # a persistent journal
    # A locale, or pam_env logs an error at every login (Debian 13 links it to locale.conf).
    locale = rootfs / "etc" / "default" / "locale"
    write_file(rootfs / "etc" / "locale.conf" if locale.is_symlink() else locale, "LANG=C.UTF-8\n")


def ensure_image(distro: str, user: str) -> Path:
    """The image's root filesystem, built once per recipe (debootstrap, about a minute)."""
    recipe = image_recipe(distro, user)
    folder = image_dir(distro)
    # One lock per image: the two releases build side by side (debootstrap mostly waits
    # for the mirror), and two labs never build one image twice.
    with locked(IMAGES / f".lock-debian-{distro}"):
        recipe_file = folder / "recipe.json"
        if (folder / "rootfs").is_dir() and read_text(recipe_file) == json.dumps(recipe, indent=2):
            return folder / "rootfs"
        started = time.monotonic()
        log(f"image debian-{distro}: building with debootstrap ({recipe['suite']}, {MIRROR})")
        building = IMAGES / f".building-debian-{distro}"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir(parents=True)
        argv = [
            "debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES),
            recipe["suite"], str(building / "rootfs"), MIRROR,
        ]  # fmt: skip
        try:
            run(argv, "debootstrap", timeout=1800)
            image_fixups(building / "rootfs", user)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
        write_file(building / "recipe.json", json.dumps(recipe, indent=2))
        shutil.rmtree(folder, ignore_errors=True)
        building.rename(folder)
        log(f"image debian-{distro}: built in {time.monotonic() - started:.0f} s")
        return folder / "rootfs"


def ensure_images(distros: list[str], user: str) -> dict[str, Path]:
    """Each release's image, built side by side where missing."""
    wanted = sorted(set(distros))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        built = {distro: pool.submit(ensure_image, distro, user) for distro in wanted}
        return {distro: future.result() for distro, future in built.items()}


def image_user_ids(rootfs: Path, user: str) -> tuple[int, int, str]:
    for line in (read_text(rootfs / "etc" / "passwd") or "").splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return int(fields[2]), int(fields[3]), fields[5]
    raise LabError(f"user {user} is not in the image {rootfs}: remove lab/images to rebuild it")


# --- down -----------------------------------------------------------------------------------


def down(cfg: Config, *, reason: str = "down") -> bool:
    """Stop every host of the lab and remove its files. True if there was anything."""
    state = load_state(cfg)
    found = lab_nspawns(cfg.name)
    existed = bool(found) or cfg.lab_dir.exists() or is_generated_inventory(cfg.inventory_dir)
    if found:
        log(f"lab {cfg.name}: stopping {len(found)} host(s) ({reason})")
    # SIGTERM to nspawn: systemd in the host powers off (each unit stopped in order).
    for pid in found:
        signal_pid(pid, signal.SIGTERM)
    alive = wait_gone(list(found), cfg.stop_timeout_s + 10.0)
    for pid in alive:
        signal_pid(pid, signal.SIGKILL)
    alive = wait_gone(alive, 5.0)
    alive += [pid for pid in lab_nspawns(cfg.name) if pid not in alive]
    if alive:
        raise LabError(f"lab {cfg.name}: hosts {alive} survive SIGKILL; not removing files")
    if state is not None:
        for host in state.hosts:
            remove_cgroups(host.cgroups)
        taken = tcp_listeners()
        busy = [f"{h.addr}:{state.port}" for h in state.hosts if (h.addr, state.port) in taken]
        if busy:
            log(f"warning: {', '.join(busy)} still listened on by a process outside the lab")
    remove_stray_cgroups(cfg.name)
    if cfg.lab_dir.exists():
        shutil.rmtree(cfg.lab_dir)
    if is_generated_inventory(cfg.inventory_dir):
        shutil.rmtree(cfg.inventory_dir)
    return existed


def signal_pid(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def is_generated_inventory(path: Path) -> bool:
    return (path / GENERATED_MARK).is_file()


# --- up -------------------------------------------------------------------------------------


def seed_host(cfg: Config, host: HostState, rootfs: Path, etc_hosts: str, client_pub: str) -> None:
    """The host's own files, written into its writable layer before it boots."""
    layer = cfg.host_dir(host.name) / "layer"
    for directory in LAYERED_DIRS:
        (layer / directory).mkdir(parents=True, exist_ok=True)
    etc = layer / "etc"
    key = etc / "ssh" / "ssh_host_ed25519_key"
    key.parent.mkdir(parents=True, exist_ok=True)
    run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)],
        "ssh-keygen",
    )
    write_file(
        etc / "ssh" / "sshd_config.d" / "lab.conf",
        SSHD_CONFIG.format(host=host.name, addr=host.addr, port=cfg.port),
    )
    write_file(etc / "hostname", host.name + "\n")
    write_file(etc / "hosts", etc_hosts)
    write_file(etc / "machine-id", uuid.uuid4().hex + "\n", 0o444)
    uid, gid, home = image_user_ids(rootfs, cfg.user)
    # The home directory in the layer must match the image's, or it would hide the user's
    # ownership of it (an upper directory's owner and mode win in an overlay).
    layer_home = layer / home.lstrip("/")
    layer_home.mkdir(parents=True, exist_ok=True)
    image_home = os.stat(rootfs / home.lstrip("/"))
    os.chmod(layer_home, image_home.st_mode & 0o7777)
    os.chown(layer_home, image_home.st_uid, image_home.st_gid)
    ssh_dir = layer_home / ".ssh"
    ssh_dir.mkdir(exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    os.chown(ssh_dir, uid, gid)
    write_file(ssh_dir / "authorized_keys", client_pub, 0o600, (uid, gid))


def nspawn_argv(cfg: Config, host: HostState, rootfs: Path) -> list[str]:
    layer = cfg.host_dir(host.name) / "layer"
    argv = [
        "systemd-nspawn",
        f"--machine={machine_name(cfg.name, host.name)}",
        f"--hostname={host.name}",
        f"--directory={rootfs}",
        "--read-only",  # the image is shared; each host writes to its own layer
        "--register=no",  # no systemd on this machine to register with
        "--keep-unit",  # run in the cgroup made for this host
        "--console=passive",
        "--link-journal=no",
        "--resolv-conf=copy-host",
        "--timezone=off",
        *[f"--overlay=+/{d}:{layer / d}:/{d}" for d in LAYERED_DIRS],
        f"--bind={PIP_CACHE}:{HOST_PIP_CACHE}",
    ]
    if host.init == "systemd":
        return [*argv, "--boot"]
    return [*argv, "--as-pid2", *SSHD_ONLY]


def launch_host(cfg: Config, host: HostState, rootfs: Path) -> subprocess.Popen[bytes]:
    cgroups = [Path(p) / "cgroup.procs" for p in host.cgroups]

    def enter_cgroups() -> None:
        for procs in cgroups:
            procs.write_text(str(os.getpid()))

    # A clean environment, but for the owner: a killed test run's hosts are found by it
    # (tools/janitor.py); the hosts' own processes do not see it (systemd starts them).
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    if os.environ.get(OWNER_VARIABLE):
        env[OWNER_VARIABLE] = os.environ[OWNER_VARIABLE]
    with open(cfg.host_dir(host.name) / "console.log", "ab") as console:
        return subprocess.Popen(
            nspawn_argv(cfg, host, rootfs),
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=enter_cgroups,  # noqa: PLW1509 (the child joins its cgroups before exec)
            env=env,
        )


def log_tail(path: Path, lines: int = 15) -> str:
    text = read_text(path) or "(no log)"
    return "\n    ".join(text.rstrip().splitlines()[-lines:])


def wait_ready(cfg: Config, state: LabState, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = {host.name: host for host in state.hosts}
    while waiting:
        for name, host in list(waiting.items()):
            console = cfg.host_dir(name) / "console.log"
            if procs[name].poll() is not None:
                raise LabError(
                    f"host {name} exited during start-up (status {procs[name].returncode}); "
                    f"{console}:\n    " + log_tail(console)
                )
            # Listening is enough: a probe connection would leave errors in the host's journal.
            if (host.addr, cfg.port) in tcp_listeners():
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            first = next(iter(waiting))
            console = cfg.host_dir(first) / "console.log"
            raise LabError(
                f"hosts {sorted(waiting)} not answering SSH after {READY_TIMEOUT_S:.0f} s; "
                f"{console}:\n    " + log_tail(console)
            )
        time.sleep(0.1)


def write_known_hosts(cfg: Config, state: LabState) -> None:
    lines = []
    for host in state.hosts:
        pub = cfg.host_dir(host.name) / "layer" / "etc" / "ssh" / "ssh_host_ed25519_key.pub"
        key_type, key_data = pub.read_text().split()[:2]
        target = host.addr if cfg.port == 22 else f"[{host.addr}]:{cfg.port}"
        lines.append(f"{target} {key_type} {key_data}\n")
    write_file(cfg.known_hosts, "".join(lines))


def ssh_argv(cfg: Config, addr: str, command: str) -> list[str]:
    return [
        "ssh", "-F", "/dev/null", *cfg.ssh_options(), "-o", "BatchMode=yes",
        "-o", f"ConnectTimeout={SSH_TIMEOUT_S}", "-i", str(cfg.key_file), "-p", str(cfg.port),
        "-l", cfg.user, addr, command,
    ]  # fmt: skip


# What every host must answer: its name, sudo without a password, and its init.
LOGIN_CHECK = "hostname && sudo -n true && cat /proc/1/comm"
# A booted host: systemd reached its target (`running`, or `degraded` with a unit failed).
BOOT_CHECK = "systemctl is-system-running --wait"


def check_logins(cfg: Config, state: LabState) -> None:
    """Log in to every host at once as the lab user: name, sudo, and systemd booted."""
    procs = {}
    for host in state.hosts:
        command = LOGIN_CHECK + (f"; {BOOT_CHECK}" if host.init == "systemd" else "")
        procs[host.name] = subprocess.Popen(
            ssh_argv(cfg, host.addr, command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    for host in state.hosts:
        proc = procs[host.name]
        out, err = proc.communicate(timeout=READY_TIMEOUT_S)
        lines = out.split()
        expected_init = "systemd" if host.init == "systemd" else None
        name_ok = lines[:1] == [host.name]
        init_ok = expected_init is None or lines[1:2] == [expected_init]
        boot_ok = host.init != "systemd" or (lines[2:3] and lines[2] in ("running", "degraded"))
        if not (name_ok and init_ok and boot_ok):
            console = cfg.host_dir(host.name) / "console.log"
            raise LabError(
                f"ssh {cfg.user}@{host.name} failed (status {proc.returncode}, answered "
                f"{out.split()!r}): {err.strip()}\n    {console}:\n    " + log_tail(console)
            )
        if boot_ok and lines[2:3] == ["degraded"]:
            log(f"warning: {host.name} booted degraded (a unit failed): systemctl --failed in it")


INVENTORY_HEADER = """\
---
# Generated by tools/lab.py (make lab-up) on {created}: lab {name}, {count} host(s) on this
# machine, each a systemd-nspawn container ({kinds}). make lab-down removes it.
# The shape of inventories/prod-like (group_vars/observers.yml is a copy of its group_vars)
# plus the lab's connection settings. Do not edit: make lab-up rewrites it.
"""


def write_inventory(cfg: Config, state: LabState) -> None:
    inv = cfg.inventory_dir
    options = cfg.ssh_options()
    ssh_args = "".join(
        f"      {flag} {shlex.quote(value)}\n" for flag, value in zip(options[::2], options[1::2])
    )
    kinds = ", ".join(sorted({f"Debian {h.distro} with {h.init}" for h in state.hosts}))
    lines = [
        INVENTORY_HEADER.format(
            created=state.created, name=cfg.name, count=len(state.hosts), kinds=kinds
        ),
        "observers:\n",
        "  hosts:\n",
    ]
    for host in state.hosts:
        lines.append(f"    {host.name}:\n      ansible_host: {host.addr}\n")
    lines += [
        "  vars:\n",
        f"    ansible_user: {yaml_str(cfg.user)}\n",
        f"    ansible_port: {cfg.port}\n",
        f"    ansible_ssh_private_key_file: {yaml_str(str(cfg.key_file))}\n",
        f"    ansible_ssh_common_args: >-\n{ssh_args}",
        f"    ansible_python_interpreter: {HOST_PYTHON}\n",
        "    # Sized for a loaded machine (tools/lab.py SSH_TIMEOUT_S); a host that is down\n"
        "    # still fails at once.\n",
        f"    ansible_ssh_timeout: {SSH_TIMEOUT_S}\n",
    ]
    write_file(inv / "hosts.yml", "".join(lines))
    write_file(
        inv / "group_vars" / "observers.yml",
        "# Copied from inventories/prod-like/group_vars/observers.yml by tools/lab.py.\n"
        + PROD_LIKE_GROUP_VARS.read_text(),
    )
    write_file(inv / GENERATED_MARK, f"lab {cfg.name} {cfg.lab_dir}\n")


def up(cfg: Config, count: int, distros: str, inits: str) -> None:
    if not 1 <= count <= 250:
        raise LabError(f"--hosts must be 1 to 250 (got {count})")
    addrs = cfg.addresses(count)
    host_distros = per_host(distros, count, DISTROS, "distro")
    host_inits = per_host(inits, count, INITS, "init")
    preflight(cfg)
    started = time.monotonic()
    rootfs = ensure_images(host_distros, cfg.user)
    booted = time.monotonic()
    if down(cfg, reason="cleaning the previous lab first"):
        log(f"lab {cfg.name}: removed the previous lab")
    if cfg.inventory_dir.exists():
        raise LabError(
            f"{cfg.inventory_dir} exists and was not written by the lab: move it away "
            "or choose another --inventory"
        )
    for addr in addrs:
        check_port_free(addr, cfg.port)
    names = host_names(count)
    state = LabState(
        name=cfg.name,
        lab_dir=str(cfg.lab_dir),
        inventory_dir=str(cfg.inventory_dir),
        port=cfg.port,
        user=cfg.user,
        created=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        owner=os.environ.get(OWNER_VARIABLE, ""),
        hosts=[
            HostState(name=n, addr=a, distro=d, init=i)
            for n, a, d, i in zip(names, addrs, host_distros, host_inits)
        ],
    )
    cfg.lab_dir.mkdir(parents=True)
    cfg.lab_dir.chmod(0o700)
    cfg.key_file.parent.mkdir(mode=0o700)
    run(
        [
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            f"lab-{cfg.name}",
            "-f",
            str(cfg.key_file),
        ],
        "ssh-keygen",
    )
    client_pub = cfg.key_file.with_suffix(".pub").read_text()
    etc_hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + "".join(
        f"{addr}\t{name}\n" for name, addr in zip(names, addrs)
    )
    PIP_CACHE.mkdir(mode=0o700, exist_ok=True)
    for host in state.hosts:
        seed_host(cfg, host, rootfs[host.distro], etc_hosts, client_pub)
    save_state(cfg, state)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for host in state.hosts:
            host.cgroups = make_cgroups(cfg.name, host.name)
            procs[host.name] = launch_host(cfg, host, rootfs[host.distro])
            host.nspawn_pid = procs[host.name].pid
        save_state(cfg, state)
        wait_ready(cfg, state, procs)
        write_known_hosts(cfg, state)
        check_logins(cfg, state)
        write_inventory(cfg, state)
    except BaseException:
        log(f"lab {cfg.name}: start failed, removing it")
        try:
            down(cfg, reason="failed start")
        except LabError as exc:
            log(f"error: {exc}")
        raise
    inv = short_path(cfg.inventory_dir)
    log(
        f"lab {cfg.name}: {count} host(s) up in {time.monotonic() - booted:.1f} s "
        f"({booted - started:.1f} s for the image): "
        + ", ".join(
            f"{h.name}={h.addr}:{cfg.port} (Debian {h.distro}, {h.init})" for h in state.hosts
        )
    )
    log(f"  inventory: {inv}    try: ansible -i {inv} observers -m ansible.builtin.ping")
    log(
        f"  ssh: ssh -i {short_path(cfg.key_file)} -p {cfg.port} "
        f"-o UserKnownHostsFile={short_path(cfg.known_hosts)} {cfg.user}@{addrs[0]}"
    )


def lab_host(cfg: Config, name: str) -> tuple[Config, LabState, HostState]:
    """The running lab's settings (whatever the command line says), its state and one host."""
    state = load_state(cfg)
    if state is None:
        raise LabError(f"lab {cfg.name} is not running")
    cfg = dataclasses.replace(cfg, port=state.port, user=state.user)
    hosts = {host.name: host for host in state.hosts}
    if name not in hosts:
        raise LabError(f"lab {cfg.name} has no host {name!r} (hosts: {', '.join(hosts)})")
    return cfg, state, hosts[name]


def power_off(cfg: Config, host: HostState) -> None:
    """Shut one host down as a poweroff does (its layer, so its files, stay)."""
    if is_host_process(host.nspawn_pid, cfg.name, host.name):
        signal_pid(host.nspawn_pid, signal.SIGTERM)
        if wait_gone([host.nspawn_pid], cfg.stop_timeout_s + 10.0):
            raise LabError(f"host {host.name} did not power off in {cfg.stop_timeout_s + 10:.0f} s")


def stop(cfg: Config, name: str) -> None:
    """`stop`: one host powered off and left off, a machine that is down."""
    cfg, _state, host = lab_host(cfg, name)
    started = time.monotonic()
    power_off(cfg, host)
    log(f"lab {cfg.name}: {name} powered off in {time.monotonic() - started:.1f} s")


def restart(cfg: Config, name: str) -> None:
    """Power a host off and boot it again, as a reboot does (its layer, so its files, stay)."""
    cfg, state, host = lab_host(cfg, name)
    started = time.monotonic()
    power_off(cfg, host)
    proc = launch_host(cfg, host, image_dir(host.distro) / "rootfs")
    host.nspawn_pid = proc.pid
    save_state(cfg, state)
    wait_ready(cfg, LabState(**{**asdict(state), "hosts": [host]}), {name: proc})
    check_logins(cfg, LabState(**{**asdict(state), "hosts": [host]}))
    log(f"lab {cfg.name}: {name} restarted in {time.monotonic() - started:.1f} s")


# --- status and cpu -------------------------------------------------------------------------


def status(cfg: Config) -> int:
    state = load_state(cfg)
    found = lab_nspawns(cfg.name)
    if state is None:
        if found:
            print(f"lab {cfg.name}: no state but {len(found)} leftover host(s): make lab-down")
        else:
            print(f"lab {cfg.name}: not running")
        return 1
    listeners = tcp_listeners()
    healthy = 0
    print(f"lab {cfg.name}: {len(state.hosts)} host(s), inventory {state.inventory_dir}")
    for host in state.hosts:
        running = host.nspawn_pid in found and is_host_process(host.nspawn_pid, cfg.name, host.name)
        listening = (host.addr, state.port) in listeners
        seconds = cpu_seconds(host.cgroups)
        ok = running and listening
        healthy += ok
        print(
            f"  {host.name:<14} {host.addr}:{state.port:<6} {'up' if ok else 'DOWN':<5} "
            f"Debian {host.distro}, {host.init}; nspawn pid {host.nspawn_pid or '-'}, "
            f"sshd {'listening' if listening else 'not listening'}, "
            f"CPU {'-' if seconds is None else f'{seconds:.1f} s'}"
        )
    strays = [pid for pid in found if pid not in {h.nspawn_pid for h in state.hosts}]
    if strays:
        print(f"  leftover hosts not in the state: {strays} (make lab-up or lab-down)")
    return 0 if healthy == len(state.hosts) and not strays else 1


def limit_host_cpu(cfg: Config, name: str, percent: float) -> int:
    """`limit-cpu`: hold one host to a share of a core (0 lifts the limit)."""
    cfg, _state, host = lab_host(cfg, name)
    if percent < 0:
        raise LabError(f"--percent must be 0 (no limit) or more, got {percent}")
    log(f"lab {cfg.name}: {name}: {limit_cpu(host.cgroups, percent)}")
    return 0


def cpu(cfg: Config) -> int:
    """Each host's CPU seconds so far, as JSON (for make bench-scale)."""
    state = load_state(cfg)
    if state is None:
        raise LabError(f"lab {cfg.name} is not running")
    print(json.dumps({host.name: cpu_seconds(host.cgroups) for host in state.hosts}))
    return 0


# --- CLI ------------------------------------------------------------------------------------


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=DEFAULT_NAME, help="lab name (default: %(default)s)")
    common.add_argument("--lab-dir", help="lab state dir (default: <checkout>/lab/<name>)")
    common.add_argument(
        "--inventory",
        help="inventory dir written by up (default: inventories/lab for the default lab, "
        "else <lab dir>/inventory)",
    )
    common.add_argument("--base-addr", default=DEFAULT_BASE_ADDR, help="first host's address")
    common.add_argument("--port", type=int, default=DEFAULT_PORT, help="sshd port of every host")
    common.add_argument("--user", default=DEFAULT_USER, help="SSH user of every host")
    common.add_argument(
        "--stop-timeout", type=float, default=10.0, help="seconds a host gets to power off"
    )
    up_parser = sub.add_parser("up", parents=[common], help="(re)create the lab")
    up_parser.add_argument("--hosts", type=int, default=3, help="number of hosts")
    up_parser.add_argument(
        "--distro",
        default="12",
        help="Debian release of the hosts: 12 or 13, or a list (12,13) cycled over them",
    )
    up_parser.add_argument(
        "--init",
        default="systemd",
        help="systemd (PID 1, default) or sshd (no systemd), or a list cycled over the hosts",
    )
    sub.add_parser("down", parents=[common], help="stop the lab and remove all its files")
    sub.add_parser("status", parents=[common], help="show the hosts; exit 1 unless all are up")
    sub.add_parser("cpu", parents=[common], help="each host's CPU seconds so far, as JSON")
    restart_parser = sub.add_parser("restart", parents=[common], help="reboot one host")
    stop_parser = sub.add_parser("stop", parents=[common], help="power one host off (a host down)")
    stop_parser.add_argument("--host", required=True, help="the host's name (observer-01, ...)")
    restart_parser.add_argument("--host", required=True, help="the host's name (observer-01, ...)")
    limit_parser = sub.add_parser(
        "limit-cpu", parents=[common], help="hold one host to a share of a core (a starved host)"
    )
    limit_parser.add_argument("--host", required=True, help="the host's name (observer-01, ...)")
    limit_parser.add_argument(
        "--percent", type=float, required=True, help="percent of one core (0: no limit; min 0.1)"
    )
    image_parser = sub.add_parser(
        "image", parents=[common], help="build an image (or check it is current)"
    )
    image_parser.add_argument("--distro", default="12", help="12 or 13, or a list")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = Config.from_args(args)
        signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: a failed `up` removes its lab
        if args.command == "up":
            with locked(cfg.lab_dir.parent):
                up(cfg, args.hosts, args.distro, args.init)
            return 0
        if args.command == "image":
            preflight(cfg)
            images = ensure_images(per_host(args.distro, 2, DISTROS, "distro"), cfg.user)
            for distro, rootfs in images.items():
                log(f"image debian-{distro}: {rootfs}")
            return 0
        if args.command == "down":
            started = time.monotonic()
            with locked(cfg.lab_dir.parent):
                existed = down(cfg)
            log(
                f"lab {cfg.name}: down in {time.monotonic() - started:.1f} s"
                if existed
                else f"lab {cfg.name}: nothing to remove"
            )
            return 0
        if args.command == "cpu":
            return cpu(cfg)
        if args.command == "limit-cpu":
            return limit_host_cpu(cfg, args.host, args.percent)
        if args.command == "stop":
            with locked(cfg.lab_dir.parent):
                stop(cfg, args.host)
            return 0
        if args.command == "restart":
            with locked(cfg.lab_dir.parent):
                restart(cfg, args.host)
            return 0
        return status(cfg)
    except LabError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
