"""Judging an Observer that tells nothing of its latency, end to end (`make smoke` as users run
it): a team's Observer (tests/observers/team_observer) read through an interface that takes no
latency from its records or its log, judged on when its records become visible, and failed
once it is made to hold them back past the level's limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from stressrun import LAB_LEVELS, ROOT, latest_report, local_install_root, make_smoke

TEAM_OBSERVER = ROOT / "tests" / "observers" / "team_observer"
PROFILE = yaml.safe_load((ROOT / "examples" / "runbook-observer.yml").read_text())
LIMIT_MS = 2000.0  # lab-levels.json's max_latency_ms: what a busy runner cannot break

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def silent_team_observer(tmp_path: Path, flush_ms: float) -> dict:
    """The runbook's team Observer, writing its records every ``flush_ms``, read through an
    interface that finds no latency: none in its records, none in its dispatch lines."""
    interface = dict(
        PROFILE["stress_observer_interface"],
        latency_ms="",
        log_dispatch=r"PatternRecord dispatched observed_run=(?P<run_id>\S+)",
        log_p99="",
    )
    return {
        **{key: value for key, value in PROFILE.items() if key != "stress_observer_interface"},
        "stress_observer_interface": interface,
        "observer_source_dir": str(TEAM_OBSERVER),
        "observer_environment": {"QTS_OBSERVER_STANDALONE": "1"},
        "observer_stress_config_overrides": {"buffer": {"flush_interval_ms": flush_ms}},
    }


def run(tmp_path: Path, name: str, flush_ms: float) -> tuple[int, dict, str]:
    variables = tmp_path / ("%s.json" % name)
    variables.write_text(json.dumps(silent_team_observer(tmp_path, flush_ms)))
    artifacts = tmp_path / name
    with local_install_root(tmp_path / ("root-%s" % name)) as root:
        done = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                          "-e", f"@{variables}", "-e", f"@{LAB_LEVELS}")  # fmt: skip
    report, _junit, _unused = latest_report(artifacts)
    return done.returncode, report, done.stdout


def test_an_observer_without_latency_passes_on_visibility_and_fails_holding_records_back(
    tmp_path,
):
    code, report, stdout = run(tmp_path, "flushing", 500.0)
    entry = report["hosts"]["localhost"]
    assert code == 0 and report["verdict"] == "PASS", (report["reasons"], stdout[-3000:])
    for level in entry["levels"]:
        # Nothing from the Observer: its latency is when its records became visible, labelled.
        assert level["latency_ms"] is None and level["latency_source"] is None
        assert level["latency_judged_on"].startswith("visibility latency")
        fresh = level["freshness"]
        assert fresh["visible"] == fresh["sent"] == level["sent"]
        # Written every 500 ms: a record waits up to one flush interval to appear.
        assert 0 < fresh["visibility_ms"]["p50"] < fresh["visibility_ms"]["p99"] < LIMIT_MS
    # Held back for 3 s, past the 2 s limit: the same Observer fails, on its visibility.
    code, report, stdout = run(tmp_path, "holding", 3000.0)
    first = report["hosts"]["localhost"]["levels"][0]
    assert code != 0 and first["verdict"] == "FAIL", stdout[-3000:]
    (breach,) = first["breaches"]
    assert breach["criterion"] == "max_latency_ms" and breach["measured"] > LIMIT_MS
    assert breach["message"].startswith("p99 visibility latency (the Observer reports none")
    assert "p99 visibility latency" in stdout
