"""make bench-capacity: the reference Observer's highest sustainable rate on this machine.

Runs `make capacity` (the capacity search, default settings, the spec's limits) against the
reference Observer installed under a temporary root on this machine, then prints from the
run's report.json: the highest sustainable rate, what limited it, the first failing rate and
how it failed, the headroom over the spec's 50/s, the search's time, and the curve.
Figures, not assertions (the verdict line of the run is printed too).
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

from ansible_collections.qts.observer.plugins.plugin_utils.report import (  # noqa: E402
    capacity_lines,
)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench_capacity_") as work:
        artifacts = Path(work) / "artifacts"
        args = f"-e qts_local_root={work}/root -e stress_artifacts_dir={artifacts}"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        started = time.monotonic()
        run = subprocess.run(
            ["make", "--no-print-directory", "capacity", "INVENTORY=inventories/local",
             f"ARGS={args}"],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        wall = time.monotonic() - started
        reports = sorted(artifacts.glob("*/report.json"))
        if not reports:
            print(run.stdout[-3000:] + run.stderr[-3000:])
            print("bench-capacity: the run left no report (exit %d)" % run.returncode)
            return 1
        report = json.loads(reports[-1].read_text())
        for name, entry in report["hosts"].items():
            result = (entry.get("capacity") or {}).get("result") or {}
            print("host %s: verdict %s" % (name, entry["verdict"]))
            print("  highest sustainable rate: %s/s" % result.get("highest_sustainable_rate"))
            print("  limited by: %s (%s)" % (result.get("limited_by"), result.get("summary")))
            failing = (result.get("first_failing_rate"), result.get("failed_how"))
            print("  first failing rate: %s/s, %s" % failing)
            for breach in result.get("failing_breaches") or []:
                print("    %s: %s" % (breach["criterion"], breach["message"]))
            headroom = (result.get("headroom_over_rate"), result.get("headroom"))
            print("  headroom over %s/s: %sx" % headroom)
            print("  steps: %s in %s s of search; whole run %.1f s" % (
                result.get("steps"), result.get("duration_s"), wall))  # fmt: skip
        print("\n".join(capacity_lines(report)))
        print("run verdict: %s (exit %d)" % (report["verdict"], run.returncode))
        return 0


if __name__ == "__main__":
    sys.exit(main())
