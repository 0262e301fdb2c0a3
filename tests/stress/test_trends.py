"""Trends of a soak: the windows, the Theil-Sen slope and its interval, how each trend is judged
(growth that goes on, not a sawtooth, not growth that stopped), the plan of the soak profile,
the early stop of a level, and where a trend shows (report, junit.xml, the run history)."""

from __future__ import annotations

import json
import os
import random
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from ansible_collections.qts.observer.plugins.action.stress_level import progress_line, ran_for
from ansible_collections.qts.observer.plugins.module_utils.gate import judge_trend, judged_level
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    LevelPlan,
    ProcessWatch,
    inject,
)
from ansible_collections.qts.observer.plugins.module_utils.measure import trend_series
from ansible_collections.qts.observer.plugins.module_utils.profile import profile_levels
from ansible_collections.qts.observer.plugins.module_utils.progress import warnings_for
from ansible_collections.qts.observer.plugins.module_utils.trends import (
    MIN_WINDOWS,
    SERIES,
    TREND_DEFAULTS,
    fit,
    judged_span,
    still_growing,
    theil_sen,
    trend_settings_errors,
    windows,
)
from ansible_collections.qts.observer.plugins.plugin_utils import history, junit, regression
from ansible_collections.qts.observer.plugins.plugin_utils.plan import plan_run
from ansible_collections.qts.observer.plugins.plugin_utils.report import trend_lines
from figures import healthy_figures

pytestmark = pytest.mark.unit

SHORT = dict(TREND_DEFAULTS, window_s=10.0, warmup_s=20.0, tolerances=dict(TREND_DEFAULTS["tolerances"]),
             limits={})  # fmt: skip
CONTEXT = {"memory_pct": 40.0, "open_files_limit": 1024.0, "filesystem_free_mb": 10000.0,
           "rotation": {"window_ms": 600000.0, "max_files": 20}, "max_buffer_size": 50000}  # fmt: skip


def judged(samples, name="rss_mb", settings=SHORT, duration_s=120.0, **context):
    points = windows(samples, warmup_s=settings["warmup_s"], window_s=settings["window_s"],
                     count=judged_span(duration_s, settings))  # fmt: skip
    return judge_trend(name, points, settings=settings, context={**CONTEXT, **context},
                       metrics={"memory_total_mb": 24000.0}, limits={"max_memory_pct": 85.0},
                       thresholds={"max_latency_ms": 150.0})  # fmt: skip


def test_theil_sen_gives_an_exact_line_its_slope_and_a_closed_interval():
    fitted = theil_sen([[t, 3.0 + 0.5 * t] for t in range(10)])
    assert fitted["slope"] == fitted["lower"] == fitted["upper"] == 0.5
    assert fitted["intercept"] == 3.0


def test_the_interval_holds_the_true_slope_of_noisy_lines_about_95_times_in_100():
    noise = random.Random(7)
    held = 0
    for _unused in range(200):
        fitted = theil_sen([[t, 2.0 * t + noise.gauss(0, 5)] for t in range(20)])
        held += fitted["lower"] <= 2.0 <= fitted["upper"]
    assert 180 <= held <= 200


def test_a_single_outlier_does_not_move_the_slope():
    points = [[t, 10.0] for t in range(12)]
    points[7][1] = 1000.0
    assert theil_sen(points)["slope"] == 0.0


