"""Connection timeouts sized for a loaded machine, and a host that is down still found fast.

A suite run on two busy cores once failed a lab host that was up: its sudo took longer than
Ansible's default allows ("Timeout (12s) waiting for privilege escalation prompt", the
`timeout` of 10 s plus 2). Here one lab host is starved the way that run starved it: it gets
a sliver of a core (a CFS quota on its cgroup, `tools/lab.py limit-cpu`) while a neighbour
keeps a core busy. The quota is set from the CPU a become costs on this machine, so that it
takes about STARVED_BECOME_S: past Ansible's default, within the lab's timeout.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import NEEDS_ROOT, SSH_TIMEOUT_S, Lab, is_root
from stressrun import ROOT, a_neighbour_keeps_one_core_busy, user_env

LAB = Lab(name="pytest-slow", base_addr="127.0.0.216", port=2216)
HOST = "observer-01"
ANSIBLE = ROOT / ".venv" / "bin" / "ansible"
ANSIBLE_DEFAULT_TIMEOUT_S = 10
# How long the starved host's become should take: well past Ansible's default (12 s), well
# within the lab's (SSH_TIMEOUT_S + 2).
STARVED_BECOME_S = 28.0
# A host that is down must be reported within this, whatever the timeouts.
DOWN_WITHIN_S = 30.0

pytestmark = pytest.mark.lab

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)


@pytest.fixture(scope="module")
def lab() -> Iterator[Path]:
    """One Debian 12 host booting systemd; always torn down."""
    LAB.run("down")
    try:
        LAB.run("up", "--hosts", "1")
        yield LAB.inventory
    finally:
        LAB.run("down")
        assert not LAB.processes()


def become(inventory: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """`id -u` as root on the host through sudo (the raw module: nothing to run after the
    become but `id`), and the seconds it took."""
    argv = [str(ANSIBLE), "-i", str(inventory), "observers", "-m", "ansible.builtin.raw",
            "-a", "id -u", "--become", *extra]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        argv, cwd=ROOT, env=user_env(), capture_output=True, text=True, timeout=600, check=False
    )
    return result, time.monotonic() - started


def host_cpu_seconds() -> float:
    return json.loads(LAB.run("cpu").stdout)[HOST]


def become_cpu_seconds(inventory: Path) -> float:
    """The most CPU one become costs the host, of three (the SSH connection already up)."""
    become(inventory)  # opens the connection that the next ones reuse, as a play's tasks do
    costs = []
    for _unused in range(3):
        before = host_cpu_seconds()
        result, _seconds = become(inventory)
        assert result.returncode == 0, result.stdout + result.stderr
        costs.append(host_cpu_seconds() - before)
    return max(costs)


def end_the_abandoned_become(addr: str) -> None:
    """The sudo and shell of the become Ansible gave up on still wait in the host; end them,
    so that the next become has the starved host's sliver of CPU to itself ([S]: the pattern
    does not match this command's own line)."""
    LAB.ssh(addr, "sudo -n pkill -KILL -f 'BECOME-[S]UCCESS' || true")


def test_a_starved_host_fails_ansibles_default_timeout_and_passes_the_labs(lab):
    addr = LAB.state()["hosts"][0]["addr"]
    cost = become_cpu_seconds(lab)
    percent = max(0.1, 100 * cost / STARVED_BECOME_S)
    with a_neighbour_keeps_one_core_busy():
        LAB.run("limit-cpu", "--host", HOST, "--percent", f"{percent:.2f}")
        try:
            # Ansible's own default: the host is up, yet reported unreachable.
            failed, failed_after = become(
                lab, "-e", f"ansible_ssh_timeout={ANSIBLE_DEFAULT_TIMEOUT_S}"
            )
            LAB.run("limit-cpu", "--host", HOST, "--percent", "0")
            end_the_abandoned_become(addr)
            LAB.run("limit-cpu", "--host", HOST, "--percent", f"{percent:.2f}")
            # The lab's timeout, from its inventory: the same starved host becomes root.
            passed, passed_after = become(lab)
        finally:
            LAB.run("limit-cpu", "--host", HOST, "--percent", "0")
    context = f"become cost {cost:.3f} CPU-s, quota {percent:.2f} % of a core"
    print(f"{context}: Ansible's default failed after {failed_after:.1f} s, the lab's passed "
          f"after {passed_after:.1f} s")  # fmt: skip
    assert failed.returncode != 0, f"{context}: {failed.stdout}"
    assert "UNREACHABLE" in failed.stdout, f"{context}: {failed.stdout}"
    assert "Timeout (12s) waiting for privilege escalation prompt" in failed.stdout, (
        f"{context}: {failed.stdout}"
    )
    assert failed_after < SSH_TIMEOUT_S, failed_after
    assert passed.returncode == 0, f"{context}: {passed.stdout}{passed.stderr}"
    assert re.search(r"\| CHANGED \| rc=0 >>\s*0\s", passed.stdout), passed.stdout
    # It was really starved past Ansible's default: the lab's timeout is what let it through.
    assert ANSIBLE_DEFAULT_TIMEOUT_S + 2 < passed_after < SSH_TIMEOUT_S + 2, (
        f"{context}: became root in {passed_after:.1f} s"
    )


def test_a_host_that_is_down_is_unreachable_within_seconds(lab):
    """The lab's longer timeout does not make a dead host slow to find: nothing listens on
    its address, so the connection is refused at once (last in the module: the host stays
    off)."""
    LAB.run("stop", "--host", HOST)
    result, seconds = become(lab)
    assert result.returncode != 0
    assert f"{HOST} | UNREACHABLE!" in result.stdout, result.stdout
    assert "Connection refused" in result.stdout, result.stdout
    assert seconds < DOWN_WITHIN_S, f"the down host was reported after {seconds:.1f} s"
