"""The run history (a real SQLite file), the regression test and report.html's escaping."""

from __future__ import annotations

import copy
import json
import random
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.qts.observer.plugins.plugin_utils import history, regression
from ansible_collections.qts.observer.plugins.plugin_utils.html_report import (
    Charts,
    host_charts,
    render,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = {"code_digest": "c0de", "config_digest": "c0f1"}


def a_report(
    run_id: str, started: str, *, p99: float = 20.0, seed: int = 1, host: str = "observer-01"
) -> dict:
    """A reported run of two levels with per-second samples around ``p99``."""
    noise = random.Random(seed)
    levels = []
    for number, rate in ((1, 5.0), (2, 50.0)):
        per_second = [
            {
                "t": t,
                "sent": rate,
                "written": rate + noise.choice((-1, 0, 1)),
                "p50": p99 / 2,
                "p99": p99 * noise.uniform(0.95, 1.05),
                "max": p99 * 1.1,
            }
            for t in range(10)
        ]
        levels.append(
            {
                "level": number,
                "rate": rate,
                "duration_s": 10.0,
                "verdict": "PASS",
                "throughput": rate,
                "latency_ms": {"p50": p99 / 2, "p95": p99, "p99": p99, "max": p99 * 1.1},
                "samples": 10,
                "observer_samples": 10,
                "cpu_pct": {"sustained": 20.0},
                "observer_cpu_pct": {"sustained": 4.0},
                "memory_pct": {"sustained": 30.0},
                "observer_rss_mb": {"peak": 30.0},
                "errors": 0,
                "sent": 50,
                "written": 50,
                "lost": 0,
                "duplicated": 0,
                "modified": 0,
                "per_second": per_second,
                "observer_cpu_samples": [4.0 + noise.uniform(-0.5, 0.5) for _unused in range(10)],
                "started_at": 1796000000.0 + 20 * number,
                "finished_at": 1796000010.0 + 20 * number,
                "latency_spectrum_ms": {
                    "p50": p99 / 2,
                    "p75": p99 * 0.7,
                    "p90": p99 * 0.9,
                    "p95": p99,
                    "p99": p99,
                    "p99.9": p99,
                    "max": p99 * 1.1,
                },
            }
        )
    return {
        "run_id": run_id,
        "started_at": started,
        "finished_at": started,
        "profile": "custom",
        "seed": 0,
        "verdict": "PASS",
        "reasons": [],
        "levels_planned": [{"rate": 5, "duration_s": 10}, {"rate": 50, "duration_s": 10}],
        "hosts": {
            host: {
                "verdict": "PASS",
                "levels": levels,
                "criteria": [],
                "observer_identity": dict(IDENTITY),
            }
        },
    }


@pytest.mark.process
def test_runs_are_recorded_listed_and_compared_with_the_previous_comparable_one(tmp_path):
    db = str(tmp_path / "history.sqlite")
    history.record_run(db, a_report("run-a", "2026-12-01T10:00:00Z"), "0.1.0")
    other_levels = a_report("run-x", "2026-12-01T10:30:00Z")
    other_levels["levels_planned"][0]["rate"] = 6
    history.record_run(db, other_levels, "0.1.0")
    history.record_run(db, a_report("run-b", "2026-12-01T11:00:00Z", seed=2), "0.1.0")
    assert history.comparable_runs(
        db, "observer-01", a_report("", "")["levels_planned"], IDENTITY, "2026-12-01T12:00:00Z"
    ) == ["run-b", "run-a"]
    # An identical run against that baseline: every check made, none a regression.
    same = a_report("run-c", "2026-12-01T12:00:00Z", seed=3)
    regression.judge(same, db, "previous", fail_on_regression=True)
    found = same["hosts"]["observer-01"]["regression"]
    assert found["baseline"] == "run-b"
    assert len(found["checks"]) == 6 and {c["verdict"] for c in found["checks"]} == {"PASS"}
    assert same["verdict"] == "PASS" and same["reasons"] == []
    # Ten times slower: the p99 of both levels is a regression, named with its figures.
    slow = a_report("run-d", "2026-12-01T13:00:00Z", p99=200.0, seed=4)
    regression.judge(slow, db, "run-a", fail_on_regression=True)
    failed = [
        c for c in slow["hosts"]["observer-01"]["regression"]["checks"] if c["verdict"] == "FAIL"
    ]
    assert [(c["level"], c["metric"]) for c in failed] == [
        (1, "p99_latency_ms"),
        (2, "p99_latency_ms"),
    ]
    assert failed[0]["baseline"] == 20.0 and failed[0]["current"] == 200.0
    assert failed[0]["change_pct"] == 900.0
    assert slow["verdict"] == "FAIL" and slow["hosts"]["observer-01"]["verdict"] == "FAIL"
    assert "regression L1 (5/s) p99_latency_ms: 20 -> 200 (+900.0 %)" in slow["reasons"][0]
    # Without the gate the regression is reported, the verdict stands.
    shown = a_report("run-e", "2026-12-01T14:00:00Z", p99=200.0, seed=5)
    regression.judge(shown, db, "run-a", fail_on_regression=False)
    assert shown["verdict"] == "PASS"
    assert any(
        c["verdict"] == "FAIL" for c in shown["hosts"]["observer-01"]["regression"]["checks"]
    )
    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "ansible_collections.qts.observer.plugins.plugin_utils.history",
            "--db",
            db,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "build" / "collections")},
    ).stdout
    assert listed.index("run-b") < listed.index("run-a")
    assert "observer-01          L2      50/s  throughput 50.00/s  p99 20.0 ms" in listed


