"""make bench-soak: how often a healthy Observer's soak is falsely flagged by its trends.

BENCH_RUNS (20) short soaks (the soak profile, SOAK_S 300 s each by default, trend windows of
10 s after a 200 s warm-up: the reference Observer's validator fills its bounded memos in its
first 3 minutes at 25/s) of the reference Observer, unchanged, on this machine over the local
connection, BENCH_PARALLEL (4) at once (each its own install root: a busy machine, as CI is).
Nothing is wrong with that Observer, so every failed trend is a false flag. Printed: each
soak's trends (slope per hour and its 95 % interval), then how many soaks were flagged (goal:
at most 1 in 20) and which series flagged them. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A shared machine's CPU and memory: only the trends are counted here.
LIMITS = {"max_cpu_pct": 100, "max_memory_pct": 100, "fail_cpu_pct": 100, "fail_memory_pct": 100,
          "warn_cpu_pct": 100, "warn_memory_pct": 100}  # fmt: skip


def soak(slot: Path, duration_s: int, trends: dict) -> dict:
    """One soak in its own install root; its report (or why there is none)."""
    variables = {"stress_trends": trends, "stress_limits": LIMITS,
                 "stress_soak_duration_s": duration_s, "qts_local_root": str(slot / "root"),
                 "stress_artifacts_dir": str(slot / "artifacts")}  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "playbooks/stress.yml",
         "-i", "inventories/local", "-e", "stress_profile=soak", "-e", json.dumps(variables)],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        return json.loads(((slot / "artifacts" / "latest").resolve() / "report.json").read_text())
    except (OSError, ValueError):
        return {"error": done.stdout[-2000:] + done.stderr[-2000:]}
    finally:
        for pidfile in (slot / "root" / "run" / "qts_supervise").glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)


def trends_of(report: dict) -> list[dict]:
    host = (report.get("hosts") or {}).get("localhost") or {}
    return [t for level in host.get("levels") or [] for t in level.get("trends") or []]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--duration", type=int, default=300)
    parser.add_argument("--warmup", type=float, default=200.0)
    parser.add_argument("--window", type=float, default=10.0)
    options = parser.parse_args()
    trends = {"window_s": options.window, "warmup_s": options.warmup}
    reports: dict[int, dict] = {}
    lock = threading.Lock()
    queue = list(range(1, options.runs + 1))
    started = time.monotonic()

    def worker(work: Path) -> None:
        while True:
            with lock:
                if not queue:
                    return
                number = queue.pop(0)
            report = soak(work / ("soak%02d" % number), options.duration, trends)
            with lock:
                reports[number] = report
                print("soak %2d done after %4.0f s: %s" % (
                    number, time.monotonic() - started, report.get("verdict", "no report")), flush=True)  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="bench_soak_") as work:
        threads = [threading.Thread(target=worker, args=(Path(work),))
                   for _unused in range(options.parallel)]  # fmt: skip
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    flagged, unmeasured, by_series = 0, 0, {}
    print("\n%d soaks of %d s, %d at once, windows of %g s after %g s: the reference Observer"
          % (options.runs, options.duration, options.parallel, options.window, options.warmup))  # fmt: skip
    for number in sorted(reports):
        found = trends_of(reports[number])
        if not found:
            unmeasured += 1
            print("soak %2d: no trend: %s" % (number, reports[number].get("error", "")[-300:]))
            continue
        failed = [t for t in found if t["verdict"] == "FAIL"]
        flagged += bool(failed)
        for trend in failed:
            by_series[trend["series"]] = by_series.get(trend["series"], 0) + 1
        print("soak %2d %s" % (number, "FLAGGED" if failed else "clean"))
        for trend in found:
            print("    %-13s %-12s %s" % (trend["series"], trend["verdict"], trend["message"]))
    print("\nfalsely flagged: %d of %d soaks (goal: at most 1 in 20)%s; without trends: %d"
          % (flagged, len(reports) - unmeasured,
             " by " + ", ".join("%s %d" % item for item in sorted(by_series.items())) if by_series else "",
             unmeasured))  # fmt: skip
    print("wall time: %.0f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
