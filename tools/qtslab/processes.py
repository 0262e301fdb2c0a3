"""Processes and listeners: a lab host is a systemd-nspawn process, found in /proc by its
machine name (unique to its lab and host), and its sshd is up when it listens (read from
/proc/net/tcp, without connecting)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .common import HOST_NAME, read_text


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
