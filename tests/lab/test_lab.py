"""The lab (tools/lab.py) for real: systemd-nspawn hosts booting systemd, real SSH, no mocks.

The tests use their own lab (name, addresses, port), never the user's `make lab-up` lab, and
every test tears its lab down, pass or fail. Needs root, systemd-container, debootstrap,
openssh-client; the first `up` builds the Debian image (cached under lab/images/).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import NEEDS_ROOT, Lab, is_root, live_pids
from stressrun import ROOT

pytestmark = pytest.mark.lab

LAB = Lab(name="pytest", base_addr="127.0.0.231", port=2231)
LAB_DIR = LAB.dir
MARKER = "/opt/qts-lab-test-marker"

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

lab = LAB.run
state = LAB.state
ssh = LAB.ssh


def listeners(addrs: set[str]) -> list[str]:
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, st = line.split()[1], line.split()[3]
        hex_addr, hex_port = local.split(":")
        addr = socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1])
        if st == "0A" and addr in addrs:
            found.append(f"{addr}:{int(hex_port, 16)}")
    return found


def identities(pids: list[int]) -> set[tuple[int, str]]:
    """(pid, start time) of each live pid: a process, not a reused pid."""
    found = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        found.add((pid, stat.rsplit(")", 1)[1].split()[19]))
    return found


def wait_until(predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.fixture
def lab_up() -> Iterator[dict]:
    """A 2-host test lab (Debian 12, systemd); always torn down, whatever the test did."""
    lab("down")  # a crashed earlier run
    try:
        lab("up", "--hosts", "2")
        yield state()
    finally:
        lab("down")
        assert not LAB.processes()


def test_hosts_boot_systemd_and_are_separate_machines_over_ssh(lab_up):
    one, two = lab_up["hosts"]
    assert [one["addr"], two["addr"]] == ["127.0.0.231", "127.0.0.232"]
    for host in (one, two):
        answer = ssh(host["addr"], "hostname; cat /proc/1/comm; systemctl is-system-running").stdout
        assert answer.split() == [host["name"], "systemd", "running"], answer
    ids = [ssh(h["addr"], "cat /etc/machine-id").stdout.strip() for h in (one, two)]
    assert len(set(ids)) == 2 and all(len(i) == 32 for i in ids)

    # Own process tables, own files and users (as root through sudo: become), own journal.
    ssh(one["addr"], "nohup sleep 4242 >/dev/null 2>&1 &")
    assert "sleep 4242" in ssh(one["addr"], "ps -e -o args=").stdout
    assert "sleep 4242" not in ssh(two["addr"], "ps -e -o args=").stdout
    ssh(one["addr"], f"sudo -n touch {MARKER} && sudo -n useradd --system qts-lab-test")
    assert ssh(one["addr"], f"test -e {MARKER} && id qts-lab-test", check=False).returncode == 0
    assert ssh(two["addr"], f"test -e {MARKER} || id qts-lab-test", check=False).returncode != 0
    assert not Path(MARKER).exists()
    assert "qts-lab-test:" not in Path("/etc/passwd").read_text()
    ssh(one["addr"], "logger -t qts-lab-test hello-from-one")
    assert "hello-from-one" in ssh(one["addr"], "sudo -n journalctl -t qts-lab-test -q").stdout
    assert "hello-from-one" not in ssh(two["addr"], "sudo -n journalctl -t qts-lab-test -q").stdout
    # The checkout (keys, the other hosts' layers) is not in the hosts.
    assert ssh(one["addr"], f"test -e {LAB_DIR / 'ssh'}", check=False).returncode != 0

    # Each host runs in a cgroup of its own: its CPU time is its own.
    seconds = json.loads(lab("cpu").stdout)
    assert set(seconds) == {"observer-01", "observer-02"} and all(s > 0 for s in seconds.values())

    # The written inventory works with Ansible: become, and systemd as the service manager.
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ansible"),
            "-i",
            str(LAB.inventory),
            "observers",
            "-m",
            "ansible.builtin.setup",
            "-a",
            "gather_subset=!all,!min,service_mgr,user",
        ],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ansible_service_mgr: systemd") == 2, result.stdout
    assert result.stdout.count("ansible_user_id: root") == 2, result.stdout


def test_down_leaves_no_process_cgroup_listener_or_key(lab_up):
    addrs = {host["addr"] for host in lab_up["hosts"]}
    processes = identities(LAB.processes())
    assert len(processes) >= 8, processes  # nspawn, systemd, journald, sshd... per host
    assert LAB.cgroups()
    assert sorted(listeners(addrs)) == ["127.0.0.231:2231", "127.0.0.232:2231"]

    result = lab("down")
    assert "down in" in result.stderr

    assert not LAB.processes()
    assert not processes & identities(live_pids()), "a process of a host survived"
    assert not LAB.cgroups(), "a cgroup of the lab was left"
    assert not listeners(addrs)
    assert not LAB_DIR.exists(), "keys or host layers left"
    assert lab("status", check=False).returncode == 1
    assert "nothing to remove" in lab("down").stderr


def test_up_after_a_crash_cleans_up_and_comes_back(lab_up):
    old_known_hosts = (LAB_DIR / "ssh" / "known_hosts").read_text()
    # The crash: every process of the lab killed at once; files and cgroups stay.
    for pid in LAB.processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not LAB.processes())
    assert (LAB_DIR / "state.json").exists()
    assert lab("status", check=False).returncode == 1

    result = lab("up", "--hosts", "2")
    assert "removed the previous lab" in result.stderr
    assert ssh(LAB.base_addr, "hostname").stdout.strip() == "observer-01"
    assert (LAB_DIR / "ssh" / "known_hosts").read_text() != old_known_hosts  # new host keys
    assert lab("status").returncode == 0


def test_a_host_without_systemd_and_a_debian_13_host(tmp_path):
    """`--init sshd`: nspawn's stub init and sshd, no systemd (the supervisor's path);
    `--distro 13`: Debian 13 with its own systemd."""
    lab("down")
    try:
        lab("up", "--hosts", "2", "--init", "sshd,systemd", "--distro", "12,13")
        one, two = state()["hosts"]
        assert (one["init"], one["distro"], two["init"], two["distro"]) == (
            "sshd",
            "12",
            "systemd",
            "13",
        )
        assert ssh(one["addr"], "cat /proc/1/comm").stdout.strip() != "systemd"
        assert ssh(one["addr"], "test -d /run/systemd/system", check=False).returncode != 0
        release = ssh(two["addr"], ". /etc/os-release && echo $VERSION_ID; cat /proc/1/comm").stdout
        assert release.split() == ["13", "systemd"]
        assert ssh(one["addr"], "sudo -n true; hostname").stdout.strip() == "observer-01"
    finally:
        lab("down")
        assert not LAB.processes()


def test_the_image_is_kept_and_reused():
    """`up` builds an image once per recipe (release, packages, fix-ups, CA certificates)."""
    result = lab("image", "--distro", "12")
    assert "building" not in result.stderr, "an image matching its recipe was rebuilt"
    recipe = json.loads((ROOT / "lab" / "images" / "debian-12" / "recipe.json").read_text())
    assert recipe["suite"] == "bookworm" and "openssh-server" in recipe["packages"]
    assert "getty@tty1.service" in recipe["masked"]