def test_another_observer_or_other_levels_are_no_baseline(tmp_path):
    db = str(tmp_path / "history.sqlite")
    history.record_run(db, a_report("run-a", "2026-12-01T10:00:00Z"), "0.1.0")
    changed = a_report("run-b", "2026-12-01T11:00:00Z")
    changed["hosts"]["observer-01"]["observer_identity"]["code_digest"] = "other"
    regression.judge(changed, db, "previous", fail_on_regression=True)
    assert "no earlier comparable run" in changed["hosts"]["observer-01"]["regression"]["summary"]
    regression.judge(changed, db, "run-a", fail_on_regression=True)
    assert (
        "not comparable: another Observer"
        in changed["hosts"]["observer-01"]["regression"]["summary"]
    )
    # Gated on a named baseline that cannot be used: not measured, never a pass.
    assert changed["hosts"]["observer-01"]["verdict"] == "NOT MEASURED"
    assert changed["verdict"] == "FAIL"
    first = a_report("run-c", "2026-12-01T12:00:00Z")
    first["hosts"]["observer-01"]["observer_identity"]["code_digest"] = "new"
    regression.judge(first, db, "previous", fail_on_regression=True)
    assert first["verdict"] == "PASS"  # a first run of an Observer has nothing to compare with


WRITER = """
import json, sys, time
from ansible_collections.qts.observer.plugins.plugin_utils import history

db, template, index = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
# Every writer opens the new database at the same moment: the creation race is the hard case.
time.sleep(max(0.0, float(sys.argv[4]) - time.time()))
for number in range(5):
    template["run_id"] = "run-%02d-%02d" % (index, number)
    template["started_at"] = "2026-12-01T%02d:%02d:00Z" % (index, number)
    history.record_run(db, template, "0.1.0")
"""


@pytest.mark.process
def test_concurrent_runs_all_land_whole(tmp_path):
    db = str(tmp_path / "history.sqlite")
    template = tmp_path / "report.json"
    template.write_text(json.dumps(a_report("run", "")))
    # Twelve processes writing five runs each at the same time, as parallel CI jobs would, all
    # opening the new database at once (a moment after the slowest has started, loaded or not).
    start_at = time.time() + 5.0
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, db, str(template), str(index), str(start_at)],
            env={"PYTHONPATH": str(ROOT / "build" / "collections")},
        )
        for index in range(12)
    ]
    assert [writer.wait(120) for writer in writers] == [0] * 12
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 60
        assert connection.execute("SELECT COUNT(*) FROM levels").fetchone()[0] == 120
        assert connection.execute("PRAGMA user_version").fetchone()[0] == history.SCHEMA_VERSION


