"""The gate's every criterion, table-driven at and around each limit, and the profile."""

from __future__ import annotations

import copy
from types import MappingProxyType

import pytest
from ansible_collections.qts.observer.plugins.module_utils.gate import (
    GateInputError,
    judge_level,
    judge_run,
    judged_level,
    judged_run,
    level_unmeasured,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import (
    PROFILE_TIMINGS,
    RUN_LIMITS,
    profile_levels,
    resolve_levels,
    resolve_limits,
    resolve_timings,
    validate_levels,
    window_errors,
)
from ansible_collections.qts.observer.plugins.module_utils.stats import percentile, sustained
from ansible_collections.qts.observer.plugins.module_utils.verdicts import combine, passed
from figures import healthy_figures, with_changes

pytestmark = pytest.mark.unit

THRESHOLDS = {
    "min_throughput": 4.8,
    "max_latency_ms": 50.0,
    "max_cpu_pct": 40.0,
    "max_memory_pct": 60.0,
}


def healthy_level(rate: float = 5.0, **changes) -> dict:
    level = dict(healthy_figures(rate, 180), level=1, sent=900, written=900, verdict="PASS")
    return with_changes(level, **changes)


@pytest.mark.parametrize(
    ("change", "breached"),
    [
        ({}, []),
        ({"throughput": 4.8}, []),
        ({"throughput": 4.799}, ["min_throughput"]),
        ({"latency_ms.p99": 49.999}, []),
        ({"latency_ms.p99": 50.0}, ["max_latency_ms"]),
        ({"latency_ms.p99": 50.001}, ["max_latency_ms"]),
        ({"cpu_pct.sustained": 39.9}, []),
        ({"cpu_pct.sustained": 40.0}, ["max_cpu_pct"]),
        ({"cpu_pct.peak": 99.0}, []),  # a single spike is not sustained
        ({"memory_pct.sustained": 59.9}, []),
        ({"memory_pct.sustained": 60.0}, ["max_memory_pct"]),
        ({"lost": 1, "written": 899}, ["integrity_lost"]),
        ({"duplicated": 1}, ["integrity_duplicated"]),
        ({"modified": 2}, ["integrity_modified"]),
        ({"extra_fields": ["decision"]}, ["contract"]),
        ({"error_rate_pct": 0.0999}, []),
        ({"error_rate_pct": 0.1}, ["error_rate"]),
        ({"failure": "process failure: the Observer (pid 7) died"}, ["process_failure"]),
        ({"throughput": 1.0, "latency_ms.p99": 80.0}, ["min_throughput", "max_latency_ms"]),
    ],
)
def test_level_thresholds_at_and_around_each_limit(change, breached):
    breaches = judge_level(healthy_level(**change), THRESHOLDS)
    assert [b["criterion"] for b in breaches] == breached
    for breach in breaches:
        assert "measured" in breach and "limit" in breach
        if isinstance(breach["limit"], float):
            assert "%g" % breach["limit"] in breach["message"]


def test_breach_message_names_measured_value_and_limit():
    (breach,) = judge_level(healthy_level(**{"latency_ms.p99": 61.2}), THRESHOLDS)
    assert breach == {
        "criterion": "max_latency_ms",
        "measured": 61.2,
        "limit": 50.0,
        "message": "p99 processing latency 61.200 ms not under 50 ms",
    }


def test_a_cpu_breach_says_how_much_of_it_was_the_observer():
    level = healthy_level(**{"cpu_pct.sustained": 91.7, "observer_cpu_pct.sustained": 0.8})
    (breach,) = judge_level(level, THRESHOLDS)
    assert breach["criterion"] == "max_cpu_pct"
    assert "the Observer itself: 0.4 % of the machine, 0.8 % of one core" in breach["message"]
    (memory,) = judge_level(healthy_level(**{"memory_pct.sustained": 70.0}), THRESHOLDS)
    assert "the Observer itself: 1.0 % of the machine, RSS 40.0 MB" in memory["message"]
    unknown = healthy_level(**{"cpu_pct.sustained": 91.7, "observer_samples": 0})
    assert (
        "the Observer's own CPU was not measured" in judge_level(unknown, THRESHOLDS)[0]["message"]
    )


def four_levels(**overrides_by_rate) -> list[dict]:
    levels = []
    for index, rate in enumerate((5, 10, 25, 50), start=1):
        level = healthy_level(rate=float(rate), **overrides_by_rate.get(str(rate), {}))
        level["level"] = index
        level["sent"] = level["written"] = rate * 180
        levels.append(level)
    return levels


# Read-only (default arguments below): mapping proxies, not dicts.
BASELINE = MappingProxyType(
    {"cpu_pct": {"sustained": 5.0}, "memory_pct": {"sustained": 40.0}, "samples": 10}
)
CLEAN_STOP = MappingProxyType(
    {
        "was_running": True,
        "stopped_cleanly": True,
        "exit_status": 0,
        "elapsed_s": 0.4,
        "timeout_s": 10,
    }
)


def run_verdicts(
    levels,
    baseline=BASELINE,
    recovery=BASELINE,
    shutdown=CLEAN_STOP,
    start_pid=10,
    end_pid=10,
    planned=4,
):
    criteria = judge_run(
        levels,
        planned,
        baseline=baseline,
        recovery=recovery,
        shutdown=shutdown,
        start_pid=start_pid,
        end_pid=end_pid,
    )
    return {c["name"]: c["verdict"] for c in criteria}, criteria


def test_healthy_run_passes_every_criterion():
    verdicts, criteria = run_verdicts(four_levels())
    assert set(verdicts) == {
        "stability",
        "scaling",
        "resources",
        "error_rate",
        "integrity",
        "graceful_degradation",
        "recovery",
        "contract",
        "clean_shutdown",
    }
    assert set(verdicts.values()) == {"PASS"}
    assert all(c["evidence"] for c in criteria)


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        ({"end_pid": 11}, "stability"),
        ({"planned": 5}, "stability"),
        ({"levels": four_levels(**{"25": {"failure": "process failure: died"}})}, "stability"),
        ({"levels": four_levels(**{"50": {"throughput": 44.9}})}, "scaling"),  # 89.8 % of offered
        ({"levels": four_levels(**{"50": {"cpu_pct.sustained": 80.0}})}, "resources"),
        ({"levels": four_levels(**{"50": {"memory_pct.sustained": 85.0}})}, "resources"),
        (
            {"levels": four_levels(**{"10": {"errors": 2}})},
            "error_rate",
        ),  # 2 of 16,200 = 0.012 %... see below
        ({"levels": four_levels(**{"5": {"lost": 1}})}, "integrity"),
        ({"levels": four_levels(**{"50": {"latency_ms.max": 500.1}})}, "graceful_degradation"),
        ({"levels": four_levels(**{"50": {"throughput": 24.9}})}, "graceful_degradation"),
        (
            {"levels": four_levels(**{"50": {"latency_ms.p99": 250.0}})},
            "graceful_degradation",
        ),  # 12.8x jump
        ({"recovery": dict(BASELINE, cpu_pct={"sustained": 15.1})}, "recovery"),
        ({"recovery": dict(BASELINE, memory_pct={"sustained": 45.1})}, "recovery"),
        ({"levels": four_levels(**{"5": {"modified": 1}})}, "contract"),
        ({"levels": four_levels(**{"5": {"extra_fields": ["signal"]}})}, "contract"),
        (
            {
                "shutdown": {
                    "was_running": True,
                    "stopped_cleanly": False,
                    "exit_status": -9,
                    "elapsed_s": 10.0,
                    "timeout_s": 10,
                }
            },
            "clean_shutdown",
        ),
    ],
)
def test_each_run_wide_criterion_fails_on_its_own_evidence(kwargs, failed):
    if failed == "error_rate":
        # 0.1 % of 16,200 snapshots is 16.2 errors: 16 pass, 17 fail.
        levels = four_levels(**{"10": {"errors": 17}})
        assert run_verdicts(four_levels(**{"10": {"errors": 16}}))[0]["error_rate"] == "PASS"
        kwargs = {"levels": levels}
    verdicts, _unused = run_verdicts(**{"levels": four_levels(), **kwargs})
    failures = {name for name, verdict in verdicts.items() if verdict == "FAIL"}
    assert failed in failures
    # A collapse of throughput is also a scaling failure, a modified snapshot both an
    # integrity and a contract failure; everything else fails alone.
    assert failures - {failed} <= {"scaling", "integrity"}


