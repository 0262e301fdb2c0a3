"""qts_launch: start an Observer the way its service needs it, then become it (exec).

Usage::

    qts_launch.py [--stdin-fifo PATH] [--output FILE] [--pidfile FILE] -- COMMAND [ARG...]

* ``--stdin-fifo PATH``: the command's standard input is the named pipe PATH, opened for
  reading *and* writing. Holding a write end open means the pipe never reports end of input
  when a producer closes it, so one Observer reads every level of a stress run, whoever
  writes. Opening it this way does not block while no producer is there.
* ``--output FILE``: the command's standard output and error are appended to FILE (created
  mode 0640): an Observer that logs to the console gets the log file the stress run reads.
* ``--pidfile FILE``: this process's PID is written to FILE (atomically) before the exec, and
  the exec keeps it: the PID is the service's own main process, known from the service
  manager that started it, not from anything the Observer writes.

Then ``exec`` of COMMAND: no process is left in between, signals (SIGTERM) reach the Observer
directly, and its exit status is the service's. Used by the observer role's systemd unit and
under the bundled supervisor alike. Standard library only; copied as is to the hosts.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    if "--" not in argv:
        raise SystemExit("qts_launch: usage: qts_launch.py [options] -- COMMAND [ARG...]")
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="qts_launch.py")
    parser.add_argument("--stdin-fifo", help="named pipe to read as standard input")
    parser.add_argument("--output", help="file receiving standard output and error (appended)")
    parser.add_argument("--pidfile", help="file receiving this process's PID")
    options = parser.parse_args(argv[:split])
    command = argv[split + 1 :]
    if not command:
        raise SystemExit("qts_launch: no command after --")
    return options, command


def attach_stdin(path: str) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise SystemExit(f"qts_launch: input pipe {path}: {exc.strerror}") from None
    if not stat.S_ISFIFO(mode):
        raise SystemExit(f"qts_launch: input pipe {path} is not a named pipe")
    fd = os.open(path, os.O_RDWR)
    os.dup2(fd, 0)
    if fd != 0:
        os.close(fd)


def attach_output(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if fd > 2:
        os.close(fd)


def write_pidfile(path: str) -> None:
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    options, command = parse(sys.argv[1:] if argv is None else argv)
    if options.stdin_fifo:
        attach_stdin(options.stdin_fifo)
    if options.output:
        attach_output(options.output)
    if options.pidfile:
        write_pidfile(options.pidfile)
    try:
        os.execvp(command[0], command)  # noqa: S606 - an argv list replaces us; no shell
    except OSError as exc:
        raise SystemExit(f"qts_launch: cannot run {command[0]}: {exc.strerror}") from None
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