def test_slowly_varying_noise_widens_the_interval():
    steady = [[t, (t % 2) * 1.0] for t in range(20)]
    drifting = [[t, 1.0 if (t // 5) % 2 else 0.0] for t in range(20)]
    narrow, wide = theil_sen(steady), theil_sen(drifting)
    assert wide["autocorrelation"] > 0.5 and narrow["autocorrelation"] == 0.0
    assert wide["upper"] - wide["lower"] > narrow["upper"] - narrow["lower"]


def test_each_window_gives_the_minimum_of_its_samples_after_the_warm_up():
    samples = [(t + 0.5, float(t % 6)) for t in range(60)]
    assert windows(samples, warmup_s=20.0, window_s=10.0, count=3) == [
        [25.0, 0.0], [35.0, 0.0], [45.0, 0.0]]  # fmt: skip
    # A window without a sample (the first and the last here) is left out.
    assert windows([(31.0, 5.0)], warmup_s=20.0, window_s=10.0, count=3) == [[35.0, 5.0]]


def test_a_leak_is_flagged_with_its_slope_its_interval_and_the_limit_it_reaches():
    # 6 MB a minute: 360 MB/h, sampled every second with a little jitter.
    noise = random.Random(1)
    leak = [(t, 40.0 + 0.1 * t + noise.random() * 0.05) for t in range(120)]
    trend = judged(leak)
    assert trend["verdict"] == "FAIL" and abs(trend["slope_per_h"] - 360.0) < 0.05 * 360.0
    assert trend["lower_per_h"] <= 360.0 <= trend["upper_per_h"] + 3.0
    (breach,) = trend["breaches"]
    assert breach["criterion"] == "trend_rss_mb" and breach["limit"] == 10.0
    assert trend["message"].startswith("Observer RSS +36")
    # With a limit of its own: the projection names it, and reaching it before the horizon
    # fails the trend too.
    limited = judged(leak, settings=dict(SHORT, limits={"rss_mb": 300.0}))
    assert "reaches the 300 MB limit in 0.7 h" in limited["message"]
    assert [b["criterion"] for b in limited["breaches"]] == ["trend_rss_mb", "trend_rss_mb_limit"]


def test_a_sawtooth_and_a_growth_that_stopped_are_not_trends():
    noise = random.Random(2)
    # Grows 8 MB/s over 3 s of every 6, then freed (a buffer flushed).
    sawtooth = [(t / 4, 40.0 + max(0.0, ((t / 4) % 6) - 3) * 8 + noise.random() * 0.05)
                for t in range(480)]  # fmt: skip
    assert judged(sawtooth)["verdict"] == "PASS"
    # +30 MB once, 40 s into the level, then flat.
    step = [(t, 40.0 + (30.0 if t > 40 else 0.0) + noise.random() * 0.05) for t in range(120)]
    stepped = judged(step)
    assert stepped["verdict"] == "PASS" and not stepped["still_growing"]
    # Growth beyond noise whose second half grows at under half its lower bound: stopped.
    assert still_growing({"lower_per_h": 20.0, "second_half_per_h": 10.0})
    assert not still_growing({"lower_per_h": 20.0, "second_half_per_h": 9.9})
    assert not still_growing({"lower_per_h": 0.0, "second_half_per_h": 50.0})


def test_flat_noise_is_no_growth_beyond_noise():
    noise = random.Random(3)
    flat = judged([(t, 40.0 + noise.gauss(0, 1)) for t in range(300)], duration_s=300.0)
    assert flat["verdict"] == "PASS" and flat["message"].endswith("no growth beyond noise")


def test_too_few_windows_or_no_sample_is_not_measured():
    few = judged([(t, 40.0) for t in range(60)], duration_s=60.0)
    assert few["verdict"] == "NOT MEASURED" and "fewer than needed" in few["message"]
    none = judged([], name="buffer_depth")
    assert none["verdict"] == "NOT MEASURED" and "no sample" in none["message"]


def test_the_records_folder_is_bounded_by_rotation_or_judged_against_its_filesystem():
    growing = [(t, 0.01 * t) for t in range(120)]  # 36 MB/h
    bounded = judged(growing, name="records_mb")
    assert bounded["verdict"] == "PASS" and bounded["rotation_bound_mb"] == pytest.approx(120.0)
    assert "bounded by rotation near 120 MB" in bounded["message"]
    # Without rotation, and a filesystem with 10 MB free: full within the horizon.
    full = judged(growing, name="records_mb", rotation=None, filesystem_free_mb=10.0)
    assert (
        full["verdict"] == "FAIL" and full["breaches"][0]["criterion"] == "trend_records_mb_limit"
    )
    assert "reaches the 11.1 MB limit in 0.3 h" in full["message"]


def test_each_limit_comes_from_where_it_says():
    line = [(t, 1.0 + t) for t in range(120)]
    assert judged(line, name="open_files")["limit"] == 1024.0
    assert judged(line, name="p99_ms")["limit"] == 150.0
    assert judged(line, name="buffer_depth")["limit"] == 50000
    rss = judged(line)
    # The RSS at the last window (its minimum, 111 at t=110) and 45 % of 24000 MB left under 85 %.
    assert rss["limit"] == pytest.approx(111.0 + 0.45 * 24000.0)
    # Growing under its tolerance (3.6 files/h), with no limit known: said so.
    unlimited = judged([(t, 12.0 + t / 1000.0) for t in range(120)], name="open_files",
                       open_files_limit=None)  # fmt: skip
    assert unlimited["limit"] is None and unlimited["message"].endswith("no limit known")


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("often", "stress_trends must be a mapping"),
        ({"window": 5}, "unknown key 'window'"),
        ({"window_s": 0}, "stress_trends.window_s must be a number > 0, got 0"),
        ({"warmup_s": -1}, "stress_trends.warmup_s must be a number >= 0, got -1"),
        ({"tolerances": {"rss": 1}}, "stress_trends.tolerances: unknown series 'rss'"),
        ({"limits": {"rss_mb": 0}}, "stress_trends.limits.rss_mb must be a number > 0, got 0"),
        ({"tolerances": {"p99_ms": "low"}}, "stress_trends.tolerances.p99_ms must be a number"),
    ],
)
def test_bad_trend_settings_are_named(given, error):
    _unused, errors = trend_settings_errors(given)
    assert any(error in e for e in errors), errors


def test_the_defaults_and_every_series_are_documented_in_the_readme_and_the_role():
    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("### Soak", 1)[1].split("\n### ", 1)[0]
    specs = (root / "roles" / "stress" / "meta" / "argument_specs.yml").read_text()
    defaults = (root / "roles" / "stress" / "defaults" / "main.yml").read_text()
    for name, (_what, unit) in SERIES.items():
        tolerance = TREND_DEFAULTS["tolerances"][name]
        row = "| `%s` | %s |" % (
            name,
            "%g %s/h" % (tolerance, unit) if tolerance is not None else "none",
        )
        assert row in section or ("| `%s` | none:" % name) in section, row
        assert "C(%s)" % name in specs and name in defaults
    for key in ("window_s", "warmup_s", "horizon_h"):
        assert "`%s` (%g)" % (key, TREND_DEFAULTS[key]) in section
        assert "C(%s) (%g)" % (key, TREND_DEFAULTS[key]) in specs
        assert "%s (%g)" % (key, TREND_DEFAULTS[key]) in defaults
    assert "%d windows" % MIN_WINDOWS in specs.replace("\n", " ").replace("  ", " ")
    assert (
        "`window_s`" in section
        and "\nstress_soak_duration_s: %d\n" % profile_levels("soak")[0]["duration_s"] in defaults
    )


def _plan(**params):
    base = {"profile": "soak", "levels": [], "timings": {}, "limits": {}, "settings": {},
            "hosts": ["h"], "forks": 5, "interface": None, "run_id": None, "seed": 0,
            "artifacts_dir": "/tmp/qts-plan-test", "capacity": {}}  # fmt: skip
    return plan_run({**base, **params})


def test_the_soak_profile_is_the_spec_25_level_for_hours_with_its_trends():
    (level,) = profile_levels("soak")
    assert (level["rate"], level["duration_s"], level["thresholds"]["max_latency_ms"]) == (
        25,
        14400,
        150.0,
    )
    plan, errors = _plan()
    assert errors == [] and plan["levels"][0]["trends"]["window_s"] == 60.0
    plan, errors = _plan(settings={"soak_duration_s": 900}, trends={"window_s": 10, "warmup_s": 20})
    assert errors == [] and plan["levels"][0]["duration_s"] == 900
    # Too short for its windows: refused, with what it needs.
    _unused, errors = _plan(settings={"soak_duration_s": 900})
    assert errors == ["level 1 (900 s) is too short for its trends: after the warm-up "
                      "(stress_trends.warmup_s, 600 s) it must hold 8 windows of "
                      "stress_trends.window_s (60 s), at least 1080 s"]  # fmt: skip
    # Other profiles: trends only on a level long enough for them.
    plan, errors = _plan(profile="smoke")
    assert errors == [] and all(lv["trends"] is None for lv in plan["levels"])


def test_a_long_level_says_how_long_it_has_left():
    progress = {"level": 1, "rate": 25, "started": True, "elapsed_s": 3600, "duration_s": 14400,
                "sent": 90000, "planned": 360000}  # fmt: skip
    assert progress_line("h", progress).endswith(" 3h00m left")
    assert "left" not in progress_line("h", dict(progress, duration_s=180, elapsed_s=60))
    assert "left" not in progress_line("h", dict(progress, draining=True))


def test_a_level_stopped_early_is_measured_and_judged_on_what_ran():
    assert ran_for({"duration_s": 14400.0}, {"stopped_early_s": 1200.5}) == 1200.5
    assert ran_for({"duration_s": 14400.0}, {"stopped_early_s": None}) == 14400.0
    figures = healthy_figures(rate=25.0, duration_s=1200.5)
    level, line = judged_level(1, dict(figures, stopped_early_s=1200.5, planned_duration_s=14400.0),
                               {"min_throughput": 23.0, "max_latency_ms": 150.0, "max_cpu_pct": 75.0,
                                "max_memory_pct": 80.0}, None)  # fmt: skip
    assert level["verdict"] == "PASS" and line.endswith(
        "stopped early after 1200 s of 14400 s: judged on what ran"
    )


@pytest.mark.process
def test_the_sender_ends_the_level_when_its_stop_file_appears(tmp_path):
    """A real pipe read by a real process: the stop file ends the level within a second."""
    fifo = tmp_path / "in.pipe"
    os.mkfifo(fifo)
    reader = __import__("subprocess").Popen(["cat", str(fifo)], stdout=open(os.devnull, "wb"))  # noqa: SIM115
    try:
        stop = tmp_path / "L1.sent.jsonl.stop"
        plan = LevelPlan(rate=50.0, duration_s=60.0, seed=1, level=1, stop_path=str(stop))
        fd = os.open(fifo, os.O_WRONLY)
        stopper = __import__("threading").Timer(3.0, stop.touch)
        stopper.start()
        started = time.monotonic()
        outcome = inject(plan, fd, ProcessWatch(reader.pid), str(tmp_path / "L1.sent.jsonl"))
        os.close(fd)
    finally:
        reader.kill()
        reader.wait()
    assert 3.0 <= outcome.stopped_early_s <= 5.0 and time.monotonic() - started < 10.0
    assert 140 <= outcome.sent <= 260 and outcome.failure is None
    assert outcome.as_dict()["stopped_early_s"] == outcome.stopped_early_s


def test_the_measure_cuts_the_monitor_metrics_folder_and_latencies_into_windows(tmp_path):
    start = 1796000000.0
    monitor = tmp_path / "monitor.csv"
    rows = ["Timestamp,CPU%,Memory%,Observer_PID,Observer_Memory_MB,Observer_Open_Files"]
    for t in range(130):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + t)) + ".000Z"
        rows.append("%s,10.0,40.0,%d,%.3f,%d" % (stamp, os.getpid(), 30.0 + 0.1 * t, 12))
    monitor.write_text("\n".join(rows) + "\n")
    ledger = tmp_path / "L1.sent.jsonl"
    (tmp_path / "L1.sent.jsonl.folder").write_text(
        "epoch_s\tbytes\n" + "".join("%.3f\t%d\n" % (start + t, 1048576 * t) for t in range(130)))  # fmt: skip
    params = {"trends": {"window_s": 10.0, "warmup_s": 20.0}, "start": start, "end": start + 120,
              "duration_s": 120.0, "monitor_csv": str(monitor), "ledger": str(ledger),
              "output_dir": str(tmp_path), "config_file": None}  # fmt: skip
    reports = [{"timestamp": start + t, "buffer_depth": t % 5} for t in range(120)]
    latencies = [(t / 25.0, 1.0 + (t % 25) / 10.0) for t in range(3000)]
    found = trend_series(params, latencies, reports)
    series = found["series"]
    assert [len(series[name]) for name in SERIES] == [10] * 5
    assert series["rss_mb"][0] == [25.0, 32.0] and series["open_files"][0] == [25.0, 12.0]
    assert series["records_mb"][0] == [25.0, 20.0] and series["buffer_depth"][0] == [25.0, 0.0]
    # Each second's p99 of 25 latencies (1.0 to 3.4 ms) is 3.4: the window's lowest of them.
    assert series["p99_ms"][0] == [25.0, 3.4]
    assert found["context"]["windows"] == 10 and found["context"]["memory_pct"] == 40.0
    assert found["context"]["open_files_limit"] is not None