def test_a_history_from_a_newer_collection_is_refused_untouched(tmp_path):
    db = tmp_path / "history.sqlite"
    history.record_run(str(db), a_report("run-a", "2026-12-01T10:00:00Z"), "0.1.0")
    with sqlite3.connect(db) as connection:
        connection.execute("PRAGMA user_version=99")
    before = db.read_bytes()
    with pytest.raises(history.HistoryError, match="schema version 99, newer than"):
        history.record_run(str(db), a_report("run-b", "2026-12-01T11:00:00Z"), "0.1.0")
    assert db.read_bytes() == before


HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def hostile_report() -> dict:
    report = a_report("run-h", "2026-12-01T10:00:00Z", host=HOSTILE)
    entry = report["hosts"][HOSTILE]
    entry["verdict"] = "FAIL"
    entry["message"] = HOSTILE
    entry["levels"][0]["breaches"] = [
        {"criterion": "x", "measured": HOSTILE, "limit": 1, "message": HOSTILE}
    ]
    entry["criteria"] = [{"name": "stability", "verdict": "FAIL", "evidence": HOSTILE}]
    report["verdict"], report["reasons"] = "FAIL", [HOSTILE]
    return report


def test_everything_from_a_host_is_escaped_in_the_page_and_its_charts(tmp_path):
    page = render(hostile_report(), str(tmp_path))
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    # The charts (SVG text drawn by matplotlib) carry the host name escaped too.
    assert page.count("<svg") >= 3
    assert "onerror=alert(1)&gt;: offered and achieved throughput" in page


def test_the_page_says_what_it_could_not_draw(tmp_path):
    report = copy.deepcopy(a_report("run-a", "2026-12-01T10:00:00Z"))
    page = render(report, str(tmp_path))  # no monitor CSV, no metrics file fetched
    drawn = re.findall(r'data-chart="(\w+)"><svg', page)
    missing = re.findall(r'data-chart="(\w+)"><p class="missing">[^<]*no data: not measured', page)
    assert drawn == ["throughput", "latency", "spectrum"]
    assert missing == ["arrivals", "cpu", "memory", "depth"]


def test_the_mann_whitney_test_gives_scipys_p_values():
    """Exact and normal-approximation paths, ties, equal samples, both directions."""
    from ansible_collections.qts.observer.plugins.plugin_utils import mann_whitney
    from scipy.stats import mannwhitneyu

    draw = random.Random(20)
    compared = 0
    for _ in range(3000):
        sizes = draw.randint(1, 24), draw.randint(1, 24)
        kind = draw.random()
        if kind < 0.3:  # ties: always the normal approximation
            current, baseline = ([float(draw.randint(0, 5)) for _ in range(n)] for n in sizes)
        elif kind < 0.4:  # every value equal: no variance left
            current, baseline = [5.0] * sizes[0], [5.0] * sizes[1]
        else:  # no ties: exact when a side has 8 or fewer
            current = [draw.gauss(0.0, 1.0) for _ in range(sizes[0])]
            baseline = [draw.gauss(0.4, 1.0) for _ in range(sizes[1])]
        for alternative in ("greater", "less"):
            expected = float(mannwhitneyu(current, baseline, alternative=alternative).pvalue)
            got = mann_whitney.p_value(current, baseline, alternative)
            assert got == pytest.approx(expected, abs=1e-12), (current, baseline, alternative)
            compared += 1
    assert compared == 6000
    with pytest.raises(ValueError, match="alternative"):
        mann_whitney.p_value([1.0], [2.0], "two-sided")
    with pytest.raises(ValueError, match="at least one value"):
        mann_whitney.p_value([], [2.0], "less")


