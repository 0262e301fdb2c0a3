"""make bench-verdict: is the verdict trustworthy on a busy machine?

Runs `make smoke -e @examples/lab-levels.json` on the embedded default N times in a row (20
by default) while one core is kept busy by a process of its own (`nice -n 19`, a Python busy
loop), and prints how many runs were judged (report.json written with a verdict), how many
passed, and every reason a run did not pass. The goal: every run judged, and no FAIL that the
busy core alone explains. Figures, not assertions; not part of `make test`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lab-levels.json"
BUSY_LOOP = "while True: pass"


def keep_one_core_busy() -> subprocess.Popen:
    return subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", BUSY_LOOP])


def smoke(root: Path, artifacts: Path, log: Path) -> tuple[int, float]:
    args = f"-e @{EXAMPLE} -e qts_local_root={root} -e stress_artifacts_dir={artifacts}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    started = time.monotonic()
    with log.open("w") as out:
        status = subprocess.run(
            ["make", "--no-print-directory", "smoke", f"ARGS={args}"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    return status, time.monotonic() - started


def stop_supervisors(root: Path) -> None:
    for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError, OSError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-verdict-"))
    root, artifacts = work / "local", work / "artifacts"
    busy = keep_one_core_busy()
    judged = passed = 0
    reasons: Counter[str] = Counter()
    walls = []
    try:
        for number in range(1, args.runs + 1):
            status, wall = smoke(root, artifacts, work / f"run-{number:02d}.log")
            walls.append(wall)
            latest = artifacts / "latest" / "report.json"
            report = json.loads(latest.read_text()) if latest.exists() else {}
            # latest is removed after each run: a report found here is this run's.
            judged += report.get("verdict") in ("PASS", "FAIL")
            verdict = report.get("verdict", "NO REPORT")
            passed += verdict == "PASS" and status == 0
            for reason in report.get("reasons") or (
                [] if verdict == "PASS" else ["no report.json"]
            ):
                reasons[reason] += 1
            print(
                "run %2d/%d: %s (exit %d) in %.0f s" % (number, args.runs, verdict, status, wall),
                flush=True,
            )
            with contextlib.suppress(FileNotFoundError):
                (artifacts / "latest").unlink()
    finally:
        busy.kill()
        busy.wait()
        stop_supervisors(root)
    print()
    print("machine: %d cores, one kept busy by a niced busy loop" % (os.cpu_count() or 0))
    print("runs judged: %d/%d (goal %d/%d)" % (judged, args.runs, args.runs, args.runs))
    print("runs passed: %d/%d" % (passed, args.runs))
    print("wall per run: min %.0f s, max %.0f s" % (min(walls), max(walls)))
    if reasons:
        print("non-PASS reasons (count):")
        for reason, count in reasons.most_common():
            print("  %2d x %s" % (count, reason))
    else:
        print("non-PASS reasons: none")
    print("logs: %s" % work if args.keep else "logs removed (--keep keeps them)")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