def _soak_report(run_id: str, started: str, slope: float) -> dict:
    level = {"level": 1, "rate": 25.0, "duration_s": 3600.0, "verdict": "PASS", "sent": 1, "written": 1,
             "lost": 0, "duplicated": 0, "modified": 0, "per_second": [],
             "trends": [judged([(t, 40.0 + slope / 3600.0 * t + random.Random(t).random() * 0.01)
                                for t in range(3600)], settings=dict(SHORT, warmup_s=600.0, window_s=60.0),
                               duration_s=3600.0)]}  # fmt: skip
    return {"run_id": run_id, "started_at": started, "finished_at": started, "profile": "soak", "seed": 0,
            "verdict": level["trends"][0]["verdict"], "reasons": [],
            "levels_planned": [{"rate": 25, "duration_s": 3600}],
            "hosts": {"h": {"verdict": "PASS", "levels": [level], "criteria": [],
                            "observer_identity": {"code_digest": "c", "config_digest": "c"}}}}  # fmt: skip


@pytest.mark.process
def test_a_trend_is_kept_in_the_history_and_a_leak_that_appeared_is_a_regression(tmp_path, capsys):
    db = str(tmp_path / "history.sqlite")
    history.record_run(db, _soak_report("run-a", "2026-12-01T10:00:00Z", 0.0), "1.0.0")
    current = _soak_report("run-b", "2026-12-01T12:00:00Z", 60.0)
    regression.judge(current, db, "previous", fail_on_regression=True)
    (check,) = [
        c for c in current["hosts"]["h"]["regression"]["checks"] if c["metric"].startswith("trend")
    ]
    assert check["metric"] == "trend rss_mb slope" and check["verdict"] == "FAIL"
    assert check["message"].startswith("trend rss_mb slope: +0 -> +60")
    # The same slope again is no regression.
    history.record_run(db, current, "1.0.0")
    again = _soak_report("run-c", "2026-12-01T14:00:00Z", 60.0)
    regression.judge(again, db, "previous", fail_on_regression=True)
    assert [c["verdict"] for c in again["hosts"]["h"]["regression"]["checks"]
            if c["metric"].startswith("trend")] == ["PASS"]  # fmt: skip
    assert history.main(["--db", db]) == 0
    assert "L1  trend rss_mb       +60 MB/h" in capsys.readouterr().out