def test_scaling_limit_is_ninety_percent_and_recovery_limits_are_inclusive():
    verdicts, _unused = run_verdicts(four_levels(**{"50": {"throughput": 45.0}}))
    assert verdicts["scaling"] == "PASS"
    exact = {
        "cpu_pct": {"sustained": 5.0 + RUN_LIMITS["recovery_cpu_points"]},
        "memory_pct": {"sustained": 40.0 + RUN_LIMITS["recovery_memory_points"]},
        "samples": 10,
    }
    assert run_verdicts(four_levels(), recovery=exact)[0]["recovery"] == "PASS"


def test_profile_is_the_spec_table():
    full = profile_levels("full")
    assert [(lv["rate"], lv["duration_s"]) for lv in full] == [
        (5, 180),
        (10, 180),
        (25, 180),
        (50, 180),
    ]
    assert sum(lv["rate"] * lv["duration_s"] for lv in full) == 16_200
    assert [lv["thresholds"] for lv in full] == [
        {
            "min_throughput": 4.8,
            "max_latency_ms": 50.0,
            "max_cpu_pct": 40.0,
            "max_memory_pct": 60.0,
        },
        {
            "min_throughput": 9.5,
            "max_latency_ms": 75.0,
            "max_cpu_pct": 60.0,
            "max_memory_pct": 70.0,
        },
        {
            "min_throughput": 23.0,
            "max_latency_ms": 150.0,
            "max_cpu_pct": 75.0,
            "max_memory_pct": 80.0,
        },
        {
            "min_throughput": 45.0,
            "max_latency_ms": 300.0,
            "max_cpu_pct": 80.0,
            "max_memory_pct": 85.0,
        },
    ]
    smoke = profile_levels("smoke")
    assert [lv["rate"] for lv in smoke] == [5, 10, 25, 50] and {
        lv["duration_s"] for lv in smoke
    } == {5}
    assert [lv["thresholds"] for lv in smoke] == [lv["thresholds"] for lv in full]
    with pytest.raises(ValueError, match="stress_profile must be one of capacity, full, smoke"):
        profile_levels("huge")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda lv: lv[0].update(rate=0), "stress_levels[1].rate must be greater than 0, got 0"),
        (lambda lv: lv[1].update(rate=-5), "stress_levels[2].rate must be greater than 0, got -5"),
        (lambda lv: lv[0].update(duration_s="3m"), "stress_levels[1].duration_s must be a number"),
        (lambda lv: lv[0].update(speed=3), "stress_levels[1]: unknown key 'speed'"),
        (
            lambda lv: lv[2]["thresholds"].pop("max_cpu_pct"),
            "stress_levels[3].thresholds: missing threshold 'max_cpu_pct'",
        ),
        (
            lambda lv: lv[0]["thresholds"].update(max_latency=5),
            "stress_levels[1].thresholds: unknown key 'max_latency'",
        ),
        (
            lambda lv: lv[0]["thresholds"].update(max_memory_pct=120),
            "max_memory_pct must be at most 100",
        ),
        (lambda lv: lv[0].pop("thresholds"), "stress_levels[1]: missing key 'thresholds'"),
        (lambda lv: lv[0].update(rate=True), "stress_levels[1].rate must be a number"),
    ],
)
def test_bad_levels_are_named(mutate, message):
    levels = copy.deepcopy(profile_levels("smoke"))
    mutate(levels)
    errors = validate_levels(levels)
    assert any(message in error for error in errors), errors
    with pytest.raises(ValueError, match="stress_levels"):
        resolve_levels("smoke", levels)


