"""The hosts' lives: `down` (every host of a lab stopped, its cgroups, files and inventory
removed), `up` (the images, each host's layer seeded, its nspawn launched in its cgroups and
waited for, every host logged in to, the inventory written), and one host's `stop` and
`restart`."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import shlex
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import asdict
from pathlib import Path

from .cgroups import make_cgroups, remove_cgroups, remove_stray_cgroups
from .common import (
    DISTROS,
    GENERATED_MARK,
    HOST_PIP_CACHE,
    HOST_PYTHON,
    INITS,
    LAYERED_DIRS,
    OWNER_VARIABLE,
    PIP_CACHE,
    PROD_LIKE_GROUP_VARS,
    READY_TIMEOUT_S,
    SSH_TIMEOUT_S,
    SSHD_CONFIG,
    SSHD_ONLY,
    HostState,
    LabError,
    LabState,
    host_names,
    log,
    per_host,
    read_text,
    run,
    short_path,
    write_file,
    yaml_str,
)
from .config import Config, check_port_free, load_state, preflight, save_state
from .image import ensure_images, image_dir, image_user_ids
from .processes import is_host_process, lab_nspawns, machine_name, tcp_listeners, wait_gone

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
