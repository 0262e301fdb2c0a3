"""Run `make test`'s jobs, as many at once as this machine carries, and time each.

    phases.py --jobs tests/jobs.toml [--only NAME[,NAME...]] [--times DIR]

Each job of the jobs file declares what one of its workers costs (`cores`, `lab_hosts`), how
many workers it may use (`workers`, passed to it as QTS_TEST_WORKERS), the jobs it needs
first (`needs`) and its phase (for the table). A job starts once its needs have passed and
the cores and lab hosts it costs are free: on 2 cores the lab tests, Molecule and sanity's
installs never run together; a bigger machine runs more at once (QTS_TEST_CORES and
QTS_TEST_LAB_HOSTS override what is read off the machine). Jobs are started in the file's
order; one that cannot start yet keeps the room it needs, and the jobs after it start only in
what is left (a stream of small jobs never holds back a big one).

Every line a job prints is shown as it comes, prefixed with the job's name; at the end a
table gives each job's and each phase's wall time and exit status, then the slowest tests
and fixtures (`--times`: what the test suite's timing plugin wrote there). A failed job's
last lines are repeated above the table; a job whose needs failed is not run. SIGTERM,
SIGINT or SIGHUP stop every job (SIGTERM to its process group, SIGKILL after a grace), then
`tools/janitor.py` removes what this run started and left (lab hosts, Observers, monitors);
the janitor also runs first, for what an earlier killed run left. Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import janitor
import slowest
import tomllib

# Lines of a failed job shown again under the phase table: a CI log is often read from its
# end, and pytest's or Molecule's summary is in the job's last lines.
TAIL_LINES = 60
# How long a stopped job gets to tear down (a lab's hosts power off in a few seconds each).
STOP_GRACE_S = 60.0
# prctl(2): a signal for this process when its parent dies.
PR_SET_PDEATHSIG = 1
# What a lab host is reckoned to need of the machine when QTS_TEST_LAB_HOSTS is not given.
LAB_HOST_MEMORY_MB = 768


@dataclass
class Job:
    name: str
    phase: str
    command: list[str]
    cores: float = 1.0
    lab_hosts: int = 0
    workers: int = 1
    needs: list[str] = field(default_factory=list)
    status: int | None = None
    skipped: str = ""
    started: float | None = None
    seconds: float = 0.0
    granted: int = 0
    process: subprocess.Popen[str] | None = None
    cgroup: Path | None = None
    cpu_seconds: float | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))

    @property
    def done(self) -> bool:
        return self.status is not None or bool(self.skipped)

    @property
    def passed(self) -> bool:
        return self.status == 0


@dataclass
class Capacity:
    cores: int
    lab_hosts: int

    @classmethod
    def of_this_machine(cls) -> Capacity:
        cores = int(os.environ.get("QTS_TEST_CORES") or len(os.sched_getaffinity(0)))
        lab_hosts = os.environ.get("QTS_TEST_LAB_HOSTS")
        if lab_hosts is None:
            lab_hosts = str(max(1, _available_memory_mb() // LAB_HOST_MEMORY_MB))
        return cls(max(1, cores), max(1, int(lab_hosts)))


def _available_memory_mb() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return LAB_HOST_MEMORY_MB * 4


def load_jobs(path: Path, only: set[str]) -> list[Job]:
    data = tomllib.loads(path.read_text())
    jobs = []
    for entry in data.get("job", []):
        unknown = set(entry) - {
            "name",
            "phase",
            "command",
            "cores",
            "lab_hosts",
            "workers",
            "needs",
        }
        if unknown:
            raise SystemExit(f"{path}: job {entry.get('name')!r}: unknown keys {sorted(unknown)}")
        jobs.append(Job(**entry))
    names = {job.name for job in jobs}
    for job in jobs:
        missing = [need for need in job.needs if need not in names]
        if missing:
            raise SystemExit(f"{path}: job {job.name} needs unknown jobs {missing}")
    if only:
        unknown = only - names
        if unknown:
            raise SystemExit(f"unknown jobs {sorted(unknown)}; the jobs are {sorted(names)}")
        # What a chosen job needs runs too (the lab tests need the images).
        chosen = set(only)
        while True:
            more = {need for job in jobs if job.name in chosen for need in job.needs} - chosen
            if not more:
                break
            chosen |= more
        jobs = [job for job in jobs if job.name in chosen]
    return jobs


class Runner:
    def __init__(
        self, jobs: list[Job], capacity: Capacity, run_id: str, times: Path | None = None
    ) -> None:
        self.jobs = jobs
        self.times = times
        self.capacity = capacity
        self.run_id = run_id
        self.width = max(len(job.name) for job in jobs)
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        # Each job's lines are printed by its own thread: one line at a time, never mixed.
        self.output = threading.Lock()
        self.stopping: str = ""
        self.started = time.monotonic()

    # --- what runs when ---

    def _free(self) -> tuple[float, int]:
        running = [job for job in self.jobs if job.process is not None and job.status is None]
        cores = self.capacity.cores - sum(job.granted * self._per_worker(job) for job in running)
        hosts = self.capacity.lab_hosts - sum(job.granted * job.lab_hosts for job in running)
        return cores, hosts

    def _per_worker(self, job: Job) -> float:
        return min(job.cores, self.capacity.cores)

    def _workers_that_fit(self, job: Job, cores: float, hosts: int) -> int:
        """How many of the job's workers fit in what is free (a job bigger than the whole
        machine gets the whole machine, alone)."""
        per_core = self._per_worker(job)
        per_host = min(job.lab_hosts, self.capacity.lab_hosts)
        fit = job.workers
        if per_core:
            fit = min(fit, int(cores / per_core + 1e-9))
        if per_host:
            fit = min(fit, hosts // per_host)
        return max(0, fit)

    def _schedule(self) -> None:
        """Start what can start, in priority order; called with the lock held.

        A job that cannot start yet (its needs still running, or not enough free) keeps the
        room one worker of it needs: the jobs after it start only in what is left, so a
        stream of small jobs never holds back a big one (the lab tests behind the images)."""
        cores, hosts = self._free()
        for job in self.jobs:
            if job.done or job.process is not None:
                continue
            failed = [n for n in job.needs if self._job(n).done and not self._job(n).passed]
            if failed:
                job.skipped = f"not run: needs {', '.join(failed)}, which failed"
                self.say(job, job.skipped)
                continue
            fit = self._workers_that_fit(job, cores, hosts)
            if fit and all(self._job(n).passed for n in job.needs):
                self._start(job, fit)
            else:
                fit = 1  # what it waits for
            cores -= fit * self._per_worker(job)
            hosts -= fit * min(job.lab_hosts, self.capacity.lab_hosts)

    def _job(self, name: str) -> Job:
        return next(job for job in self.jobs if job.name == name)

    def _start(self, job: Job, workers: int) -> None:
        job.granted = workers
        job.started = time.monotonic()
        env = dict(os.environ, QTS_TEST_WORKERS=str(workers), QTS_TEST_JOB=job.name)
        env[janitor.RUN_VARIABLE] = self.run_id
        if self.times is not None:
            env["QTS_TEST_TIMES"] = str(self.times.absolute())
        cost = f"{workers * job.cores:g} core(s)" + (
            f", {workers * job.lab_hosts} lab host(s)" if job.lab_hosts else ""
        )
        self.print_line(
            f"== start {job.name} ({job.phase}) at +{job.started - self.started:.0f} s: "
            f"{workers} worker(s), {cost}"
        )
        job.cgroup = _make_cgroup(f"qts-test-{self.run_id}", job.name)
        procs = None if job.cgroup is None else job.cgroup / "cgroup.procs"

        def enter_cgroup() -> None:
            if procs is not None:
                procs.write_text(str(os.getpid()))

        # Its own session: a stop reaches the job and everything it started, at once.
        job.process = subprocess.Popen(
            job.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            env=env,
            start_new_session=True,
            preexec_fn=enter_cgroup,  # noqa: PLW1509 (the child joins its cgroup before exec)
        )
        threading.Thread(target=self._follow, args=(job,), daemon=True).start()

    def _follow(self, job: Job) -> None:
        assert job.process is not None and job.process.stdout is not None
        for line in job.process.stdout:
            job.tail.append(line)
            self.say(job, line.rstrip("\n"))
        status = job.process.wait()
        with self.lock:
            job.status = status
            job.seconds = time.monotonic() - (job.started or self.started)
            job.cpu_seconds = _cgroup_cpu_seconds(job.cgroup)
            if status != 0 and not self.stopping:
                self.say(job, f"FAILED (exit {status}) after {job.seconds:.0f} s")
            self.changed.notify_all()

    def say(self, job: Job, text: str) -> None:
        self.print_line(f"[{job.name:<{self.width}}] {text}")

    def print_line(self, text: str) -> None:
        with self.output:
            print(text, flush=True)

    # --- the run ---

    def run(self) -> None:
        with self.lock:
            while not all(job.done for job in self.jobs) and not self.stopping:
                self._schedule()
                if all(job.done for job in self.jobs):
                    break
                self.changed.wait(timeout=1.0)
        if self.stopping:
            self._stop_all()

    def stop(self, reason: str) -> None:
        with self.lock:
            if not self.stopping:
                self.stopping = reason
                self.changed.notify_all()

    def _stop_all(self) -> None:
        running = [job for job in self.jobs if job.process is not None and job.status is None]
        self.print_line(
            f"\n== {self.stopping}: stopping {', '.join(j.name for j in running) or 'nothing'}"
        )
        for job in running:
            _signal_group(job, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for job in running:
            assert job.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                job.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for job in running:
            _signal_group(job, signal.SIGKILL)  # what ignored SIGTERM, and the stragglers
        for job in self.jobs:
            if not job.done:
                job.skipped = f"not run: {self.stopping}"


def _cpuacct_root() -> Path | None:
    """This process's own CPU accounting cgroup (v1 cpuacct, else the v2 unified one)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _unused, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for mount in ("/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"):
                if Path(mount).is_dir():
                    return Path(mount) / path.lstrip("/")
        if controllers == "" and Path("/sys/fs/cgroup/cgroup.controllers").is_file():
            return Path("/sys/fs/cgroup") / path.lstrip("/")
    return None


