"""make bench-load: the load generator's pacing, beside the original runbook's generator,
and its delivery at 100,000 snapshots/s (the capacity search needs it: the reference Observer
sustains that rate).

For each rate, both generators send the same number of snapshots to a separate reader
process that timestamps every line as it arrives. Printed per rate and generator: the
achieved rate (arrivals per second between the first and the last line) and its error
against the target, and the lateness of arrivals against the schedule t0 + n / rate
(p50, p99, max). Figures, not assertions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.qts.observer.plugins.module_utils.injector import (  # noqa: E402
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.stats import summary_ms  # noqa: E402

READER = ROOT / "benchmarks" / "pipe_reader.py"
RUNBOOK = ROOT / "benchmarks" / "runbook_generator.py"
CASES = ((50, 10.0), (1000, 5.0), (10000, 5.0), (100000, 5.0))
# The runbook's sleep-paced generator is left out above this rate: one sleep per line cannot
# reach it, and waiting minutes to show that adds nothing.
RUNBOOK_MAX_RATE = 10000


def figures(rate: float, t0: float, arrivals: list[float]) -> dict:
    count = len(arrivals)
    achieved = (count - 1) / (arrivals[-1] - arrivals[0]) if count > 1 else 0.0
    lateness = [(arrival - (t0 + index / rate)) * 1000.0 for index, arrival in enumerate(arrivals)]
    return {
        "count": count,
        "achieved": achieved,
        "error_pct": 100.0 * (achieved - rate) / rate,
        "lateness_ms": summary_ms(lateness),
    }


def run_ours(work: Path, rate: float, seconds: float) -> dict:
    fifo = work / f"ours_{rate:g}.fifo"
    os.mkfifo(fifo)
    out = work / f"ours_{rate:g}.json"
    reader = subprocess.Popen([sys.executable, str(READER), str(out), str(fifo)])
    time.sleep(0.3)
    fd = open_pipe(str(fifo))
    start_at = time.time() + 0.2
    plan = LevelPlan(rate=rate, duration_s=seconds, seed=1, level=1, start_at=start_at)
    inject(plan, fd, ProcessWatch(reader.pid), str(work / "ledger.jsonl"))
    os.close(fd)
    reader.wait(timeout=30)
    return figures(rate, start_at, json.loads(out.read_text()))


def run_runbook(work: Path, rate: float, seconds: float) -> dict:
    out = work / f"runbook_{rate:g}.json"
    count = int(rate * seconds)
    generator = subprocess.Popen(
        [sys.executable, str(RUNBOOK), str(rate), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
    )
    reader = subprocess.Popen([sys.executable, str(READER), str(out)], stdin=generator.stdout)
    generator.stdout.close()
    t0 = json.loads(generator.stderr.readline())["t0"]
    generator.wait()
    reader.wait(timeout=60)
    return figures(rate, t0, json.loads(out.read_text()))


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        work = Path(tmp)
        for rate, seconds in CASES:
            print(f"{rate}/s for {seconds:g} s ...", flush=True)
            rows.append((rate, "snapshot_load", run_ours(work, rate, seconds)))
            if rate <= RUNBOOK_MAX_RATE:
                rows.append(
                    (rate, "runbook (sleep, block-buffered)", run_runbook(work, rate, seconds))
                )
    print()
    print(
        f"{'rate/s':>7} {'generator':33} {'lines':>7} {'achieved/s':>11} {'error %':>8} {'late p50 ms':>12} {'p99 ms':>9} {'max ms':>9}"
    )
    for rate, name, f in rows:
        late = f["lateness_ms"]
        print(
            f"{rate:>7} {name:33} {f['count']:>7} {f['achieved']:>11.2f} {f['error_pct']:>8.2f} {late['p50']:>12.2f} {late['p99']:>9.2f} {late['max']:>9.2f}"
        )
    print(
        "\ntarget: achieved rate within 0.5 % of the target (1 % at 100000/s, the rate the "
        "capacity search needs), p99 lateness as low as possible"
    )


if __name__ == "__main__":
    main()
