"""Compare two stress runs' report.json and junit.xml, times and host-specific figures aside.

    golden.py RUN_DIR RUN_DIR          # exit 0: the same; 1: what differs, one line each
    golden.py --show RUN_DIR           # the normalized form of one run, as JSON

A reshaped code path must give the same report as before: run a fixed-seed smoke run with the
code before and after the change (or twice with the same code, to see what this tool must
leave aside) and compare the two run folders. What is left aside is what a second run of the
same code changes anyway: clocks, run ids, paths, PIDs and the measured figures of the
machine (latency, CPU, memory, send lateness); everything else (levels, counts, verdicts,
reasons, criteria, thresholds, the junit testcases and their outcome) must be equal.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# Keys whose values change from one run of the same code to the next on one machine.
VOLATILE_KEYS = re.compile(
    r"^(run_id|started_at|finished_at|time"
    r"|timestamp|run_id_prefix|first_run_id|last_run_id|observer_pids?|pid_start|pid_end"
    r"|controller|observer_identity|collected|elapsed_s|duration_measured_s"
    r"|latency_ms|latency_spectrum_ms|e2e_latency_ms|send_lateness_ms|lateness_ms"
    r"|per_second|cpu_pct|memory_pct|observer_cpu_pct|observer_rss_mb|observer_cpu_samples"
    r"|achieved_rate|samples|observer_samples|memory_total_mb|reports|flushes"
    r"|buffer_depth_max|queue_depth_max|baseline|recovery|history|trend|regression"
    r"|measured|evidence|message|msg)$"
)
# Paths: each run has its own folder (and the code compared may sit in another checkout).
PATH_KEYS = frozenset({"artifacts_dir", "report_file", "junit_file", "path"})
# Figures inside text (evidence, messages, junit output): kept as text, numbers aside.
NUMBER = re.compile(r"\d+(\.\d+)?")
RUN_TAG = re.compile(r"\d{8}T\d{6}Z-?[0-9a-f]{4}")


def _text(value: str) -> str:
    return NUMBER.sub("#", RUN_TAG.sub("<run>", value))


def normalize(value: Any, key: str = "") -> Any:
    """The run's data with what varies between two runs of the same code made uniform."""
    if key in PATH_KEYS:
        return "<path>"
    if VOLATILE_KEYS.match(key):
        if isinstance(value, str):
            return _text(value)
        if isinstance(value, (dict, list)):
            return "<%s>" % type(value).__name__
        return "<%s>" % ("none" if value is None else "number")
    if isinstance(value, dict):
        return {k: normalize(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [normalize(v, key) for v in value]
    if isinstance(value, str):
        return RUN_TAG.sub("<run>", value)
    return value


def junit(path: Path) -> list[dict]:
    """Each testcase: its suite, name, class and outcome (failure/error/skipped and text)."""
    cases = []
    # Our own runs' junit.xml, written by stress_verdict: not untrusted input.
    for suite in ET.parse(path).getroot().iter("testsuite"):  # noqa: S314
        for case in suite.iter("testcase"):
            outcome = [
                {"tag": child.tag, "message": _text(child.get("message") or "")}
                for child in case
                if child.tag in ("failure", "error", "skipped")
            ]
            cases.append(
                {
                    "suite": suite.get("name"),
                    "name": _text(case.get("name") or ""),
                    "classname": case.get("classname"),
                    "outcome": outcome,
                }
            )
    return cases


def load(run_dir: Path) -> dict:
    report = json.loads((run_dir / "report.json").read_text())
    return {"report.json": normalize(report), "junit.xml": junit(run_dir / "junit.xml")}


def differences(left: Any, right: Any, where: str = "") -> list[str]:
    if isinstance(left, dict) and isinstance(right, dict):
        found = []
        for key in sorted(set(left) | set(right)):
            if key not in left or key not in right:
                found.append(
                    "%s.%s only in %s" % (where, key, "the first" if key in left else "the second")
                )
            else:
                found += differences(left[key], right[key], "%s.%s" % (where, key))
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = []
        for index, (a, b) in enumerate(zip(left, right)):
            found += differences(a, b, "%s[%d]" % (where, index))
        return found
    return [] if left == right else ["%s: %r != %r" % (where, left, right)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (report.json, junit.xml)")
    parser.add_argument("--show", action="store_true", help="print the normalized form of one run")
    args = parser.parse_args()
    for run in args.runs:
        if not (run / "report.json").is_file() or not (run / "junit.xml").is_file():
            parser.error("%s holds no report.json and junit.xml" % run)
    if args.show:
        json.dump(load(args.runs[0]), sys.stdout, indent=1)
        print()
        return 0
    if len(args.runs) != 2:
        parser.error("give two run folders to compare")
    found = differences(load(args.runs[0]), load(args.runs[1]))
    for line in found:
        print(line)
    print("%d difference(s) between %s and %s" % (len(found), *args.runs))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
