"""The gate's every criterion, table-driven at and around each limit, and the profile."""

from __future__ import annotations

import copy

import pytest
from ansible_collections.qts.observer.plugins.module_utils import gate
from ansible_collections.qts.observer.plugins.module_utils.gate import judge_level, judge_run
from ansible_collections.qts.observer.plugins.module_utils.profile import (
    profile_levels,
    resolve_levels,
    validate_levels,
)
from ansible_collections.qts.observer.plugins.module_utils.stats import percentile, sustained

THRESHOLDS = {
    "min_throughput": 4.8,
    "max_latency_ms": 50.0,
    "max_cpu_pct": 40.0,
    "max_memory_pct": 60.0,
}


def healthy_level(rate: float = 5.0, **changes) -> dict:
    level = {
        "level": 1,
        "rate": rate,
        "sent": 900,
        "written": 900,
        "lost": 0,
        "duplicated": 0,
        "modified": 0,
        "extra_fields": [],
        "throughput": rate,
        "latency_ms": {"p50": 8.0, "p95": 18.0, "p99": 19.5, "max": 20.5},
        "cpu_pct": {"sustained": 10.0, "peak": 15.0},
        "memory_pct": {"sustained": 40.0, "peak": 41.0},
        "errors": 0,
        "error_rate_pct": 0.0,
        "failure": None,
        "verdict": "PASS",
    }
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            level[outer] = dict(level[outer], **{inner: value})
        else:
            level[key] = value
    return level


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


def four_levels(**overrides_by_rate) -> list[dict]:
    levels = []
    for index, rate in enumerate((5, 10, 25, 50), start=1):
        level = healthy_level(rate=float(rate), **overrides_by_rate.get(str(rate), {}))
        level["level"] = index
        level["sent"] = level["written"] = rate * 180
        levels.append(level)
    return levels


BASELINE = {"cpu_pct": {"sustained": 5.0}, "memory_pct": {"sustained": 40.0}}
CLEAN_STOP = {"stopped_cleanly": True, "exit_status": 0, "elapsed_s": 0.4, "timeout_s": 10}


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
        (
            {"recovery": {"cpu_pct": {"sustained": 15.1}, "memory_pct": {"sustained": 40.0}}},
            "recovery",
        ),
        (
            {"recovery": {"cpu_pct": {"sustained": 5.0}, "memory_pct": {"sustained": 45.1}}},
            "recovery",
        ),
        ({"recovery": None}, "recovery"),
        ({"levels": four_levels(**{"5": {"modified": 1}})}, "contract"),
        ({"levels": four_levels(**{"5": {"extra_fields": ["signal"]}})}, "contract"),
        (
            {
                "shutdown": {
                    "stopped_cleanly": False,
                    "exit_status": -9,
                    "elapsed_s": 10.0,
                    "timeout_s": 10,
                }
            },
            "clean_shutdown",
        ),
        ({"shutdown": None}, "clean_shutdown"),
    ],
)
def test_each_run_wide_criterion_fails_on_its_own_evidence(kwargs, failed):
    if failed == "error_rate":
        # 0.1 % of 16,200 snapshots is 16.2 errors: 16 pass, 17 fail.
        levels = four_levels(**{"10": {"errors": 17}})
        assert run_verdicts(four_levels(**{"10": {"errors": 16}}))[0]["error_rate"] == "PASS"
        kwargs = {"levels": levels}
    verdicts, _ = run_verdicts(**{"levels": four_levels(), **kwargs})
    failures = {name for name, verdict in verdicts.items() if verdict == "FAIL"}
    assert failed in failures
    # A collapse of throughput is also a scaling failure, a modified snapshot both an
    # integrity and a contract failure; everything else fails alone.
    assert failures - {failed} <= {"scaling", "integrity"}


def test_scaling_limit_is_ninety_percent_and_recovery_limits_are_inclusive():
    verdicts, _ = run_verdicts(four_levels(**{"50": {"throughput": 45.0}}))
    assert verdicts["scaling"] == "PASS"
    exact = {
        "cpu_pct": {"sustained": 5.0 + gate.RECOVERY_CPU_POINTS},
        "memory_pct": {"sustained": 40.0 + gate.RECOVERY_MEMORY_POINTS},
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
    with pytest.raises(ValueError, match="stress_profile must be one of full, smoke"):
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
