"""make bench-burst: bursts against the reference Observer on this machine, and the trading
day in miniature (examples/trading-day.yml).

For each burst size (100, 1,000, 10,000, 100,000 snapshots due within 10 ms), the real load
generator (module_utils/injector.py) sends one burst on a 1/s base into the real reference
Observer (files/observer, its shipped configuration, reading a named pipe), with the records
follower (module_utils/visibility.py) stamping each record as it appears. Printed per size:
the time from the burst's due time until its last snapshot was written into the pipe
(delivered), of it waiting on a full pipe (blocked), until its last record was visible
(visible), from its last send to its last record (drain), and what was lost. Then the
trading-day profile through `make smoke` on this machine (lenient machine limits, as
examples/lab-levels.json's), its per-level figures from report.json. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OBSERVER_DIR = ROOT / "files" / "observer"
sys.path.insert(0, str(ROOT / "build" / "collections"))

from ansible_collections.qts.observer.plugins.module_utils.injector import (  # noqa: E402
    Follow,
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (  # noqa: E402
    REFERENCE,
)

SIZES = (100, 1_000, 10_000, 100_000)
WINDOW_MS = 10


def one_burst(work: Path, size: int) -> dict:
    output, fifo, pidfile = work / ("out%d" % size), work / ("in%d.fifo" % size), work / "o.pid"
    os.mkfifo(fifo)
    pidfile.unlink(missing_ok=True)
    observer = subprocess.Popen(
        [sys.executable, "observer.py", "--config", str(OBSERVER_DIR / "config" / "stress_config.json"),
         "--output-dir", str(output), "--input", str(fifo), "--pidfile", str(pidfile),
         "--log-file", str(work / ("observer%d.log" % size))],
        cwd=OBSERVER_DIR, env=dict(os.environ, QTS_OBSERVER_STANDALONE="1"),
    )  # fmt: skip
    while not pidfile.exists():
        time.sleep(0.01)
    fd = open_pipe(str(fifo))
    tag = "B%d" % size
    shape = {"type": "burst", "size": size, "window_ms": WINDOW_MS, "period_s": 2.0,
             "first_at_s": 1.0}  # fmt: skip
    plan = LevelPlan(rate=1, duration_s=2.0, seed=1, level=1, run_tag=tag, shape=shape)
    prefix = "stress_%sL1_" % tag
    follow = Follow(str(output), REFERENCE["record_files"], prefix, 60.0, str(work / "seen"))
    ledger = work / ("ledger%d.jsonl" % size)
    outcome = inject(plan, fd, ProcessWatch(observer.pid), str(ledger), follow_spec=follow)
    os.close(fd)
    observer.terminate()
    observer.wait(timeout=60)
    written = set()
    pattern = re.compile(re.escape(prefix.encode()) + rb"\d+")
    for path in output.glob("observer*.jsonl"):
        with path.open("rb") as handle:
            written.update(m.group(0) for line in handle for m in [pattern.search(line)] if m)
    burst = outcome.delivery["bursts"][0]
    seen = outcome.freshness["bursts"][0] if outcome.freshness["bursts"] else {}
    return {
        "size": size,
        "delivered_ms": burst["delivered_ms"],
        "blocked_ms": burst["blocked_ms"],
        "visible_ms": seen.get("visible_ms"),
        "drain_ms": seen.get("drain_ms"),
        "sent": outcome.sent,
        "lost": outcome.sent - len(written),
    }


def trading_day(work: Path, levels: list[dict]) -> list[dict]:
    """The profile's levels with this machine's CPU and memory left unjudged (as
    examples/lab-levels.json does): what is shown is the load, the Observer's throughput and
    its records' visibility."""
    limits = json.loads((ROOT / "examples" / "lab-levels.json").read_text())["stress_limits"]
    for level in levels:
        level["thresholds"].update(max_cpu_pct=100, max_memory_pct=100)
    variables = work / "trading-day.json"
    variables.write_text(json.dumps({"stress_limits": limits, "stress_levels": levels}))
    artifacts = work / "artifacts"
    args = " ".join(["-e", f"@{variables}", "-e", f"stress_artifacts_dir={artifacts}"])
    subprocess.run(["make", "-s", "smoke", f"ARGS={args}"], cwd=ROOT, check=False,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    report = json.loads((artifacts / "latest" / "report.json").read_text())
    return report["hosts"]["localhost"]["levels"]


def _ms(value: object) -> str:
    return "%.1f" % value if isinstance(value, (int, float)) else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-trading-day", action="store_true", help="the bursts only")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qts-bench-burst-") as folder:
        work = Path(folder)
        print(
            "bursts due within %d ms into the reference Observer (flush every 500 ms):" % WINDOW_MS
        )
        print("%9s %13s %11s %11s %9s %8s" % ("size", "delivered ms", "blocked ms", "visible ms",
                                               "drain ms", "lost"))  # fmt: skip
        for size in SIZES:
            row = one_burst(work, size)
            print("%9d %13s %11s %11s %9s %8d" % (
                size, _ms(row["delivered_ms"]), _ms(row["blocked_ms"]), _ms(row["visible_ms"]),
                _ms(row["drain_ms"]), row["lost"]), flush=True)  # fmt: skip
        if options.no_trading_day:
            return
        print("\nexamples/trading-day.yml through make smoke (lenient machine limits):")
        shapes = yaml.safe_load((ROOT / "examples" / "trading-day.yml").read_text())
        planned_levels = shapes["stress_levels"]
        for level, planned in zip(trading_day(work, planned_levels), planned_levels):
            fresh = level.get("freshness") or {}
            delivery = level.get("delivery") or {}
            bursts = delivery.get("burst_delivered_ms") or {}
            print(
                "L%s %-8s %4g/s %-12s throughput %.1f/s, offered/delivered peak per 10 ms %s/%s, "
                "burst delivered max %s ms, visible p50/p99 %s/%s ms, drained %s ms, sent %s, "
                "lost %s"
                % (level["level"], (planned.get("shape") or {}).get("type", "constant"),
                   level["rate"], level["verdict"], level["throughput"],
                   (delivery.get("offered") or {}).get("10ms", {}).get("peak"),
                   (delivery.get("delivered") or {}).get("10ms", {}).get("peak"),
                   _ms(bursts.get("max")),
                   _ms((fresh.get("visibility_ms") or {}).get("p50")),
                   _ms((fresh.get("visibility_ms") or {}).get("p99")),
                   _ms(fresh.get("drain_ms")), level["sent"], level["lost"])
            )  # fmt: skip
            for item in level.get("not_measured") or []:
                print("    NOT MEASURED %s: %s" % (item["criterion"], item["reason"]))
            for breach in level.get("breaches") or []:
                print("    %s" % breach["message"])


if __name__ == "__main__":
    main()