def test_valid_override_replaces_the_profile():
    custom = [{"rate": 7, "duration_s": 2, "thresholds": dict(THRESHOLDS)}]
    assert validate_levels(custom) == []
    assert resolve_levels("full", custom) == custom
    assert resolve_levels("smoke", []) == profile_levels("smoke")
    assert validate_levels("5,10") and validate_levels([])


def test_sustained_ignores_single_spikes_and_percentile_is_nearest_rank():
    calm_with_spike = [(float(t), 95.0 if t == 5 else 10.0) for t in range(30)]
    assert sustained(calm_with_spike, 10.0) < 20.0
    held = [(float(t), 85.0 if 10 <= t <= 22 else 10.0) for t in range(40)]
    assert sustained(held, 10.0) == pytest.approx(85.0)
    short = [(0.0, 30.0), (1.0, 50.0)]
    assert sustained(short, 10.0) == pytest.approx(40.0)
    assert sustained([], 10.0) == 0.0
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0


# -- no PASS without evidence ---------------------------------------------------------------

NOTHING_SENT = {"sent": 0, "written": 0, "throughput": 0.0, "latency_ms.p99": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "unmeasured"),
    [
        ({"shutdown": None}, {"clean_shutdown"}),
        ({"shutdown": dict(CLEAN_STOP, was_running=False)}, {"clean_shutdown"}),
        ({"recovery": None}, {"recovery"}),
        ({"recovery": dict(BASELINE, samples=1)}, {"recovery"}),
        ({"baseline": dict(BASELINE, samples=0)}, {"recovery"}),
        ({"start_pid": None, "end_pid": None}, {"stability"}),
        (
            {"levels": [healthy_level(**NOTHING_SENT)], "planned": 1},
            {"scaling", "error_rate", "integrity", "graceful_degradation", "contract"},
        ),
        ({"levels": four_levels(**{"5": {"samples": 0}})}, {"resources"}),
        (
            {"levels": [], "planned": 0},
            {"scaling", "resources", "error_rate", "integrity", "graceful_degradation", "contract"},
        ),
    ],
)
def test_a_criterion_without_data_is_not_measured_never_pass(kwargs, unmeasured):
    verdicts, criteria = run_verdicts(**{"levels": four_levels(), **kwargs})
    assert {n for n, v in verdicts.items() if v == "NOT MEASURED"} == unmeasured
    for criterion in criteria:
        if criterion["verdict"] == "NOT MEASURED":
            assert criterion["evidence"], criterion  # the reason is given