def test_the_arrivals_chart_draws_the_ledgers_send_times_and_sightings(tmp_path):
    report = copy.deepcopy(a_report("run-a", "2026-12-01T10:00:00Z"))
    host = next(iter(report["hosts"]))
    level = report["hosts"][host]["levels"][0]
    level["delivery"] = {"bursts": [{"burst": 1, "due_at_s": 1.5}]}
    folder = tmp_path / host
    folder.mkdir()
    # 2 s at 10/s and a burst of 50 due within 10 ms at 1.5 s, sent 3 ms late; each record
    # visible 0.25 s after it was due.
    due = sorted([n / 10 for n in range(20)] + [1.5 + i * 0.0002 for i in range(50)])
    rows = ["sequence\tintended_s\tsent_s"]
    rows += ["%d\t%.6f\t%.6f" % (n, t, t + 0.003) for n, t in enumerate(due)]
    (folder / "L1.sent.jsonl.times").write_text("\n".join(rows) + "\n")
    seen = ["sequence\tvisible_s"] + ["%d\t%.6f" % (n, t + 0.25) for n, t in enumerate(due)]
    (folder / "L1.sent.jsonl.visible").write_text("\n".join(seen) + "\n")
    charts = {
        c["name"]: c for c in host_charts(report, str(tmp_path), host, report["hosts"][host], [])
    }
    assert charts["arrivals"]["svg"], charts["arrivals"]
    series = Charts(report, str(tmp_path), host, report["hosts"][host])._arrivals()
    # Offered: the burst and the base snapshot due at 1.5 s in one window. Delivered 3 ms late,
    # the burst straddles two windows: 35 of it and that snapshot in the first.
    assert series[0]["offered"] == [1, 51] and series[0]["delivered"] == [1, 36]
    assert series[0]["visible_p99"] == [pytest.approx(250.0), pytest.approx(250.0)]


def with_a_kill(report: dict, *, back_s: float, recovery_s: float) -> dict:
    """``report`` with a kill planned in its second level, judged with these times."""
    kill = {"fault": 1, "type": "kill", "level": 2, "at_s": 4.0, "duration_s": 0.0,
            "quota_pct": None, "name": "fault 1 (kill at 4 s of level 2)"}  # fmt: skip
    report = copy.deepcopy(report)
    report["levels_planned"][1]["faults"] = [dict(kill, hosts=["observer-01"])]
    level = report["hosts"]["observer-01"]["levels"][1]
    level["faults"] = [dict(kill, verdict="PASS", sent=40, lost=3, duplicated=0, modified=0,
                            late=0, back_s=back_s, recovery_s=recovery_s, drain_s=0.4)]  # fmt: skip
    return report


def test_faults_are_kept_fault_by_fault_and_a_slower_recovery_is_a_regression(tmp_path):
    db = str(tmp_path / "history.sqlite")
    plain = a_report("run-a", "2026-12-01T10:00:00Z")
    history.record_run(db, plain, "0.1.0")
    first = with_a_kill(a_report("run-b", "2026-12-01T11:00:00Z"), back_s=1.2, recovery_s=0.6)
    history.record_run(db, first, "0.1.0")
    kept = history.host_run(db, "run-b", "observer-01")
    assert kept["faults"][1]["lost"] == 3 and kept["faults"][1]["recovery_s"] == 0.6
    # A run without the kill is not its baseline: the levels differ by their faults.
    assert history.levels_key(plain["levels_planned"]) != kept["levels_key"]
    slower = with_a_kill(a_report("run-c", "2026-12-01T12:00:00Z"), back_s=1.3, recovery_s=2.6)
    regression.judge(slower, db, "previous", fail_on_regression=True)
    entry = slower["hosts"]["observer-01"]
    assert entry["regression"]["baseline"] == "run-b"
    checks = {c["metric"]: c for c in entry["regression"]["checks"]}
    back = checks["fault 1 (kill at 4 s of level 2) back_s"]
    recovery = checks["fault 1 (kill at 4 s of level 2) recovery_s"]
    assert back["verdict"] == "PASS" and recovery["verdict"] == "FAIL"
    assert recovery["message"].startswith(
        "fault 1 (kill at 4 s of level 2) recovery_s: 0.60 -> 2.60 s"
    )
    assert entry["verdict"] == "FAIL" and slower["verdict"] == "FAIL"
