"""The SSH lab (tools/lab.py) for real: namespaces, sshd, keys, no mocks.

The tests use their own lab (name, addresses, port), never the user's `make lab-up` lab, and
every test tears its lab down, pass or fail. Needs root and openssh-server, openssh-client, sudo.
"""

from __future__ import annotations

import contextlib
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

LAB = Lab(name="pytest", base_addr="127.0.0.231", port=2231)
LAB_DIR = LAB.dir
MARKER = "/opt/qts-lab-test-marker"

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

lab = LAB.run
state = LAB.state
ssh = LAB.ssh
lab_processes = LAB.processes


def namespace(pid: int, kind: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/{kind}")
    except OSError:
        return None


def pids_in(namespaces: set[str], kind: str) -> list[int]:
    return [pid for pid in live_pids() if namespace(pid, kind) in namespaces]


def identities(pids: list[int]) -> set[tuple[int, str]]:
    """(pid, start time) of each live pid: a process, not a reused pid or namespace number."""
    found = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        found.add((pid, stat.rsplit(")", 1)[1].split()[19]))
    return found


def listeners(addrs: set[str]) -> list[str]:
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, st = line.split()[1], line.split()[3]
        hex_addr, hex_port = local.split(":")
        addr = socket.inet_ntoa(bytes.fromhex(hex_addr)[::-1])
        if st == "0A" and addr in addrs:
            found.append(f"{addr}:{int(hex_port, 16)}")
    return found


def wait_until(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def lab_up() -> Iterator[dict]:
    """A 2-host test lab; always torn down, whatever the test did."""
    lab("down")  # a crashed earlier run
    try:
        lab("up", "--hosts", "2")
        yield state()
    finally:
        lab("down")
        assert not lab_processes()


def test_hosts_are_separate_machines_over_ssh(lab_up):
    one, two = lab_up["hosts"]
    assert [one["addr"], two["addr"]] == ["127.0.0.231", "127.0.0.232"]
    assert ssh(one["addr"], "hostname").stdout.strip() == one["name"] == "observer-01"
    assert ssh(two["addr"], "hostname").stdout.strip() == two["name"] == "observer-02"

    # Own process tables: PID 1 is the host's init, only a handful of processes, and a
    # process started in one host is not in the other's table.
    assert namespace(one["init_pid"], "pid") != namespace(two["init_pid"], "pid")
    ssh(one["addr"], "nohup sleep 4242 >/dev/null 2>&1 &")
    table_one = ssh(one["addr"], "cat /proc/1/comm; ps -e -o args=").stdout
    table_two = ssh(two["addr"], "cat /proc/1/comm; ps -e -o args=").stdout
    assert table_one.startswith("lab-init\n") and table_two.startswith("lab-init\n")
    assert "sleep 4242" in table_one and "sleep 4242" not in table_two
    assert len(table_two.splitlines()) < 15, table_two

    # Own files and users, as root through sudo (become): invisible elsewhere.
    ssh(one["addr"], f"sudo -n touch {MARKER} && sudo -n useradd --system qts-lab-test")
    assert ssh(one["addr"], f"test -e {MARKER} && id qts-lab-test", check=False).returncode == 0
    assert ssh(two["addr"], f"test -e {MARKER} || id qts-lab-test", check=False).returncode != 0
    assert not Path(MARKER).exists()
    assert "qts-lab-test:" not in Path("/etc/passwd").read_text()
    # The checkout (keys, the other hosts' files) is hidden from the hosts.
    assert ssh(one["addr"], f"test -e {LAB_DIR / 'ssh'}", check=False).returncode != 0

    # The written inventory works with Ansible: become, the prod-like group_vars.
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ansible"),
            "-i",
            str(LAB.inventory),
            "observers",
            "-m",
            "ansible.builtin.command",
            "-a",
            "id -un",
        ],
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("CHANGED | rc=0 >>\nroot") == 2, result.stdout


def test_down_leaves_no_process_mount_listener_or_key(lab_up):
    inits = [host["init_pid"] for host in lab_up["hosts"]]
    pid_namespaces = {namespace(pid, "pid") for pid in inits}
    mount_namespaces = {namespace(pid, "mnt") for pid in inits}
    addrs = {host["addr"] for host in lab_up["hosts"]}
    in_hosts = pids_in(pid_namespaces, "pid")
    assert len(in_hosts) >= 4 and None not in pid_namespaces | mount_namespaces
    processes = identities(in_hosts + lab_processes())
    assert sorted(listeners(addrs)) == ["127.0.0.231:2231", "127.0.0.232:2231"]

    result = lab("down")
    assert "down in" in result.stderr

    assert not lab_processes()
    assert not processes & identities(live_pids()), "a process of a host survived"
    assert not pids_in(pid_namespaces, "pid"), "a host's PID namespace survived"
    assert not pids_in(mount_namespaces, "mnt"), "a host's mount namespace survived"
    assert str(LAB_DIR) not in Path("/proc/self/mountinfo").read_text()
    assert not listeners(addrs)
    assert not LAB_DIR.exists(), "keys or host files left"
    assert lab("status", check=False).returncode == 1
    assert "nothing to remove" in lab("down").stderr


def test_up_after_a_crash_cleans_up_and_comes_back(lab_up):
    hosts = lab_up["hosts"]
    old_namespaces = {namespace(host["init_pid"], "pid") for host in hosts}
    old_known_hosts = (LAB_DIR / "ssh" / "known_hosts").read_text()
    # The crash: every process of the lab (sshd, inits, unshares) killed at once; files stay.
    victims = pids_in(old_namespaces, "pid") + [host["unshare_pid"] for host in hosts]
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):  # gone with its namespace's init
            os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not lab_processes() and not pids_in(old_namespaces, "pid"))
    assert (LAB_DIR / "state.json").exists()
    assert lab("status", check=False).returncode == 1

    result = lab("up", "--hosts", "2")
    assert "removed the previous lab" in result.stderr
    assert ssh(LAB.base_addr, "hostname").stdout.strip() == "observer-01"
    assert (LAB_DIR / "ssh" / "known_hosts").read_text() != old_known_hosts  # new host keys
    assert lab("status").returncode == 0


def test_up_replaces_a_live_lab_whose_state_is_lost(lab_up):
    old = lab_up["hosts"]
    old_namespaces = {namespace(host["init_pid"], "pid") for host in old}
    old_processes = identities(pids_in(old_namespaces, "pid") + lab_processes())
    assert len(old_processes) >= 6  # an unshare, an init and an sshd per host
    ssh(old[0]["addr"], f"sudo -n touch {MARKER}")
    (LAB_DIR / "state.json").unlink()  # the controller crashed: hosts alive, state gone

    lab("up", "--hosts", "2")
    # (Namespace numbers are reused once free: compare processes, not namespaces.)
    assert not old_processes & identities(live_pids()), "the old hosts survived"
    assert len(lab_processes()) == 4  # two hosts: an unshare and an init each
    assert ssh(old[0]["addr"], f"test -e {MARKER}", check=False).returncode != 0
