"""make merge's refusals: slices that are not parts of one test are named, never judged."""

from __future__ import annotations

import json
import re

import pytest
from ansible_collections.qts.observer.plugins.plugin_utils.merge import (
    MergeError,
    main,
    merge,
    read_slice,
)

pytestmark = pytest.mark.unit

LEVEL = {"rate": 5, "duration_s": 5, "thresholds": {"min_throughput": 4.8}}


def a_slice(run_id: str, hosts: dict, **settings) -> dict:
    return {
        "schema_version": 2, "run_id": run_id, "profile": "smoke", "seed": 0, "verdict": "PASS",
        "reasons": [],
        "levels_planned": [{**LEVEL, "run_id_prefix": "stress_%s_" % run_id}],
        "capacity_planned": None, "limits": {"max_cpu_pct": 80.0}, "hosts": hosts,
        "artifacts_dir": "/nowhere/%s" % run_id, **settings,
    }  # fmt: skip


def test_the_verdict_is_that_of_one_run_over_every_host():
    merged = merge(
        [
            a_slice("a", {"h1": {"verdict": "PASS"}}),
            a_slice("b", {"h2": {"verdict": "FAIL"}}, verdict="FAIL", reasons=["h2: L1 integrity"]),
        ],
        "/tmp/out",
        run_id="m",
    )
    assert merged["verdict"] == "FAIL" and merged["reasons"] == ["h2: L1 integrity"]
    assert list(merged["hosts"]) == ["h1", "h2"]
    assert merged["levels_planned"] == [LEVEL]  # each slice's own snapshot prefix left out
    assert [s["hosts"] for s in merged["slices"]] == [["h1"], ["h2"]]
    assert merged["schema_version"] == 2  # the layout the slices were written in
    passed = merge([a_slice("a", {"h1": {}}), a_slice("b", {"h2": {}})], "/tmp/out")
    assert passed["verdict"] == "PASS" and passed["reasons"] == []


@pytest.mark.parametrize(
    ("other", "named"),
    [
        ({"hosts": {"h1": {}}}, "host h1 is in two slices (a and b)"),
        ({"limits": {"max_cpu_pct": 90.0}}, "a and b are not slices of one test: their limits differ"),
        ({"seed": 7}, "their seed differ"),
        # A slice written by another layout of report.json (capacity steps in other words).
        ({"schema_version": 1}, "their schema_version differ"),
        ({"levels_planned": [{**LEVEL, "rate": 10}]}, "their levels_planned differ"),
    ],
)  # fmt: skip
def test_slices_of_different_tests_are_refused_and_named(other, named):
    second = {**a_slice("b", {"h2": {}}), **other}
    with pytest.raises(MergeError, match=re.escape(named)):
        merge([a_slice("a", {"h1": {}}), second], "/tmp/out")


def test_a_folder_without_a_report_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "report.json").write_text("{not json")
    with pytest.raises(MergeError, match=r"report\.json: not JSON"):
        read_slice(str(tmp_path / "broken"))
    good = tmp_path / "good"
    good.mkdir()
    (good / "report.json").write_text(json.dumps(a_slice("a", {"h1": {}})))
    assert main([str(good), str(tmp_path / "missing")]) == 2
    assert "missing/report.json: cannot read it" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "good"]
