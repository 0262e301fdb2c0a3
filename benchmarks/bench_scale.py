"""make bench-scale: the smoke profile on 1 lab host and on N (10) lab hosts, wall times side by side.

Brings up its own lab (tools/lab.py, name `bench-scale`), provisions every host once (not
timed), then times `ansible-playbook playbooks/stress.yml -e stress_profile=smoke` limited to
the first host, then on all hosts, and takes the lab down. Also printed: the levels phase
(first level start to last level end) and how busy this machine's CPU was during each run.
The goal is N hosts within 1.3x the time of one: levels run at once on every host, not one
host after another.

Lab hosts share this machine's CPU, so every monitor sees the whole machine: the smoke
levels run with their CPU and memory limits raised to 100 % (throughput, latency and
integrity still judged). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.qts.observer.plugins.module_utils.profile import (  # noqa: E402
    profile_levels,
)

LAB = ["--name", "bench-scale", "--base-addr", "127.0.0.101", "--port", "2299"]
LAB_INVENTORY = ROOT / "lab" / "bench-scale" / "inventory"
GOAL = 1.3


def lab(command: str, *extra: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "lab.py"), command, *LAB, *extra], check=True
    )


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of this machine since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def playbook(log_file: Path, name: str, *args: str) -> tuple[float, int, float]:
    """Runs a playbook on the lab: wall time, exit status, machine CPU busy % (output: log)."""
    argv = [
        str(ROOT / ".venv" / "bin" / "ansible-playbook"),
        f"playbooks/{name}",
        "-i",
        str(LAB_INVENTORY),
        *args,
    ]
    busy0, total0 = cpu_times()
    started = time.monotonic()
    with open(log_file, "a") as log:
        log.write(f"\n==== {' '.join(argv)}\n")
        log.flush()
        status = subprocess.run(
            argv,
            check=False,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        ).returncode
    wall = time.monotonic() - started
    busy1, total1 = cpu_times()
    return wall, status, 100.0 * (busy1 - busy0) / max(total1 - total0, 1.0)


def levels_phase(artifacts: Path) -> tuple[float, str, int]:
    """Seconds from the first level's start to the last level's end, verdict, hosts reported."""
    report_file = artifacts / "latest" / "report.json"
    if not report_file.exists():
        return 0.0, "no report", 0
    report = json.loads(report_file.read_text())
    levels = [level for host in report["hosts"].values() for level in host["levels"]]
    span = max(lv["finished_at"] for lv in levels) - min(lv["started_at"] for lv in levels)
    return span, report["verdict"], len(report["hosts"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=10, help="hosts of the large run (default 10)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    log_file = work / "ansible.log"
    levels = profile_levels("smoke")
    for level in levels:
        level["thresholds"].update(max_cpu_pct=100, max_memory_pct=100)
    levels_file = work / "levels.json"
    levels_file.write_text(json.dumps({"stress_levels": levels}))
    print(f"bench-scale: {args.hosts} lab hosts, smoke profile, log in {log_file}", flush=True)
    lab("up", "--hosts", str(args.hosts))
    try:
        setup_s, status, _ = playbook(log_file, "provision.yml")
        print(
            f"  provisioning {args.hosts} hosts (not timed below): {setup_s:.1f} s, exit {status}",
            flush=True,
        )
        rows = []
        for index, (label, extra) in enumerate(
            (("1 host", ["--limit", "observer-01"]), (f"{args.hosts} hosts", []))
        ):
            artifacts = work / f"run{index}"
            wall, status, busy = playbook(
                log_file, "stress.yml", "-e", "stress_profile=smoke", "-e", f"@{levels_file}",
                "-e", f"stress_artifacts_dir={artifacts}", *extra,
            )  # fmt: skip
            span, verdict, _ = levels_phase(artifacts)
            rows.append((label, wall, span, busy, verdict, status))
            print(f"  {label}: {wall:.1f} s wall, levels {span:.1f} s, {verdict}", flush=True)
    finally:
        lab("down")
    print()
    print(f"{'run':<10} {'wall':>8} {'levels':>8} {'CPU busy':>9} {'verdict':>8} {'exit':>5}")
    for label, wall, span, busy, verdict, status in rows:
        print(f"{label:<10} {wall:>7.1f}s {span:>7.1f}s {busy:>8.0f}% {verdict:>8} {status:>5}")
    (_, one, one_levels, *_), (_, many, many_levels, *_) = rows
    ratio = many / one
    levels_ratio = many_levels / one_levels if one_levels else float("nan")
    print(
        f"\n{args.hosts} hosts / 1 host: wall {ratio:.2f}x (goal <= {GOAL}x: "
        f"{'met' if ratio <= GOAL else 'NOT met'}), levels phase {levels_ratio:.2f}x"
    )
    print("(CPU busy: the whole machine, which every lab host and the controller share)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