def test_a_level_without_data_is_not_measured_and_judges_nothing_it_lacks():
    quiet = healthy_level(**NOTHING_SENT)
    assert judge_level(quiet, THRESHOLDS) == []
    assert [u["criterion"] for u in level_unmeasured(quiet)] == ["load"]
    no_records = healthy_level(written=0, lost=900, throughput=0.0, **{"latency_ms.p99": 0.0})
    assert [u["criterion"] for u in level_unmeasured(no_records)] == ["latency"]
    assert "integrity_lost" in [b["criterion"] for b in judge_level(no_records, THRESHOLDS)]
    blind = healthy_level(samples=1, **{"cpu_pct.sustained": 99.0})
    assert [u["criterion"] for u in level_unmeasured(blind)] == ["resources"]
    assert "max_cpu_pct" not in [b["criterion"] for b in judge_level(blind, THRESHOLDS)]
    crashed = healthy_level(**NOTHING_SENT, failure="process failure: died")
    assert level_unmeasured(crashed) == []
    assert [b["criterion"] for b in judge_level(crashed, THRESHOLDS)] == ["process_failure"]


# -- run-wide limits are variables ----------------------------------------------------------


def test_run_wide_limits_come_from_stress_limits():
    levels = four_levels(**{"50": {"cpu_pct.sustained": 95.0}})
    assert run_verdicts(levels)[0]["resources"] == "FAIL"
    limits, errors = resolve_limits({"max_cpu_pct": 100, "fail_cpu_pct": 100})
    assert errors == []
    verdicts = {
        c["name"]: c["verdict"]
        for c in judge_run(
            levels,
            4,
            baseline=BASELINE,
            recovery=BASELINE,
            shutdown=CLEAN_STOP,
            start_pid=1,
            end_pid=1,
            limits=limits,
        )
    }
    assert verdicts["resources"] == "PASS"
    recovery = dict(BASELINE, cpu_pct={"sustained": 60.0})
    lax, _unused = resolve_limits({"recovery_cpu_points": 100})
    criteria = judge_run(
        four_levels(),
        4,
        baseline=BASELINE,
        recovery=recovery,
        shutdown=CLEAN_STOP,
        start_pid=1,
        end_pid=1,
        limits=lax,
    )
    assert {c["name"]: c["verdict"] for c in criteria}["recovery"] == "PASS"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_cpu": 90}, "stress_limits: unknown limit 'max_cpu'"),
        ({"max_cpu_pct": 120}, "stress_limits.max_cpu_pct must be at most 100"),
        ({"max_cpu_pct": "high"}, "stress_limits.max_cpu_pct must be a number"),
        ({"scaling_min_ratio": 1.5}, "stress_limits.scaling_min_ratio must be at most 1"),
        ({"warn_cpu_pct": 85}, "warn_cpu_pct (85) must not be above max_cpu_pct (80)"),
        ("lots", "stress_limits must be a mapping"),
    ],
)
def test_bad_limits_are_named(overrides, message):
    _unused, errors = resolve_limits(overrides)
    assert any(message in error for error in errors), errors


def test_windows_that_cannot_be_measured_are_refused():
    smoke, errors = resolve_timings("smoke", {})
    assert errors == [] and window_errors(profile_levels("smoke"), smoke) == []
    full, _unused = resolve_timings("full", {})
    assert window_errors(profile_levels("full"), full) == []
    assert PROFILE_TIMINGS["smoke"]["duration_s"] >= PROFILE_TIMINGS["smoke"]["sustained_window_s"]
    long_window, _unused = resolve_timings("smoke", {"sustained_window_s": 10})
    errors = window_errors(profile_levels("smoke"), long_window)
    assert any(
        "stress_levels[1].duration_s (5 s) is shorter than the sustained window" in e
        for e in errors
    )
    assert any("stress_setup_wait_s (5 s)" in e for e in errors)
    assert any("stress_final_cooldown_s (10 s) must be at least twice" in e for e in errors)
    tiny, _unused = resolve_timings("smoke", {"sustained_window_s": 1})
    assert "at least 4 s" in window_errors(profile_levels("smoke"), tiny)[0]
    _unused, errors = resolve_timings("smoke", {"cooldown_s": -1, "speed": 2})
    assert any("stress_cooldown_s must be a number of seconds" in e for e in errors)
    assert any("unknown key 'speed'" in e for e in errors)