def _make_cgroup(run: str, name: str) -> Path | None:
    """A CPU accounting cgroup for one job: what it, its daemons and its lab hosts (which the
    lab nests in its own cgroup) use. None where it cannot be made (not root): not measured."""
    root = _cpuacct_root()
    if root is None:
        return None
    try:
        folder = root / run / name
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder


def _cgroup_cpu_seconds(folder: Path | None) -> float | None:
    if folder is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        usage = folder / "cpuacct.usage"
        if usage.is_file():
            return int(usage.read_text()) / 1e9
        for line in (folder / "cpu.stat").read_text().splitlines():
            key, _unused, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    return None


def _signal_group(job: Job, signum: int) -> None:
    if job.process is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(job.process.pid, signum)


def print_table(runner: Runner) -> None:
    for job in runner.jobs:
        if job.status not in (None, 0):
            print(f"\n== last {len(job.tail)} lines of {job.name} (exit {job.status})")
            print("".join(job.tail), end="")
    print("\n== phase times")
    phases: dict[str, list[Job]] = {}
    for job in runner.jobs:
        phases.setdefault(job.phase, []).append(job)
    for phase, jobs in phases.items():
        ran = [job for job in jobs if job.started is not None]
        if ran:
            begin = min(job.started or 0.0 for job in ran)
            end = max((job.started or 0.0) + job.seconds for job in ran)
            print(f"  {phase:<12} {end - begin:7.1f} s  (from +{begin - runner.started:.0f} s)")
        else:
            print(f"  {phase:<12}       - s")
        for job in jobs:
            if job.skipped:
                state = job.skipped
            elif job.status == 0:
                state = "ok"
            else:
                state = f"FAILED (exit {job.status})"
            when = "" if job.started is None else f" from +{job.started - runner.started:.0f} s"
            cost = f"  {job.granted} x {job.cores:g} core(s)" if job.granted else ""
            cpu = "" if job.cpu_seconds is None else f", {job.cpu_seconds:.0f} CPU-s"
            print(f"    {job.name:<{runner.width}} {job.seconds:7.1f} s  {state}{when}{cost}{cpu}")
    print(f"  {'total':<12} {time.monotonic() - runner.started:7.1f} s (wall)")
    print(
        f"  machine: {runner.capacity.cores} core(s), {runner.capacity.lab_hosts} lab host(s) "
        "at once (QTS_TEST_CORES, QTS_TEST_LAB_HOSTS)"
    )


