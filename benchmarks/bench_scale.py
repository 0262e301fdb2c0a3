"""make bench-scale: the smoke profile on 1 lab host and on N (10), and where the CPU goes.

Brings up its own lab (tools/lab.py, name `bench-scale`: systemd-nspawn hosts booting
systemd, each in a cgroup of its own), provisions every host once (not timed), then runs
`ansible-playbook playbooks/stress.yml -e stress_profile=smoke` limited to the first host,
then on all hosts, and takes the lab down. For each run it prints the wall time of the whole
run and of its levels phase (first level start to last level end), and the CPU seconds spent
by the controller (ansible-playbook and everything it started: workers, ssh) and by the
hosts (read from each host's cgroup), for the whole run and for the levels phase. The goal is
N hosts' levels phase within 1.3x one host's. Then, for each run, where that CPU goes by phase
(plan, provision: the roles when nothing has changed, levels, collect, report), per host: the
phases begin where benchmarks/callback_plugins/phase_marks.py marks them.

Lab hosts share this machine's CPU, so every monitor sees the whole machine: the levels run
with the CPU, memory and recovery limits raised (examples/lab-levels.json's limits).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.qts.observer.plugins.module_utils.profile import (  # noqa: E402
    profile_levels,
)

LAB_NAME = "bench-scale"
LAB = ["--name", LAB_NAME, "--base-addr", "127.0.0.101", "--port", "2299"]
LAB_INVENTORY = ROOT / "lab" / LAB_NAME / "inventory"
LAB_STATE = ROOT / "lab" / LAB_NAME / "state.json"
GOAL = 1.3
SAMPLE_S = 0.5
TICKS = os.sysconf("SC_CLK_TCK")


def load_lab_tool():
    spec = importlib.util.spec_from_file_location("lab_tool", ROOT / "tools" / "lab.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


LAB_TOOL = load_lab_tool()


def lab(command: str, *extra: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lab.py"), command, *LAB, *extra], check=True
    )


def process_tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its live descendants, each with its reaped children
    (a finished process's time is in its parent's cutime/cstime, never counted twice)."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = sum(int(x) for x in fields[11:15]) / TICKS  # utime stime cutime cstime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo.extend(children.get(pid, []))
    return total


def hosts_cpu() -> dict[str, float]:
    state = json.loads(LAB_STATE.read_text())
    return {h["name"]: LAB_TOOL.cpu_seconds(h["cgroups"]) or 0.0 for h in state["hosts"]}


class Sampler(threading.Thread):
    """(time, controller CPU, hosts' CPU) every SAMPLE_S while the playbook runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[tuple[float, float, dict[str, float]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.time(), process_tree_cpu(self.pid), hosts_cpu()))
            self.stop.wait(SAMPLE_S)

    def at(self, moment: float) -> tuple[float, dict[str, float]]:
        """The sample nearest before `moment`."""
        chosen = self.samples[0]
        for sample in self.samples:
            if sample[0] <= moment:
                chosen = sample
        return chosen[1], chosen[2]


PHASES = ("plan", "provision", "levels", "collect", "report")


def playbook(
    log_file: Path, name: str, *args: str, marks: Path | None = None
) -> tuple[float, int, Sampler, float]:
    """Runs a playbook on the lab: wall time, exit status, the CPU samples, controller total.
    Given marks, the phase_marks callback writes there when each phase began."""
    argv = [
        str(ROOT / ".venv" / "bin" / "ansible-playbook"),
        f"playbooks/{name}",
        "-i",
        str(LAB_INVENTORY),
        *args,
    ]
    started = time.monotonic()
    before = os.times()
    with open(log_file, "a") as log:
        log.write(f"\n==== {' '.join(argv)}\n")
        log.flush()
        # The slowest tasks (task_timer) go to the log: what the controller's time goes to.
        env = {
            **os.environ,
            "ANSIBLE_CALLBACKS_ENABLED": "qts.observer.stress_report,qts.observer.task_timer",
        }
        if marks is not None:
            env["ANSIBLE_CALLBACK_PLUGINS"] = str(ROOT / "benchmarks" / "callback_plugins")
            env["ANSIBLE_CALLBACKS_ENABLED"] += ",phase_marks"
            env["QTS_PHASE_MARKS"] = str(marks)
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        sampler = Sampler(proc.pid)
        sampler.start()
        status = proc.wait()
        sampler.stop.set()
        sampler.join()
    after = os.times()
    # Everything the playbook started and waited for, whatever the samples missed.
    controller = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return time.monotonic() - started, status, sampler, controller


def by_phase(sampler: Sampler, marks: Path, hosts: int) -> dict[str, dict[str, float]]:
    """Wall, controller and hosts' CPU of each phase (summed where a phase comes back), and
    per host: between the sample before a phase's mark and the one before the next's."""
    marked = json.loads(marks.read_text()) if marks.is_file() else []
    end = sampler.samples[-1][0]
    spans: dict[str, dict[str, float]] = {}
    for index, (phase, began) in enumerate(marked):
        ended = marked[index + 1][1] if index + 1 < len(marked) else end
        (c0, h0), (c1, h1) = sampler.at(began), sampler.at(ended)
        span = spans.setdefault(phase, {"wall": 0.0, "controller": 0.0, "hosts": 0.0})
        span["wall"] += ended - began
        span["controller"] += c1 - c0
        span["hosts"] += sum(h1.values()) - sum(h0.values())
    for span in spans.values():
        span["controller_per_host"] = span["controller"] / hosts
        span["hosts_per_host"] = span["hosts"] / hosts
    return spans


PHASE_COLUMNS = ("wall", "controller", "controller_per_host", "hosts", "hosts_per_host")


def phase_line(name: str, span: dict[str, float]) -> str:
    return (
        f"{name:<10} {span['wall']:>6.1f}s {span['controller']:>10.1f}s "
        f"{span['controller_per_host']:>8.2f}s {span['hosts']:>7.1f}s {span['hosts_per_host']:>8.2f}s"
    )


def print_phases(label: str, spans: dict[str, dict[str, float]]) -> None:
    print(f"\n{label}, by phase (CPU seconds; per host: over the hosts that ran)")
    print(
        f"{'phase':<10} {'wall':>7} {'controller':>11} {'per host':>9} {'hosts':>8} {'per host':>9}"
    )
    order = [p for p in PHASES if p in spans] + [p for p in spans if p not in PHASES]
    for phase in order:
        print(phase_line(phase, spans[phase]))
    total = {key: sum(spans[p][key] for p in order) for key in PHASE_COLUMNS}
    print(phase_line("total", total))


def levels_span(artifacts: Path) -> tuple[float, float, str]:
    report = json.loads((artifacts / "latest" / "report.json").read_text())
    levels = [level for host in report["hosts"].values() for level in host["levels"]]
    if not levels:
        return 0.0, 0.0, report["verdict"]
    return (
        min(lv["started_at"] for lv in levels),
        max(lv["finished_at"] for lv in levels),
        report["verdict"],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--hosts", type=int, default=10, help="hosts of the large run (default 10)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    log_file = work / "ansible.log"
    example = json.loads((ROOT / "examples" / "lab-levels.json").read_text())
    levels = profile_levels("smoke")
    for level in levels:
        level["thresholds"].update(max_cpu_pct=100, max_memory_pct=100)
    variables = work / "levels.json"
    variables.write_text(
        json.dumps({"stress_levels": levels, "stress_limits": example["stress_limits"]})
    )
    print(f"bench-scale: {args.hosts} lab hosts, smoke profile, log in {log_file}", flush=True)
    lab("up", "--hosts", str(args.hosts))
    rows = []
    try:
        setup_s, status, _unused, _unused = playbook(
            log_file, "provision.yml", f"--forks={max(10, args.hosts)}"
        )
        print(
            f"  provisioning {args.hosts} hosts (not timed below): {setup_s:.1f} s, exit {status}",
            flush=True,
        )
        for index, (label, extra) in enumerate(
            (("1 host", ["--limit", "observer-01,localhost"]), (f"{args.hosts} hosts", []))
        ):
            artifacts = work / f"run{index}"
            marks = work / f"phases{index}.json"
            wall, status, sampler, controller = playbook(
                log_file, "stress.yml", "-e", "stress_profile=smoke", "-e", f"@{variables}",
                "-e", f"stress_artifacts_dir={artifacts}", f"--forks={max(10, args.hosts)}", *extra,
                marks=marks,
            )  # fmt: skip
            first, last, verdict = levels_span(artifacts)
            (c0, h0), (c1, h1) = sampler.at(first), sampler.at(last)
            start_hosts, end_hosts = sampler.samples[0][2], sampler.samples[-1][2]
            hosts_total = sum(end_hosts.values()) - sum(start_hosts.values())
            ran = [n for n in end_hosts if end_hosts[n] - start_hosts.get(n, 0.0) > 1.0]
            rows.append(
                {
                    "label": label,
                    "wall": wall,
                    "levels": last - first,
                    "controller": controller,
                    "controller_levels": c1 - c0,
                    "hosts": hosts_total,
                    "hosts_levels": sum(h1.values()) - sum(h0.values()),
                    "per_host": hosts_total / max(len(ran), 1),
                    "controller_per_host": controller / max(len(ran), 1),
                    "verdict": verdict,
                    "status": status,
                    "phases": by_phase(sampler, marks, max(len(ran), 1)),
                }
            )
            print(
                f"  {label}: {wall:.1f} s wall, levels {last - first:.1f} s, {verdict}", flush=True
            )
    finally:
        lab("down")
    print()
    print(
        f"{'run':<9} {'wall':>7} {'levels':>7}  {'controller CPU':>15} {'in levels':>10}  {'hosts CPU':>10} {'in levels':>10}  {'ctrl/host':>9} {'verdict':>7}"
    )
    for r in rows:
        print(
            f"{r['label']:<9} {r['wall']:>6.1f}s {r['levels']:>6.1f}s  {r['controller']:>14.1f}s {r['controller_levels']:>9.1f}s"
            f"  {r['hosts']:>9.1f}s {r['hosts_levels']:>9.1f}s  {r['controller_per_host']:>8.1f}s {r['verdict']:>7}"
        )
    for r in rows:
        print_phases(r["label"], r["phases"])
    one, many = rows
    print(
        f"\n{args.hosts} hosts / 1 host: levels phase {many['levels'] / one['levels']:.2f}x "
        f"(goal <= {GOAL}x: {'met' if many['levels'] <= GOAL * one['levels'] else 'NOT met'}), "
        f"whole run {many['wall'] / one['wall']:.2f}x"
    )
    print(
        f"CPU per host: {many['per_host']:.1f} s on the host, {many['controller_per_host']:.1f} s on "
        f"the controller (this machine has {os.cpu_count()} cores for both)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
