"""report.html, the run history and regressions, end to end on this machine: three runs of
`make smoke` into one artifacts folder, the reference Observer provisioned by each.

  A  the baseline: dispatch paced by hybrid_trigger.min_interval_ms 1000 ms, so that its
     latency (p99 about 1 s) is the configuration's: a loaded machine (the other test jobs
     beside this one) adds tens of milliseconds, well under the 20 % a regression needs
  B  the same configuration again, gated on regressions against A
  C  the Observer made ten times slower (min_interval_ms 10000 ms), gated against B by run id

Every run has a busy neighbour on one core (a shared runner), and two levels of 10 s (ten
per-second samples a side for the Mann-Whitney test; lenient limits: only the regression
decides).

Then C's report.html is opened in headless Chromium (Debian's chromium and chromium-driver,
driven by selenium): every chart rendered, no console error, the verdict visible; a
screenshot is kept beside the report. A page made of hostile host names is opened too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from stressrun import (
    LENIENT_LIMITS,
    ROOT,
    a_neighbour_keeps_one_core_busy,
    lenient_level,
    make_smoke,
)

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
PACED = {"hybrid_trigger": {"min_interval_ms": 1000.0, "max_interval_ms": 10000.0}}
SLOWER = {"hybrid_trigger": {"min_interval_ms": 10000.0, "max_interval_ms": 60000.0}}
LEVELS = [lenient_level(rate, 10, max_latency_ms=30000.0) for rate in (5, 50)]
CHARTS = ["throughput", "latency", "arrivals", "cpu", "memory", "depth", "spectrum", "trend"]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run_smoke(root: Path, artifacts: Path, variables: dict) -> tuple[int, dict, Path]:
    variables_file = artifacts.parent / (
        "vars-%d.json" % len(list(artifacts.parent.glob("vars-*")))
    )
    variables_file.write_text(json.dumps({
        "stress_levels": LEVELS, "stress_limits": {**LENIENT_LIMITS, "fail_latency_ms": 60000.0},
        "observer_stress_config_overrides": PACED,
        # The slow Observer's last records come up to 10 s after its level: wait for them.
        "stress_settle_s": 30, **variables}))  # fmt: skip
    with a_neighbour_keeps_one_core_busy():
        run = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                         "-e", f"@{variables_file}")  # fmt: skip
    run_dir = (artifacts / "latest").resolve()
    (run_dir / "run.log").write_text(run.stdout + run.stderr)
    return run.returncode, json.loads((run_dir / "report.json").read_text()), run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Iterator[dict]:
    work = tmp_path_factory.mktemp("history")
    root, artifacts = work / "root", work / "artifacts"
    try:
        a = run_smoke(root, artifacts, {})
        b = run_smoke(root, artifacts, {"stress_fail_on_regression": True})
        c = run_smoke(root, artifacts, {
            "stress_fail_on_regression": True, "stress_baseline": b[1]["run_id"],
            "observer_stress_config_overrides": SLOWER})  # fmt: skip
        yield {"a": a, "b": b, "c": c, "artifacts": artifacts}
    finally:
        for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)


def regression_of(report: dict) -> dict:
    return report["hosts"]["localhost"]["regression"]


def test_the_first_run_has_no_baseline_and_every_run_is_in_the_history(runs):
    code, report, _unused = runs["a"]
    assert code == 0 and report["verdict"] == "PASS"
    assert regression_of(report)["baseline"] is None
    assert "no earlier comparable run" in regression_of(report)["summary"]
    listed = subprocess.run(
        ["make", "--no-print-directory", "history", f"HISTORY={runs['artifacts']}/history.sqlite"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    for key in ("a", "b", "c"):
        assert runs[key][1]["run_id"] in listed
    assert "L2      50/s  throughput 50.00/s" in listed


def test_an_identical_run_is_not_a_regression(runs):
    code, report, _unused = runs["b"]
    found = regression_of(report)
    assert found["baseline"] == runs["a"][1]["run_id"]
    assert len(found["checks"]) == 6  # two levels x p99 latency, throughput, Observer CPU
    assert [c for c in found["checks"] if c["verdict"] != "PASS"] == [], found["checks"]
    assert code == 0 and report["verdict"] == "PASS"


def test_a_tenfold_slower_observer_is_a_named_regression_that_fails_the_run(runs):
    code, report, run_dir = runs["c"]
    found = regression_of(report)
    assert found["baseline"] == runs["b"][1]["run_id"]
    assert "configuration differs from the baseline's" in found["summary"]
    failed = {(c["level"], c["metric"]): c for c in found["checks"] if c["verdict"] == "FAIL"}
    assert (2, "p99_latency_ms") in failed, found["checks"]
    slow = failed[(2, "p99_latency_ms")]
    assert slow["current"] > 5 * slow["baseline"] and slow["p_value"] < 0.01
    # The levels themselves pass (their limits are lenient): only the regression fails it.
    assert [lv["verdict"] for lv in report["hosts"]["localhost"]["levels"]] == ["PASS", "PASS"]
    assert code != 0 and report["verdict"] == "FAIL"
    assert any(reason.startswith("localhost: regression") and "L2 (50/s) p99_latency_ms: " in reason
               for reason in report["reasons"])  # fmt: skip
    junit = ET.parse(run_dir / "junit.xml").getroot()
    case = junit.find(".//testcase[@classname='localhost.regression'][@name='L2 p99_latency_ms']")
    assert case is not None and case.find("failure") is not None


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(
            "the browser test needs Debian's chromium and chromium-driver (.ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_html_renders_in_chromium_and_a_screenshot_is_kept(runs, browser):
    run_dir = runs["c"][2]
    page = run_dir / "report.html"
    assert page.stat().st_size < 3 * 1024 * 1024
    # Opens offline: nothing fetched (no script, stylesheet link or remote image).
    text = page.read_bytes()
    assert not re.search(rb'(?:src|href)="(?:https?:)?//', text)
    assert b"<script" not in text and b"<link" not in text
    browser.get(page.as_uri())
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    verdict = browser.find_element("id", "verdict")
    assert verdict.is_displayed() and "FAIL" in verdict.text
    figures = browser.find_elements("css selector", "figure[data-chart]")
    assert [f.get_attribute("data-chart") for f in figures] == CHARTS
    for figure in figures:
        size = browser.execute_script(
            "const s = arguments[0].querySelector('svg'); if (!s) return null;"
            "const r = s.getBoundingClientRect(); return [r.width, r.height,"
            " s.querySelectorAll('path').length];", figure)  # fmt: skip
        assert size and size[0] > 300 and size[1] > 100 and size[2] > 10, figure.get_attribute(
            "data-chart")  # fmt: skip
    assert "p99_latency_ms" in browser.find_element("tag name", "body").text
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1280, min(height + 50, 16000))
    shot = run_dir / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 50_000


def test_a_page_of_hostile_host_names_runs_nothing_in_the_browser(tmp_path, browser):
    sys.path.insert(0, str(ROOT / "tests" / "report"))
    from ansible_collections.qts.observer.plugins.plugin_utils.html_report import render
    from test_history_and_regression import HOSTILE, hostile_report

    page = tmp_path / "report.html"
    page.write_text(render(hostile_report(), str(tmp_path)))
    browser.get(page.as_uri())
    assert browser.find_elements("tag name", "script") == []
    assert browser.find_elements("css selector", "img") == []
    assert HOSTILE in browser.find_element("tag name", "body").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