def test_a_trend_shows_in_the_console_table_and_in_junit():
    report = _soak_report("run-a", "2026-12-01T10:00:00Z", 60.0)
    report["hosts"]["h"]["levels"][0]["trends"][0]["verdict"] = "FAIL"
    text = "\n".join(trend_lines(report))
    assert "TRENDS" in text and "rss_mb" in text and "+60 MB" in text
    root = ET.fromstring(junit.junit_xml(report))
    (case,) = [c for c in root.iter("testcase") if c.get("classname") == "h.trends"]
    assert case.get("name") == "L1.rss_mb"
    assert case.find("failure").get("message").startswith("Observer RSS +60 MB/h")
    figures = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert figures["windows"] == "50" and json.loads(figures["slope_per_h"]) == pytest.approx(
        60.0, abs=0.5
    )


def test_a_fit_needs_its_windows():
    assert fit([[t, 1.0] for t in range(MIN_WINDOWS - 1)]) is None
    assert fit([[t, 1.0] for t in range(MIN_WINDOWS)])["slope_per_h"] == 0.0


def test_the_early_warning_of_a_rising_latency_or_depth_needs_a_real_rise():
    """Four reports in a row, each higher, and the last clearly above the first: 19.40 ->
    19.41 -> 19.42 -> 19.43 ms (what the spec's run on the embedded default warned about) is
    noise."""

    def reports(p99s, depths):
        return [
            {"snapshot_processing": {"p99_ms": p}, "buffer_depth": d} for p, d in zip(p99s, depths)
        ]

    assert warnings_for(None, None, reports([19.40, 19.41, 19.42, 19.43], [1, 2, 3, 4]), None) == []
    assert warnings_for(None, None, reports([2.0, 2.5, 3.0, 3.5], [10, 20, 40, 80]), None) == [
        "processing latency trending up: p99 2.0 -> 2.5 -> 3.0 -> 3.5 ms",
        "buffer depth trending up: 10 -> 20 -> 40 -> 80",
    ]
    # Up by 1 ms but under a fifth of a p99 of 19.4 ms: not yet.
    assert warnings_for(None, None, reports([19.4, 19.8, 20.2, 20.5], [0, 0, 0, 0]), None) == []
