"""The command line: the commands that read a running lab (`status`, `cpu`) and `limit-cpu`,
the arguments of every command, and main(), which runs one under the lab's lock where it
changes the lab and turns a LabError into its message and exit status 1."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from .cgroups import cpu_seconds, limit_cpu
from .common import (
    DEFAULT_BASE_ADDR,
    DEFAULT_NAME,
    DEFAULT_PORT,
    DEFAULT_USER,
    DISTROS,
    LabError,
    log,
    per_host,
)
from .config import Config, load_state, locked, preflight
from .hosts import down, lab_host, restart, stop, up
from .image import ensure_images
from .processes import is_host_process, lab_nspawns, tcp_listeners

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


def parse_args(argv: list[str], description: str = "") -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
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


def main(argv: list[str] | None = None, description: str = "") -> int:
    """The tool's command line; ``description`` heads its --help (tools/lab.py's own)."""
    args = parse_args(sys.argv[1:] if argv is None else argv, description)
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
