#!/usr/bin/env python3
"""A prod-like lab of N Observer hosts on this machine, reached over real SSH.

Each lab host is one sshd listening on its own loopback address (127.0.0.11, 127.0.0.12, ...),
started by a small init (PID 1) inside its own mount, UTS and PID namespaces
(``unshare --mount --uts --pid --fork --mount-proc --propagation private``). Inside, the host
has its own hostname, its own process table and a private, writable copy of the filesystem
the roles write to: an overlay over /etc, /usr, /opt, /var, /home, /root and /srv whose upper
layer is the host's directory under the lab dir (or a private tmpfs where overlay refuses the
disk), and tmpfs over /run, /tmp and /dev/shm. Users made by ``useradd`` in a host therefore
change only that host's /etc, and nothing a host writes reaches the machine or another host.
The checkout (and the lab dir) is hidden inside the hosts.

The hosts look like ``inventories/prod-like``: a ``deploy`` user with passwordless sudo, become,
the roles' production paths and users. ``up`` writes the inventory (hosts.yml with the lab's
connection settings, group_vars copied from prod-like), a client key and a known_hosts file
holding each host's own host key (StrictHostKeyChecking=yes).

    python3 tools/lab.py up --hosts 3        # make lab-up LAB_HOSTS=3 (cleans any old lab first)
    python3 tools/lab.py status              # make lab-status
    python3 tools/lab.py down                # make lab-down: no process, mount, listener, key left

Needs root, util-linux (unshare, mount), openssh-server (sshd), openssh-client (ssh-keygen,
ssh), sudo and passwd (useradd) on this machine. Standard library only; Python 3.9 or later.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import fcntl
import ipaddress
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
DEFAULT_NAME = "default"
DEFAULT_BASE_ADDR = "127.0.0.11"
DEFAULT_PORT = 2222
DEFAULT_USER = "deploy"
HOST_PREFIX = "observer"
PROD_LIKE_GROUP_VARS = CHECKOUT / "inventories" / "prod-like" / "group_vars" / "observers.yml"
GENERATED_MARK = ".generated-by-tools-lab"
HOST_PYTHON = "/usr/bin/python3"
SSHD = "/usr/sbin/sshd"
# Directories each host gets a private, writable overlay of (skipped when absent here).
OVERLAY_DIRS = ("/etc", "/usr", "/opt", "/var", "/home", "/root", "/srv")
# Directories each host gets an empty tmpfs over, with their mode.
TMPFS_DIRS = (("/run", "0755"), ("/tmp", "1777"), ("/dev/shm", "1777"))  # noqa: S108
TOOLS = {
    "unshare": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "ssh-keygen": "openssh-client",
    "ssh": "openssh-client",
    "useradd": "passwd",
}
INIT_COMM = b"lab-init"  # /proc/1/comm in a host: Ansible's service_mgr fact (not systemd)
READY_TIMEOUT_S = 30.0
USERADD = ["useradd", "--create-home", "--shell", "/bin/bash", "--user-group", "--password", "*"]
PR_SET_NAME = 15


class LabError(Exception):
    """A failure with a message for the user; the command exits 1."""


@dataclass
class HostState:
    name: str
    addr: str
    unshare_pid: int = 0
    init_pid: int = 0


@dataclass
class LabState:
    name: str
    lab_dir: str
    inventory_dir: str
    port: int
    user: str
    created: str
    hosts: list[HostState] = field(default_factory=list)


# --- Small helpers ---------------------------------------------------------------------------


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(argv: list[str], what: str) -> subprocess.CompletedProcess[str]:
    """Run argv, raising LabError with its output when it fails."""
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise LabError(f"{what} failed ({shlex.join(argv)}): {output}")
    return result


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)


def read_text(path: Path | str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def host_names(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"{HOST_PREFIX}-{index:0{width}d}" for index in range(1, count + 1)]


def short_path(path: Path) -> str:
    """Relative to the current directory when under it, else absolute."""
    cwd = Path.cwd()
    return str(path.relative_to(cwd)) if cwd in path.parents else str(path)


def yaml_str(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value)


# --- Processes, listeners and mounts of a lab ----------------------------------------------


def proc_argv(pid: int) -> list[str]:
    raw = read_text(f"/proc/{pid}/cmdline")
    return raw.split("\0")[:-1] if raw else []


def proc_status(pid: int) -> dict[str, str]:
    raw = read_text(f"/proc/{pid}/status") or ""
    fields = (line.split(":", 1) for line in raw.splitlines() if ":" in line)
    return {key: value.strip() for key, value in fields}


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def is_lab_process(pid: int, lab_dir: Path) -> bool:
    """The unshare and the init of every host of this lab carry `--lab-dir <lab_dir>`."""
    argv = proc_argv(pid)
    if "init" not in argv:
        return False
    return any(arg == "--lab-dir" and nxt == str(lab_dir) for arg, nxt in zip(argv, argv[1:]))


def lab_processes(lab_dir: Path) -> dict[int, str]:
    """pid -> 'init' (PID 1 of a host's namespace) or 'unshare' (its parent here), live only."""
    found = {}
    for pid in all_pids():
        if pid == os.getpid() or not is_lab_process(pid, lab_dir):
            continue
        status = proc_status(pid)
        if status.get("State", "").startswith(("Z", "X")):
            continue
        found[pid] = "init" if status.get("NSpid", "").split()[-1:] == ["1"] else "unshare"
    return found


def namespace_of(pid: int, kind: str = "pid") -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def processes_in_namespace(namespace: str, kind: str = "pid") -> list[int]:
    return [pid for pid in all_pids() if namespace_of(pid, kind) == namespace]


def tcp_listeners() -> set[tuple[str, int]]:
    """(address, port) of every IPv4 TCP listener, from /proc/net/tcp."""
    listeners = set()
    for line in (read_text("/proc/net/tcp") or "").splitlines()[1:]:
        columns = line.split()
        if len(columns) < 4 or columns[3] != "0A":
            continue
        hex_addr, hex_port = columns[1].split(":")
        addr = socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1])
        listeners.add((addr, int(hex_port, 16)))
    return listeners