def _stop_with_parent() -> None:
    """SIGTERM when the parent dies: `kill <make's pid>` reaches make alone, which exits
    without passing it on, and would leave this run going on by itself."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent was gone already
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--jobs", type=Path, required=True, help="the jobs file (TOML)")
    parser.add_argument("--only", default="", help="these jobs (comma list) and what they need")
    parser.add_argument("--times", type=Path, help="folder of the test timings to summarise")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    jobs = load_jobs(args.jobs, {name for name in args.only.split(",") if name})
    if not jobs:
        parser.error("no job to run")
    run_id = janitor.new_run_id()
    left = janitor.clean_orphans()
    if left:
        print(f"== cleaned what an earlier, killed run left: {'; '.join(left)}", flush=True)
    if args.times:
        slowest.reset(args.times)
    runner = Runner(jobs, Capacity.of_this_machine(), run_id, args.times)
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: runner.stop(signal.Signals(number).name))
    _stop_with_parent()
    print(
        f"== {len(jobs)} job(s) on {runner.capacity.cores} core(s), "
        f"{runner.capacity.lab_hosts} lab host(s) at once",
        flush=True,
    )
    runner.run()
    if runner.stopping:
        cleaned = janitor.clean_run(run_id)
        print(f"== cleaned after the stop: {'; '.join(cleaned) or 'nothing was left'}", flush=True)
    janitor.remove_job_cgroups(lambda run: run == run_id)  # this run's, once empty
    print_table(runner)
    if args.times:
        slowest.report(args.times, count=20)
    if runner.stopping:
        return 128 + signal.Signals[runner.stopping].value
    return 0 if all(job.passed for job in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
