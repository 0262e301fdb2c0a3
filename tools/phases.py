"""Run `make test`'s phases in order, the jobs of a phase at once, and time each.

    phases.py --phase NAME JOB=COMMAND [JOB=COMMAND ...] [--phase NAME ...]

Every line a job prints is shown as it comes, prefixed with the job's name; at the end a
table gives each job's and each phase's wall time and exit status. The run stops after the
first phase with a failed job and exits 1; a failed job's last lines are repeated above the
table. Jobs of one phase must not share state: make
test runs the lint beside the image build, and the pytest suite beside the Molecule
scenarios (each has its own lab, addresses and files). Standard library only.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field

# Lines of a failed job shown again under the phase table: a CI log is often read from its
# end, and pytest's or Molecule's summary is in the job's last lines.
TAIL_LINES = 60


@dataclass
class Job:
    name: str
    command: str
    status: int | None = None
    seconds: float = 0.0
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))


def parse(argv: list[str]) -> list[tuple[str, list[Job]]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--phase", nargs="+", action="append", required=True, metavar="ARG")
    phases = []
    for name, *jobs in parser.parse_args(argv).phase:
        parsed = []
        for job in jobs:
            label, sep, command = job.partition("=")
            if not sep or not label or not command:
                parser.error(f"phase {name}: a job is NAME=COMMAND, got {job!r}")
            parsed.append(Job(label, command))
        if not parsed:
            parser.error(f"phase {name} has no job")
        phases.append((name, parsed))
    return phases


_print_lock = threading.Lock()


def run_job(job: Job, width: int) -> None:
    started = time.monotonic()
    # A command line of make's, split like a shell would (no shell: nothing is evaluated).
    proc = subprocess.Popen(
        shlex.split(job.command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        job.tail.append(line)
        with _print_lock:
            print(f"[{job.name:<{width}}] {line}", end="", flush=True)
    job.status = proc.wait()
    job.seconds = time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    phases = parse(sys.argv[1:] if argv is None else argv)
    width = max(len(job.name) for _unused, jobs in phases for job in jobs)
    done: list[tuple[str, float, list[Job]]] = []
    failed = False
    for name, jobs in phases:
        print(f"== phase {name}: {', '.join(job.name for job in jobs)}", flush=True)
        started = time.monotonic()
        threads = [threading.Thread(target=run_job, args=(job, width)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.append((name, time.monotonic() - started, jobs))
        if any(job.status != 0 for job in jobs):
            failed = True
            break
    for _unused, _unused, jobs in done:
        for job in jobs:
            if job.status != 0:
                print(f"\n== last {len(job.tail)} lines of {job.name} (exit {job.status})")
                print("".join(job.tail), end="")
    print("\n== phase times")
    total = 0.0
    for name, seconds, jobs in done:
        total += seconds
        print(f"  {name:<12} {seconds:7.1f} s")
        for job in jobs:
            state = "ok" if job.status == 0 else f"FAILED (exit {job.status})"
            print(f"    {job.name:<{width}} {job.seconds:7.1f} s  {state}")
    print(f"  {'total':<12} {total:7.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