def mounts_under(path: Path, mountinfo: str = "/proc/self/mountinfo") -> list[str]:
    prefix = str(path).rstrip("/") + "/"
    points = []
    for line in (read_text(mountinfo) or "").splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(path) or point.startswith(prefix):
            points.append(point)
    return points


def wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if is_alive(pid)]
    return alive


def is_alive(pid: int) -> bool:
    return not proc_status(pid).get("State", "Z").startswith(("Z", "X"))


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
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise LabError(f"bad lab name {name!r}: letters, digits, '.', '_' and '-' only")
        lab_dir = Path(args.lab_dir or CHECKOUT / "lab" / name).absolute()
        if args.inventory:
            inventory_dir = Path(args.inventory).absolute()
        elif name == DEFAULT_NAME:
            inventory_dir = CHECKOUT / "inventories" / "lab"
        else:
            inventory_dir = lab_dir / "inventory"
        return cls(
            name=name,
            lab_dir=lab_dir,
            inventory_dir=inventory_dir,
            base_addr=args.base_addr,
            port=args.port,
            user=args.user,
            stop_timeout_s=args.stop_timeout,
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
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "IdentitiesOnly=yes",
        ]


@contextlib.contextmanager
def lab_lock(cfg: Config) -> Iterator[None]:
    """One up or down at a time (any lab of this lab root): a lock on the root directory."""
    root = cfg.lab_dir.parent
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another lab up/down under {root}")
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
    write_file(cfg.state_file, json.dumps(asdict(state), indent=2) + "\n")


# --- Preflight ------------------------------------------------------------------------------