def test_a_limit_of_100_percent_is_no_limit():
    """A saturated machine reads exactly 100 %: with the limit at 100 (examples/lab-levels.json)
    it must not fail, or the raised limit would still fail every busy run."""
    saturated = healthy_level(**{"cpu_pct.sustained": 100.0, "memory_pct.sustained": 100.0})
    lax = dict(THRESHOLDS, max_cpu_pct=100.0, max_memory_pct=100.0)
    assert judge_level(saturated, lax) == []
    assert [b["criterion"] for b in judge_level(saturated, dict(lax, max_cpu_pct=99.9))] == [
        "max_cpu_pct"
    ]
    limits, _unused = resolve_limits({"max_cpu_pct": 100, "max_memory_pct": 100})
    levels = four_levels(**{"50": {"cpu_pct.sustained": 100.0}})
    criteria = judge_run(
        levels, 4, baseline=BASELINE, recovery=BASELINE, shutdown=CLEAN_STOP,
        start_pid=1, end_pid=1, limits=limits,
    )  # fmt: skip
    assert {c["name"]: c["verdict"] for c in criteria}["resources"] == "PASS"


def test_a_judged_level_carries_its_figures_verdict_and_one_line_naming_each_breach():
    figures = with_changes(healthy_figures(5.0, 180), **{"latency_ms.p99": 61.2})
    level, line = judged_level(3, figures, THRESHOLDS, None)
    assert level["level"] == 3 and level["thresholds"] == THRESHOLDS
    assert level["verdict"] == "FAIL" and level["sent"] == 900
    assert [b["criterion"] for b in level["breaches"]] == ["max_latency_ms"]
    assert line == "level 3 (5/s) FAIL: " + level["breaches"][0]["message"]
    assert judged_level(1, healthy_figures(5.0, 180), THRESHOLDS, None)[1] == "level 1 (5/s) PASS"


@pytest.mark.parametrize(
    ("figures", "thresholds", "named"),
    [
        ({"rate": 5.0}, THRESHOLDS, "metrics lack sent, written"),
        (healthy_figures(5.0, 180), {"min_throughput": 4.8}, "thresholds lack max_latency_ms"),
    ],
)
def test_incomplete_gate_input_is_refused_and_named(figures, thresholds, named):
    with pytest.raises(GateInputError, match=named):
        judged_level(1, figures, thresholds, None)


def test_a_judged_run_combines_its_levels_and_criteria_and_names_what_did_not_pass():
    inputs = {"baseline": BASELINE, "recovery": BASELINE, "shutdown": CLEAN_STOP,
              "start_pid": 10, "end_pid": 10}  # fmt: skip
    host, line = judged_run(four_levels(), 4, **inputs)
    assert host["verdict"] == "PASS" and line == "run-wide verdict PASS"
    assert host["observer"] == {"pid_start": 10, "pid_end": 10}
    assert {c["name"] for c in host["criteria"]} == set(run_verdicts(four_levels())[0])

    host, line = judged_run(four_levels(), 4, **dict(inputs, end_pid=11))
    assert host["verdict"] == "FAIL"
    assert line.startswith("run-wide verdict FAIL: stability FAIL: ")
    # A level not measured is never a PASS: the run is NOT MEASURED, and says which level.
    levels = four_levels()
    levels[1] = dict(levels[1], verdict="NOT MEASURED")
    host, line = judged_run(levels, 4, **inputs)
    assert host["verdict"] == "NOT MEASURED"
    assert "level 2 (10/s): NOT MEASURED" in line


@pytest.mark.parametrize(
    ("parts", "whole"),
    [
        ([], "PASS"),
        (["PASS", "PASS"], "PASS"),
        (["PASS", "NOT MEASURED"], "NOT MEASURED"),
        (["NOT MEASURED", "FAIL", "PASS"], "FAIL"),
    ],
)
def test_fail_beats_not_measured_beats_pass(parts, whole):
    assert combine(parts) == whole
    assert passed(combine(parts)) is (whole == "PASS")
