"""make bench-observer: the real Observer process against the issue's speed targets.

Prints, from one run on this machine:
  - throughput of the real process fed by a pipe (``cat file | python observer.py``), with the
    shipped stress configuration, beside the naive loop (json.loads + jsonschema + json.dumps);
  - receipt-to-dispatch latency percentiles at that load and at 50 snapshots/s (target:
    p99 within hybrid_trigger.min_interval_ms + 5 ms);
  - peak RSS of the Observer while its 50,000-record buffer fills (target: under 150 MB).
Figures, not assertions: the tests check behaviour, this measures speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
OBSERVER_DIR = ROOT / "files" / "observer"
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))

from snapshots import SnapshotGenerator  # noqa: E402

CONFIG = OBSERVER_DIR / "config" / "stress_config.json"


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]

    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1]}


def write_snapshots(path: Path, count: int) -> None:
    generator = SnapshotGenerator(seed=2026)
    start = time.time()
    with path.open("wb") as handle:
        batch: list[bytes] = []
        for index in range(count):
            batch.append(generator.line(start + index * 1e-5))
            if len(batch) == 10_000:
                handle.write(b"".join(batch))
                batch.clear()
        handle.write(b"".join(batch))


def observer_argv(output: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "observer.py",
        "--config",
        str(CONFIG),
        "--output-dir",
        str(output),
        *extra,
    ]


def read_records(output: Path) -> list[dict]:
    records = []
    for path in sorted(output.glob("observer-*.jsonl")):
        with path.open("rb") as handle:
            records.extend(orjson.loads(line) for line in handle)
    return records


def run_throughput(data: Path, work: Path, count: int) -> dict:
    output = work / "throughput"
    log = work / "throughput.log"
    with data.open("rb") as source:
        feeder = subprocess.Popen(["cat"], stdin=source, stdout=subprocess.PIPE)
        observer = subprocess.Popen(
            observer_argv(output, ["--log-file", str(log)]), cwd=OBSERVER_DIR, stdin=feeder.stdout
        )
        feeder.stdout.close()
        _pid, status, usage = os.wait4(observer.pid, 0)
        feeder.wait()
    observer.returncode = os.waitstatus_to_exitcode(status)
    records = read_records(output)
    metrics = [orjson.loads(line) for line in (output / "metrics.jsonl").read_bytes().splitlines()]
    window = epoch(records[-1]["dispatched_at"]) - epoch(records[0]["received_at"])
    return {
        "exit": observer.returncode,
        "written": len(records),
        "per_s": count / window,
        "latency_ms": percentiles([r["processing_latency_ms"] for r in records]),
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "buffer_depth_max": max(m["buffer_depth_max"] for m in metrics),
    }


def run_naive(data: Path, work: Path, count: int) -> dict:
    subset = work / "naive_input.jsonl"
    with data.open("rb") as source, subset.open("wb") as target:
        for _unused in range(count):
            target.write(source.readline())
    with subset.open("rb") as source:
        feeder = subprocess.Popen(["cat"], stdin=source, stdout=subprocess.PIPE)
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "naive_observer.py"),
                str(work / "naive.jsonl"),
            ],
            stdin=feeder.stdout,
            capture_output=True,
            check=True,
        )
        feeder.wait()
    return json.loads(result.stdout)


def run_paced(work: Path, rate: float, seconds: float) -> dict:
    output = work / f"paced_{rate:g}"
    fifo = work / f"paced_{rate:g}.fifo"
    os.mkfifo(fifo)
    pidfile = work / "paced.pid"
    observer = subprocess.Popen(
        observer_argv(
            output,
            [
                "--input",
                str(fifo),
                "--pidfile",
                str(pidfile),
                "--log-file",
                str(work / "paced.log"),
            ],
        ),
        cwd=OBSERVER_DIR,
    )
    while not pidfile.exists():
        time.sleep(0.01)
    generator = SnapshotGenerator(seed=50, prefix="paced")
    total = int(rate * seconds)
    fd = os.open(fifo, os.O_WRONLY)
    start = time.monotonic() + 0.1
    for index in range(total):
        due = start + index / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        os.write(fd, generator.line(time.time()))
    os.close(fd)
    time.sleep(0.5)
    observer.terminate()
    observer.wait(timeout=10)
    records = read_records(output)
    return {
        "written": len(records),
        "sent": total,
        "latency_ms": percentiles([r["processing_latency_ms"] for r in records]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--snapshots", type=int, default=1_000_000)
    parser.add_argument("--naive-snapshots", type=int, default=20_000)
    parser.add_argument("--paced-seconds", type=float, default=20.0)
    args = parser.parse_args()
    config = json.loads(CONFIG.read_text())
    with tempfile.TemporaryDirectory(prefix="bench-observer-") as tmp:
        work = Path(tmp)
        data = work / "snapshots.jsonl"
        print(f"generating {args.snapshots:,} snapshots ...", flush=True)
        write_snapshots(data, args.snapshots)
        print("observer throughput run (cat file | python observer.py) ...", flush=True)
        fast = run_throughput(data, work, args.snapshots)
        print(f"naive loop on {args.naive_snapshots:,} snapshots ...", flush=True)
        naive = run_naive(data, work, args.naive_snapshots)
        print(f"paced run at 50 snapshots/s for {args.paced_seconds:g} s ...", flush=True)
        paced = run_paced(work, 50.0, args.paced_seconds)
    target_p99 = config["hybrid_trigger"]["min_interval_ms"] + 5.0
    lat = fast["latency_ms"]
    print()
    print(f"{'figure':44} {'measured':>14} {'target':>14}")
    rows = [
        ("snapshots through the real process", f"{fast['written']:,}", f"{args.snapshots:,}"),
        ("observer exit status", str(fast["exit"]), "0"),
        ("observer throughput (snapshots/s)", f"{fast['per_s']:,.0f}", ">= 100,000"),
        ("naive loop throughput (snapshots/s)", f"{naive['per_s']:,.0f}", ""),
        ("ratio observer / naive", f"{fast['per_s'] / naive['per_s']:.1f}x", ">= 10x"),
        ("latency at full load p50/p99 (ms)", f"{lat['p50']:.1f}/{lat['p99']:.1f}", ""),
        ("latency at full load max (ms)", f"{lat['max']:.1f}", ""),
        ("peak RSS (MB)", f"{fast['peak_rss_mb']:.1f}", "< 150"),
        (
            "buffer depth reached (records)",
            f"{fast['buffer_depth_max']:,}",
            f"{config['buffer']['max_buffer_size']:,}",
        ),
        ("50/s: written / sent", f"{paced['written']}/{paced['sent']}", ""),
        ("50/s: latency p50 (ms)", f"{paced['latency_ms']['p50']:.2f}", ""),
        ("50/s: latency p99 (ms)", f"{paced['latency_ms']['p99']:.2f}", f"<= {target_p99:g}"),
        ("50/s: latency max (ms)", f"{paced['latency_ms']['max']:.2f}", ""),
    ]
    for name, measured, target in rows:
        print(f"{name:44} {measured:>14} {target:>14}")


if __name__ == "__main__":
    main()
