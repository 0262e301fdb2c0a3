"""Configuration: a lab's settings from the command line (Config: its name, folders,
addresses, port, user and SSH options), the lock that lets one command at a time work under a
folder, the lab's recorded state (state.json), and the checks made before a lab starts (root,
tools, paths, a free port)."""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import socket
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .common import (
    CHECKOUT,
    DEFAULT_NAME,
    IMAGES,
    PIP_CACHE,
    PROD_LIKE_GROUP_VARS,
    TOOLS,
    HostState,
    LabError,
    LabState,
    log,
    read_text,
    write_file,
)


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
