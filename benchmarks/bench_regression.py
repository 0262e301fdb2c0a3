"""make bench-regression: the regression test's false alarm rate on one configuration.

BENCH_RUNS (20) short runs of `make smoke` (examples/lab-levels.json: two levels of 5 s) of
the reference Observer, unchanged, into one artifacts folder; each is compared with the one
before (stress_baseline: previous). Nothing changed between them, so every regression found
is a false alarm. Printed: each run's checks and regressions, then the false alarm rate (runs
with at least one regression / runs compared) and the checks' (goal: at most 1 run in 20).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAB_LEVELS = ROOT / "examples" / "lab-levels.json"


def smoke(root: Path, artifacts: Path) -> dict:
    args = f"-e qts_local_root={root} -e stress_artifacts_dir={artifacts} -e @{LAB_LEVELS}"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    subprocess.run(
        ["make", "--no-print-directory", "smoke", "INVENTORY=inventories/local", f"ARGS={args}"],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False,
    )  # fmt: skip
    return json.loads(((artifacts / "latest").resolve() / "report.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    compared = alarmed = checks = regressions = 0
    with tempfile.TemporaryDirectory(prefix="bench_regression_") as work:
        root, artifacts = Path(work) / "root", Path(work) / "artifacts"
        try:
            for number in range(1, runs + 1):
                started = time.monotonic()
                report = smoke(root, artifacts)
                found = report["hosts"]["localhost"].get("regression") or {}
                made = [c for c in found.get("checks") or [] if c["verdict"] != "NOT MEASURED"]
                failed = [c for c in made if c["verdict"] == "FAIL"]
                if found.get("baseline"):
                    compared += 1
                    alarmed += bool(failed)
                    checks += len(made)
                    regressions += len(failed)
                print("run %2d %s %-4s %.0f s: %s" % (
                    number, report["run_id"], report["verdict"], time.monotonic() - started,
                    found.get("summary")), flush=True)  # fmt: skip
        finally:
            for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
                with contextlib.suppress(ValueError, ProcessLookupError):
                    os.kill(int(pidfile.read_text()), signal.SIGTERM)
    if not compared:
        print("no run was compared with a baseline")
        return 1
    print("false alarms: %d of %d runs compared (%.1f %%; goal at most 1 in 20), "
          "%d of %d checks (%.2f %%)" % (alarmed, compared, 100.0 * alarmed / compared,
                                         regressions, checks, 100.0 * regressions / max(checks, 1)))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