def preflight(cfg: Config) -> None:
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab needs root (namespaces, mounts): run it as root")
    if not os.access(SSHD, os.X_OK):
        problems.append(f"sshd not found at {SSHD}: apt-get install openssh-server")
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found: apt-get install {package}")
    if shutil.which("sudo") is None:
        problems.append("sudo not found (the hosts use become): apt-get install sudo")
    if not os.access(HOST_PYTHON, os.X_OK):
        problems.append(f"{HOST_PYTHON} not found (the hosts' Python): apt-get install python3")
    elif subprocess.run(
        [HOST_PYTHON, "-c", "import ensurepip, venv"], capture_output=True, check=False
    ).returncode:
        problems.append(
            f"{HOST_PYTHON} cannot make venvs (the roles do): apt-get install python3-venv"
        )
    if not PROD_LIKE_GROUP_VARS.is_file():
        problems.append(f"{PROD_LIKE_GROUP_VARS} is missing (the lab copies its group_vars)")
    if re.search(r"[\s,:\\]", str(cfg.lab_dir)):
        problems.append(
            f"lab dir {cfg.lab_dir} has a space, ',', ':' or '\\' (overlay options): set --lab-dir"
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


# --- down -----------------------------------------------------------------------------------


def down(cfg: Config, *, reason: str = "down") -> bool:
    """Stop every process of the lab and remove its files. True if there was anything."""
    state = load_state(cfg)
    found = lab_processes(cfg.lab_dir)
    existed = bool(found) or cfg.lab_dir.exists() or is_generated_inventory(cfg.inventory_dir)
    if found:
        log(f"lab {cfg.name}: stopping {len(found)} process(es) ({reason})")
    inits = [pid for pid, role in found.items() if role == "init"]
    for pid in inits:
        signal_pid(pid, signal.SIGTERM)
    # Each init stops its host's processes (stop_timeout_s), then exits: the kernel kills
    # whatever is left in its PID namespace and the namespace's mounts go with it.
    alive = wait_gone(list(found), cfg.stop_timeout_s + 2.0)
    for pid in alive:
        signal_pid(pid, signal.SIGKILL)
    alive = wait_gone(alive, 5.0)
    # A process started between the scan and the kill (a concurrent `up`) is caught here.
    alive += [pid for pid in lab_processes(cfg.lab_dir) if pid not in alive]
    if alive:
        raise LabError(f"lab {cfg.name}: processes {alive} survive SIGKILL; not removing files")
    for point in sorted(mounts_under(cfg.lab_dir), key=len, reverse=True):
        # Never made here (all mounts live in the hosts' namespaces); an older lab's leftover.
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    if state is not None:
        taken = tcp_listeners()
        busy = [f"{h.addr}:{state.port}" for h in state.hosts if (h.addr, state.port) in taken]
        if busy:
            log(f"warning: {', '.join(busy)} still listened on by a process outside the lab")
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


SSHD_CONFIG = """\
# Lab host {host}: written by tools/lab.py (the host's private /etc/ssh).
ListenAddress {addr}:{port}
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
X11Forwarding no
PrintMotd no
AcceptEnv LANG LC_*
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
"""


def seed_host(cfg: Config, host: str, addr: str, etc_hosts: str, client_pub: str) -> None:
    """Files the host's init copies into its private filesystem (seed/<path> -> /<path>)."""
    seed = cfg.host_dir(host) / "seed"
    key = seed / "etc" / "ssh" / "ssh_host_ed25519_key"
    key.parent.mkdir(parents=True)
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host, "-f", str(key)], "ssh-keygen")
    write_file(
        seed / "etc" / "ssh" / "sshd_config",
        SSHD_CONFIG.format(host=host, addr=addr, port=cfg.port),
    )
    write_file(seed / "etc" / "hostname", host + "\n")
    write_file(seed / "etc" / "hosts", etc_hosts)
    if cfg.user != "root":
        write_file(
            seed / "etc" / "sudoers.d" / "lab-user",
            f"{cfg.user} ALL=(ALL:ALL) NOPASSWD: ALL\n",
            0o440,
        )
    write_file(cfg.host_dir(host) / "authorized_keys", client_pub)


def launch_host(cfg: Config, host: str) -> subprocess.Popen[bytes]:
    host_dir = cfg.host_dir(host)
    python = os.path.realpath(sys.executable)  # the base interpreter: not inside the checkout
    argv = [
        "unshare",
        "--mount",
        "--uts",
        "--pid",
        "--fork",
        "--mount-proc",
        "--propagation",
        "private",
        "--kill-child",
        python,
        "-I",
        "-u",
        str(Path(__file__).resolve()),
        "init",
        "--lab-dir",
        str(cfg.lab_dir),
        "--host",
        host,
        "--user",
        cfg.user,
        "--stop-timeout",
        str(cfg.stop_timeout_s),
    ]
    with open(host_dir / "init.log", "ab") as log_file:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"},
        )


def child_of(pid: int) -> int:
    raw = read_text(f"/proc/{pid}/task/{pid}/children") or ""
    children = [int(child) for child in raw.split()]
    return children[0] if children else 0


def read_banner(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.5) as conn:
            return conn.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def log_tail(path: Path, lines: int = 15) -> str:
    text = read_text(path) or "(no log)"
    return "\n    ".join(text.rstrip().splitlines()[-lines:])


