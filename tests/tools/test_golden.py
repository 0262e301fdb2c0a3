"""tools/golden.py: two runs of the same code compare equal, times and machine figures aside;
a count, a verdict, a reason or a junit outcome that moved is named."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import golden
import pytest

pytestmark = pytest.mark.unit

REPORT = {
    "run_id": "20261205T110612Z-7e69",
    "started_at": "2026-12-05T11:06:12Z",
    "artifacts_dir": "/work/a/artifacts/20261205T110612Z-7e69",
    "verdict": "PASS",
    "reasons": [],
    "hosts": {
        "observer-01": {
            "verdict": "PASS",
            "levels": [
                {
                    "level": 1,
                    "rate": 5.0,
                    "sent": 25,
                    "written": 25,
                    "lost": 0,
                    "latency_ms": {"p99": 0.152},
                    "cpu_pct": {"sustained": 4.78, "peak": 13.9},
                    "started_at": 1796468152.459641,
                    "run_id_prefix": "stress_20261205T110612Z7e69L1_",
                    "verdict": "PASS",
                    "breaches": [],
                }
            ],
            "criteria": [
                {"name": "integrity", "verdict": "PASS", "evidence": "25 sent, 25 written once"}
            ],
        }
    },
}
JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="observer-01" tests="1" time="{time}">
<testcase name="L1 throughput" classname="observer-01.L1" time="{time}"/>
</testsuite></testsuites>
"""


def write_run(folder: Path, report: dict, time: str = "1.5", junit: str = JUNIT) -> Path:
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report))
    (folder / "junit.xml").write_text(junit.format(time=time))
    return folder


def test_a_second_run_of_the_same_code_is_the_same(tmp_path):
    again = copy.deepcopy(REPORT)
    again.update(run_id="20261205T120000Z-0a1b", started_at="2026-12-05T12:00:00Z",
                 artifacts_dir="/tmp/b/20261205T120000Z-0a1b")  # fmt: skip
    level = again["hosts"]["observer-01"]["levels"][0]
    level.update(latency_ms={"p99": 0.2}, cpu_pct={"sustained": 6.0, "peak": 9.0},
                 started_at=1796470000.0, run_id_prefix="stress_20261205T120000Z0a1bL1_")  # fmt: skip
    first = golden.load(write_run(tmp_path / "a", REPORT))
    second = golden.load(write_run(tmp_path / "b", again, time="9.25"))
    assert golden.differences(first, second) == []


@pytest.mark.parametrize(
    ("where", "change", "named"),
    [
        (("levels", 0, "written"), 24, ".levels[0].written: 25 != 24"),
        (("levels", 0, "verdict"), "FAIL", ".levels[0].verdict: 'PASS' != 'FAIL'"),
        (("criteria", 0, "verdict"), "FAIL", ".criteria[0].verdict: 'PASS' != 'FAIL'"),
    ],
)
def test_a_moved_count_or_verdict_is_named(tmp_path, where, change, named):
    moved = copy.deepcopy(REPORT)
    target = moved["hosts"]["observer-01"]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = change
    found = golden.differences(
        golden.load(write_run(tmp_path / "a", REPORT)),
        golden.load(write_run(tmp_path / "b", moved)),
    )
    assert found == [".report.json.hosts.observer-01" + named]


def test_a_moved_junit_outcome_is_named_and_the_exit_status_says_so(tmp_path):
    failing = JUNIT.replace(
        '<testcase name="L1 throughput" classname="observer-01.L1" time="{time}"/>',
        '<testcase name="L1 throughput" classname="observer-01.L1" time="{time}">'
        '<failure message="throughput 4.1/s under 4.8/s"/></testcase>',
    )
    first = write_run(tmp_path / "a", REPORT)
    second = write_run(tmp_path / "b", REPORT, junit=failing)
    done = subprocess.run(
        [sys.executable, str(Path(golden.__file__)), str(first), str(second)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        ".junit.xml[0].outcome: [] != [{'tag': 'failure', 'message': 'throughput #/s under #/s'}]"
        in done.stdout
    )
    assert "1 difference(s)" in done.stdout
