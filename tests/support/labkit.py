"""A lab of tools/lab.py driven from tests: its own name, addresses and port, so that tests
never touch the user's `make lab-up` lab. Needs root, systemd-container, debootstrap and
openssh-client."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stressrun import ROOT, user_env

from lab import HOST_NAME, SSH_TIMEOUT_S

LAB_TOOL = ROOT / "tools" / "lab.py"
NEEDS_ROOT = "the lab needs root (systemd-nspawn containers, cgroups)"


def is_root() -> bool:
    return os.geteuid() == 0


@dataclass(frozen=True)
class Lab:
    name: str
    base_addr: str
    port: int
    user: str = "deploy"

    @property
    def dir(self) -> Path:
        return ROOT / "lab" / self.name

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory"

    @property
    def opts(self) -> list[str]:
        return [
            "--name", self.name, "--base-addr", self.base_addr, "--port", str(self.port),
            "--user", self.user, "--stop-timeout", "2",
        ]  # fmt: skip

    def run(
        self, command: str, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`tools/lab.py <command>` for this lab."""
        result = subprocess.run(
            [sys.executable, str(LAB_TOOL), command, *self.opts, *extra],
            cwd=ROOT,
            env=user_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=900,  # the first `up` builds the image (about a minute per release)
            check=False,
        )
        if check:
            assert result.returncode == 0, f"lab {command}: {result.stdout}\n{result.stderr}"
        return result

    def state(self) -> dict:
        return json.loads((self.dir / "state.json").read_text())

    def ssh(self, addr: str, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`command` run by the lab user on the host at `addr`, over SSH."""
        ssh_dir = self.dir / "ssh"
        argv = [
            "ssh", "-F", "/dev/null", "-i", str(ssh_dir / "id_ed25519"), "-p", str(self.port),
            "-o", f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={SSH_TIMEOUT_S}",
            f"{self.user}@{addr}", command,
        ]  # fmt: skip
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=2 * SSH_TIMEOUT_S,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"ssh {addr} {command!r}: {result.stderr}"
        return result

    def processes(self) -> list[int]:
        """Live processes of this lab: its systemd-nspawns and everything in its hosts."""
        # This lab's machines only: lab `pytest` is not lab `pytest-stress`.
        machine = re.compile(rf"--machine=qtslab-{re.escape(self.name)}-{HOST_NAME.pattern}")
        cgroup = f"/qtslab-{self.name}/"
        found = []
        for pid in live_pids():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                groups = Path(f"/proc/{pid}/cgroup").read_text()
            except OSError:
                continue
            named = any(machine.fullmatch(arg.decode(errors="replace")) for arg in argv)
            if named or cgroup in groups:
                found.append(pid)
        return found

    def cgroups(self) -> list[Path]:
        """The lab's cgroup folders, in every hierarchy."""
        return [p for p in Path("/sys/fs/cgroup").glob(f"**/qtslab-{self.name}") if p.is_dir()]


def live_pids() -> list[int]:
    """PIDs of this machine's processes that are neither zombies nor dead."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
            pids.append(int(entry))
    return pids