def wait_ready(cfg: Config, state: LabState, procs: dict[str, subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = {host.name: host for host in state.hosts}
    while waiting:
        for name, host in list(waiting.items()):
            if procs[name].poll() is not None:
                raise LabError(
                    f"host {name} exited during start-up (status {procs[name].returncode}); "
                    f"{cfg.host_dir(name) / 'init.log'}:\n    "
                    + log_tail(cfg.host_dir(name) / "init.log")
                )
            if not host.init_pid:
                host.init_pid = child_of(host.unshare_pid)
            if host.init_pid and read_banner(host.addr, cfg.port):
                del waiting[name]
        if waiting and time.monotonic() > deadline:
            first = next(iter(waiting))
            raise LabError(
                f"hosts {sorted(waiting)} not answering SSH after {READY_TIMEOUT_S:.0f} s; "
                f"{cfg.host_dir(first) / 'init.log'}:\n    "
                + log_tail(cfg.host_dir(first) / "init.log")
            )
        time.sleep(0.05)


def write_known_hosts(cfg: Config, state: LabState) -> None:
    lines = []
    for host in state.hosts:
        pub = cfg.host_dir(host.name) / "seed" / "etc" / "ssh" / "ssh_host_ed25519_key.pub"
        key_type, key_data = pub.read_text().split()[:2]
        target = host.addr if cfg.port == 22 else f"[{host.addr}]:{cfg.port}"
        lines.append(f"{target} {key_type} {key_data}\n")
    write_file(cfg.known_hosts, "".join(lines))


def check_logins(cfg: Config, state: LabState) -> None:
    """Log in to every host at once as the lab user: its hostname, and sudo without a password."""
    procs = {
        host.name: subprocess.Popen(
            [
                "ssh",
                "-F",
                "/dev/null",
                *cfg.ssh_options(),
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=10",
                "-i",
                str(cfg.key_file),
                "-p",
                str(cfg.port),
                "-l",
                cfg.user,
                host.addr,
                "hostname && sudo -n true",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for host in state.hosts
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=30)
        if proc.returncode != 0 or out.strip() != name:
            raise LabError(
                f"ssh {cfg.user}@{name} failed (status {proc.returncode}, hostname "
                f"{out.strip()!r}): {err.strip()}\n    init.log:\n    "
                + log_tail(cfg.host_dir(name) / "init.log")
            )


INVENTORY_HEADER = """\
---
# Generated by tools/lab.py (make lab-up) on {created}: lab {name},
# {count} host(s) on this machine, each an sshd in its own mount, UTS and PID namespaces.
# make lab-down removes it.
# The shape of inventories/prod-like (group_vars/observers.yml is a copy of its group_vars)
# plus the lab's connection settings. Do not edit: make lab-up rewrites it.
"""


def write_inventory(cfg: Config, state: LabState) -> None:
    inv = cfg.inventory_dir
    options = cfg.ssh_options()
    # One `-o option` a line (a folded scalar: joined with spaces), each quoted for the shell.
    ssh_args = "".join(
        f"      {flag} {shlex.quote(value)}\n" for flag, value in zip(options[::2], options[1::2])
    )
    lines = [
        INVENTORY_HEADER.format(created=state.created, name=cfg.name, count=len(state.hosts)),
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
    ]
    write_file(inv / "hosts.yml", "".join(lines))
    group_vars = PROD_LIKE_GROUP_VARS.read_text()
    write_file(
        inv / "group_vars" / "observers.yml",
        "# Copied from inventories/prod-like/group_vars/observers.yml by tools/lab.py.\n"
        + group_vars,
    )
    write_file(inv / GENERATED_MARK, f"lab {cfg.name} {cfg.lab_dir}\n")


def up(cfg: Config, count: int) -> None:
    if not 1 <= count <= 250:
        raise LabError(f"--hosts must be 1 to 250 (got {count})")
    addrs = cfg.addresses(count)
    preflight(cfg)
    started = time.monotonic()
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
        hosts=[HostState(name=name, addr=addr) for name, addr in zip(names, addrs)],
    )
    cfg.lab_dir.mkdir(parents=True)
    cfg.lab_dir.chmod(0o700)
    cfg.key_file.parent.mkdir(mode=0o700)
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-{cfg.name}"]
    run([*keygen, "-f", str(cfg.key_file)], "ssh-keygen")
    client_pub = cfg.key_file.with_suffix(".pub").read_text()
    etc_hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + "".join(
        f"{addr}\t{name}\n" for name, addr in zip(names, addrs)
    )
    for name, addr in zip(names, addrs):
        seed_host(cfg, name, addr, etc_hosts, client_pub)
    save_state(cfg, state)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for host in state.hosts:
            procs[host.name] = launch_host(cfg, host.name)
            host.unshare_pid = procs[host.name].pid
        save_state(cfg, state)
        wait_ready(cfg, state, procs)
        save_state(cfg, state)
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
        f"lab {cfg.name}: {count} host(s) up in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{h.name}={h.addr}:{cfg.port}" for h in state.hosts)
    )
    log(f"  inventory: {inv}    try: ansible -i {inv} observers -m ansible.builtin.ping")
    log(
        f"  ssh: ssh -i {short_path(cfg.key_file)} -p {cfg.port} "
        f"-o UserKnownHostsFile={short_path(cfg.known_hosts)} {cfg.user}@{addrs[0]}"
    )


# --- status ---------------------------------------------------------------------------------


def status(cfg: Config) -> int:
    state = load_state(cfg)
    found = lab_processes(cfg.lab_dir)
    if state is None:
        if found:
            print(f"lab {cfg.name}: no state but {len(found)} leftover process(es): make lab-down")
            return 1
        print(f"lab {cfg.name}: not running")
        return 1
    listeners = tcp_listeners()
    healthy = 0
    print(f"lab {cfg.name}: {len(state.hosts)} host(s), inventory {state.inventory_dir}")
    for host in state.hosts:
        up_now = host.init_pid in found and found[host.init_pid] == "init"
        listening = (host.addr, state.port) in listeners
        namespace = namespace_of(host.init_pid) if up_now else None
        nprocs = len(processes_in_namespace(namespace)) if namespace else 0
        ok = up_now and listening
        healthy += ok
        print(
            f"  {host.name:<14} {host.addr}:{state.port:<6} "
            f"{'up' if ok else 'DOWN':<5} init pid {host.init_pid or '-'}, "
            f"{nprocs} process(es), sshd {'listening' if listening else 'not listening'}"
        )
    strays = [pid for pid in found if pid not in {h.init_pid for h in state.hosts}]
    strays = [pid for pid in strays if pid not in {h.unshare_pid for h in state.hosts}]
    if strays:
        print(f"  leftover processes not in the state: {strays} (make lab-up or lab-down)")
    return 0 if healthy == len(state.hosts) and not strays else 1


# --- init: PID 1 of a host ------------------------------------------------------------------


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def init_mount(argv: list[str]) -> None:
    run(["mount", *argv], "mount")


def init_filesystem(host_dir: Path) -> None:
    """Private overlays and tmpfs; only this namespace sees them."""
    memory = host_dir / "mem"  # a private tmpfs for the overlays the disk cannot hold
    # The directory holding the lab dir (e.g. /root) last: once it is an overlay, an upper dir
    # under it would be on overlayfs, which overlay refuses.
    holds_lab = {d for d in OVERLAY_DIRS if Path(d) in host_dir.parents}
    for directory in sorted(OVERLAY_DIRS, key=lambda d: d in holds_lab):
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue
        for base in (host_dir / "fs", memory):
            if base == memory and not os.path.ismount(memory):
                memory.mkdir(exist_ok=True)
                init_mount(["-t", "tmpfs", "-o", "mode=0700", "lab-mem", str(memory)])
            upper, work = base / "upper" / directory[1:], base / "work" / directory[1:]
            upper.mkdir(parents=True, exist_ok=True)
            work.mkdir(parents=True, exist_ok=True)
            options = f"lowerdir={directory},upperdir={upper},workdir={work}"
            try:
                init_mount(["-t", "overlay", "-o", options, "lab-overlay", directory])
                break
            except LabError as exc:
                if base == memory:
                    raise
                log(f"overlay of {directory} on disk refused, using memory: {exc}")
    for directory, mode in TMPFS_DIRS:
        if os.path.isdir(directory):
            init_mount(["-t", "tmpfs", "-o", f"mode={mode},nosuid,nodev", "lab-tmp", directory])
    Path("/run/sshd").mkdir(mode=0o755)
    Path("/run/lock").mkdir(mode=0o1777)


def init_read_seed(seed: Path) -> list[tuple[Path, bytes, int]]:
    """The files of seed/ as (path inside the host, content, mode), read into memory: the lab
    dir may sit under a directory the host's own tmpfs is about to cover (/tmp, /run)."""
    files = []
    for root, _dirs, names in os.walk(seed):
        for name in names:
            source = Path(root) / name
            target = Path("/") / source.relative_to(seed)
            files.append((target, source.read_bytes(), os.stat(source).st_mode & 0o7777))
    return files


def init_copy_seed(files: list[tuple[Path, bytes, int]]) -> None:
    """Write the seed's files into the host, keeping their mode; directories as needed."""
    for target, content, mode in files:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        os.chmod(target, mode)
        os.chown(target, 0, 0)


def init_user(user: str, authorized_keys: str) -> None:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        run(
            [*USERADD, "--comment", "lab deploy user", user],
            "useradd",
        )
        entry = pwd.getpwnam(user)
    ssh_dir = Path(entry.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    write_file(keys, authorized_keys, 0o600)
    for path in (ssh_dir, keys):
        os.chown(path, entry.pw_uid, entry.pw_gid)


def init(lab_dir: Path, host: str, user: str, stop_timeout_s: float) -> int:
    if os.getpid() != 1:
        raise LabError("init runs as PID 1 of a lab host (tools/lab.py up starts it)")
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NAME, INIT_COMM, 0, 0, 0)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    host_dir = lab_dir / "hosts" / host
    sshd_pid = 0
    try:
        socket.sethostname(host)
        # Read what the host needs from the lab dir before its own mounts may cover it.
        seed = init_read_seed(host_dir / "seed")
        authorized_keys = (host_dir / "authorized_keys").read_text()
        init_filesystem(host_dir)
        init_copy_seed(seed)
        init_user(user, authorized_keys)
        # Hide the checkout and the lab dir (keys, the other hosts' files) from the host.
        hide = [CHECKOUT] + ([lab_dir] if CHECKOUT not in lab_dir.parents else [])
        for path in hide:
            if path.exists():  # under the host's own /tmp or /run it is already out of sight
                init_mount(["-t", "tmpfs", "-o", "mode=0755,size=64k", "lab-hidden", str(path)])
        os.chdir("/")
        sshd_pid = subprocess.Popen([SSHD, "-D", "-e"], stdin=subprocess.DEVNULL).pid
        log(f"{host}: up, sshd pid {sshd_pid} (in the host)")
        while True:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                time.sleep(1)
                continue
            if pid == sshd_pid:
                log(f"{host}: sshd exited ({status}); the host goes down")
                return 1
    except _Stop as stop:
        log(f"{host}: {stop}, stopping")
        return 0
    finally:
        stop_all(stop_timeout_s)


def stop_all(timeout_s: float) -> None:
    """SIGTERM every process of the namespace, reap for timeout_s; the kernel kills the rest."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        os.kill(-1, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.05)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


# --- CLI ------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    common.add_argument("--user", default=DEFAULT_USER, help="SSH user made in every host")
    common.add_argument(
        "--stop-timeout", type=float, default=3.0, help="seconds a host's processes get to stop"
    )
    up_parser = sub.add_parser("up", parents=[common], help="(re)create the lab")
    up_parser.add_argument("--hosts", type=int, default=3, help="number of hosts")
    sub.add_parser("down", parents=[common], help="stop the lab and remove all its files")
    sub.add_parser("status", parents=[common], help="show the hosts; exit 1 unless all are up")
    init_parser = sub.add_parser("init", help=argparse.SUPPRESS)
    init_parser.add_argument("--lab-dir", required=True)
    init_parser.add_argument("--host", required=True)
    init_parser.add_argument("--user", required=True)
    init_parser.add_argument("--stop-timeout", type=float, default=3.0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "init":
            return init(Path(args.lab_dir), args.host, args.user, args.stop_timeout)
        cfg = Config.from_args(args)
        signal.signal(signal.SIGTERM, _interrupt)  # like Ctrl-C: a failed `up` removes its lab
        if args.command == "up":
            with lab_lock(cfg):
                up(cfg, args.hosts)
            return 0
        if args.command == "down":
            started = time.monotonic()
            with lab_lock(cfg):
                existed = down(cfg)
            if existed:
                log(f"lab {cfg.name}: down in {time.monotonic() - started:.1f} s")
            else:
                log(f"lab {cfg.name}: nothing to remove")
            return 0
        return status(cfg)
    except LabError as exc:
        log(f"error: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
