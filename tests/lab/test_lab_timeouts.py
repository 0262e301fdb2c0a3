"""Connection timeouts sized for a loaded machine, and a host that is down still found fast.

A suite run on two busy cores once failed a lab host that was up: its sudo took longer than
Ansible's default allows ("Timeout (12s) waiting for privilege escalation prompt", the
`timeout` of 10 s plus 2). Here one lab host is starved the way that run starved it: it gets
a sliver of a core (a CFS quota on its cgroup, `tools/lab.py limit-cpu`) while a neighbour
keeps a core busy. The quota is set from the CPU a become costs on this machine, so that it
takes about STARVED_BECOME_S: past Ansible's default, within the lab's timeout. On a machine
where a become costs so little that the smallest quota lets it through in about 13 to 18 s,
too close to Ansible's 12 s to fail it every time, a busy loop inside the host (at nice 19,
as a host's background work) joins that quota while Ansible's default is tried: it takes what
the become leaves each time it waits, so the become waits for the next period more often.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import NEEDS_ROOT, SSH_TIMEOUT_S, Lab, is_root
from stressrun import ROOT, a_neighbour_keeps_one_core_busy, user_env

from lab import CFS_MIN_QUOTA_US, CFS_PERIOD_US

LAB = Lab(name="pytest-slow", base_addr="127.0.0.216", port=2216)
HOST = "observer-01"
ANSIBLE = ROOT / ".venv" / "bin" / "ansible"
ANSIBLE_DEFAULT_TIMEOUT_S = 10
# How long the starved host's become should take: well past Ansible's default (12 s), well
# within the lab's (SSH_TIMEOUT_S + 2).
STARVED_BECOME_S = 28.0
# The smallest share of a core the lab can give a host (its smallest CFS quota a period).
MIN_PERCENT = 100 * CFS_MIN_QUOTA_US / CFS_PERIOD_US
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


def starving(cost: float) -> tuple[float, int]:
    """The quota (percent of a core) that makes a become costing `cost` CPU-seconds take about
    STARVED_BECOME_S, and the busy loops (0 or 1) Ansible's default is tried beside."""
    percent = 100 * cost / STARVED_BECOME_S
    if percent >= MIN_PERCENT:
        return percent, 0
    # The smallest quota alone would let it through in cost / (MIN_PERCENT / 100) seconds.
    return MIN_PERCENT, 1


@contextlib.contextmanager
def busy_loops_in_host(addr: str, count: int) -> Iterator[None]:
    """`count` busy loops at nice 19 in the host (in its cgroup, so under its quota); ended
    afterwards ([r]: the pattern does not match this command's own line)."""
    loop = "nohup nice -n 19 sh -c 'while :; do :; done' qts-starver </dev/null >/dev/null 2>&1 &"
    for _unused in range(count):
        LAB.ssh(addr, f'sudo -n sh -c "{loop}"')
    try:
        yield
    finally:
        if count:
            LAB.ssh(addr, "sudo -n pkill -KILL -f 'qts-starve[r]' || true")


def end_the_abandoned_become(addr: str) -> None:
    """The sudo and shell of the become Ansible gave up on still wait in the host; end them,
    so that the next become has the starved host's sliver of CPU to itself ([S]: the pattern
    does not match this command's own line)."""
    LAB.ssh(addr, "sudo -n pkill -KILL -f 'BECOME-[S]UCCESS' || true")


def test_a_starved_host_fails_ansibles_default_timeout_and_passes_the_labs(lab):
    addr = LAB.state()["hosts"][0]["addr"]
    cost = become_cpu_seconds(lab)
    percent, loops = starving(cost)
    with a_neighbour_keeps_one_core_busy():
        # Ansible's own default: the host is up, yet reported unreachable. (The loops end
        # after the quota is lifted, the inner `finally`, at full speed.)
        with busy_loops_in_host(addr, loops):
            LAB.run("limit-cpu", "--host", HOST, "--percent", f"{percent:.2f}")
            try:
                failed, failed_after = become(
                    lab, "-e", f"ansible_ssh_timeout={ANSIBLE_DEFAULT_TIMEOUT_S}"
                )
            finally:
                LAB.run("limit-cpu", "--host", HOST, "--percent", "0")
        end_the_abandoned_become(addr)
        # The lab's timeout, from its inventory: the host starved by the quota alone still
        # takes longer than Ansible's default allows (asserted below), and becomes root.
        LAB.run("limit-cpu", "--host", HOST, "--percent", f"{percent:.2f}")
        try:
            passed, passed_after = become(lab)
        finally:
            LAB.run("limit-cpu", "--host", HOST, "--percent", "0")
    context = f"become cost {cost:.3f} CPU-s, quota {percent:.2f} % of a core, {loops} busy loop(s)"
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
