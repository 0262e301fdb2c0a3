"""The capacity search's logic: how a step is judged, how the bracket is narrowed, when the
search ends, and how its result is judged. Steps are the figures the load and measure
modules return; the real search against real Observers is in tests/e2e/test_capacity_search.py."""

from __future__ import annotations

import pytest
from ansible_collections.qts.observer.plugins.module_utils import capacity
from ansible_collections.qts.observer.plugins.module_utils.gate import judge_run, judge_step
from ansible_collections.qts.observer.plugins.module_utils.profile import RUN_LIMITS
from ansible_collections.qts.observer.plugins.plugin_utils.plan import plan_run

pytestmark = pytest.mark.unit

SETTINGS, _unused = capacity.resolve_settings({})
LENIENT = {**RUN_LIMITS, "fail_cpu_pct": 100.0, "fail_memory_pct": 100.0}


def step_run(
    rate: float,
    *,
    limit: float,
    generator: float = 1e9,
    p99: float = 1.0,
    lost: int = 0,
    cpu: float = 10.0,
    failure: str | None = None,
    planned_s: float = 10.0,
) -> tuple[dict, dict]:
    """What the modules report of a step at ``rate`` against an Observer reading at most
    ``limit``/s and a generator producing at most ``generator``/s."""  # fmt: skip
    sent = round(rate * planned_s)
    delivered = min(rate, limit, generator)
    sending = sent / delivered
    # A reader slower than the offer fills the pipe: the generator waits on it.
    blocked = sending - planned_s if limit < min(rate, generator) else 0.0
    load = {
        "started_at": 1000.0, "finished_at": 1000.0 + sending, "sent": sent,
        "achieved_rate": round(delivered, 3), "blocked_s": max(blocked, 0.0),
        # Behind the schedule by the end: as late as the sending took longer than planned.
        "lateness_ms": {"p50": 0.1, "p95": 0.2, "p99": max(0.5, (sending - planned_s) * 900),
                        "max": max(1.0, (sending - planned_s) * 1000)},
        "generator_cpu_pct": 5.0, "failure": failure,
    }  # fmt: skip
    measured = {
        "sent": sent, "written": sent - lost, "lost": lost, "duplicated": 0, "modified": 0,
        "latency_ms": {"p50": p99 / 2, "p95": p99, "p99": p99, "max": p99 * 2},
        "latency_source": "records (latency_ms)", "samples": 8,
        "cpu_pct": {"sustained": cpu, "peak": cpu}, "memory_pct": {"sustained": 20.0, "peak": 20.0},
        "errors": 0, "error_rate_pct": 0.0, "decision_fields": [], "extra_fields": [],
        "buffer_depth_max": 10,
    }  # fmt: skip
    return measured, load


def search(settings: dict | None = None, limits: dict | None = None, **observer) -> dict:
    """Run the search to its end against the modelled Observer; the clock advances by each
    step's cost."""
    state = capacity.start(settings or SETTINGS, limits or LENIENT, 4, "T", now=0.0)
    clock = 0.0
    while not state["done"]:
        step = state["next"]
        measured, load = step_run(step["rate"], planned_s=step["warmup_s"] + step["step_s"],
                                  **observer)  # fmt: skip
        clock += step["warmup_s"] + step["step_s"] + 10.0
        state = capacity.record(state, measured, load, now=clock)
    return state


@pytest.mark.parametrize("limit", [2000.0, 137.0, 64000.0])
def test_the_search_finds_a_known_limit_within_the_precision(limit):
    state = search(limit=limit)
    result = state["result"]
    assert result["ending"] == "narrowed"
    assert result["limited_by"] == "throughput"
    best, failing = result["highest_sustainable_rate"], result["first_failing_rate"]
    assert best <= limit < failing
    assert (failing - best) / ((failing + best) / 2) <= 0.10
    assert abs(best - limit) / limit <= 0.10
    assert result["failed_how"] == "graceful degradation"
    # The curve holds every step, by offered rate; steps are levels after the fixed ones.
    rates = [point["rate"] for point in result["curve"]]
    assert rates == sorted(rates) and len(rates) == result["steps"] == len(state["steps"])
    assert [s["level"] for s in state["steps"]] == list(range(5, 5 + len(state["steps"])))
    assert state["steps"][0]["rate"] == SETTINGS["start_rate"]


def test_a_generator_that_cannot_keep_up_ends_the_search_as_generator_bound():
    result = search(limit=50000.0, generator=7000.0)["result"]
    assert result["ending"] == "generator"
    assert result["limited_by"] == "generator"
    assert result["summary"] == "limited by the load generator at 7000/s"
    # The highest sustainable rate is what was measured, never the generator's ceiling
    # passed off as the Observer's.
    assert result["highest_sustainable_rate"] == 6400.0


def _judge_step(step: dict) -> tuple[list[dict], list[dict]]:
    """A step judged by the gate as the search judges it."""
    limits = dict(LENIENT, max_error_rate_pct=SETTINGS["max_error_rate_pct"])
    thresholds = capacity.step_thresholds(step["rate"], SETTINGS, LENIENT)
    return judge_step(step, thresholds, limits, SETTINGS)


def test_back_pressure_is_the_observer_and_an_empty_pipe_is_the_generator():
    slow_observer = capacity.step_figures(*step_run(4000, limit=2000), {
        "step": 1, "level": 1, "phase": "ramp", "rate": 4000, "warmup_s": 2, "step_s": 8})  # fmt: skip
    breaches, _unused = _judge_step(slow_observer)
    assert [b["criterion"] for b in breaches][:1] == ["min_throughput"]
    assert "back-pressure" in breaches[0]["message"]
    slow_generator = capacity.step_figures(*step_run(4000, limit=9000, generator=2000), {
        "step": 1, "level": 1, "phase": "ramp", "rate": 4000, "warmup_s": 2, "step_s": 8})  # fmt: skip
    breaches, _unused = _judge_step(slow_generator)
    assert breaches[0]["criterion"] == "generator"
    assert "only 0.00 s of it waiting on the pipe" in breaches[0]["message"]


@pytest.mark.parametrize(
    ("observer", "criterion"),
    [
        ({"p99": 400.0}, "latency"),
        ({"lost": 3}, "integrity"),
        ({"cpu": 99.0}, "cpu"),
        ({"failure": "process failure: the Observer (pid 7) died"}, "stability"),
    ],
)
def test_each_criterion_limits_the_search_and_is_named(observer, criterion):
    def fails_above(rate: float, **kwargs) -> tuple[dict, dict]:
        return step_run(rate, limit=1e9, **(observer if rate > 900 else {}))

    state = capacity.start(SETTINGS, RUN_LIMITS, 0, "T", now=0.0)
    while not state["done"]:
        measured, load = fails_above(state["next"]["rate"])
        state = capacity.record(state, measured, load, now=1.0)
    result = state["result"]
    assert result["limited_by"] == criterion
    assert result["highest_sustainable_rate"] <= 900 < result["first_failing_rate"]
    if criterion == "stability":
        assert result["ending"] == "crash" and result["failed_how"] == "collapse"


def test_the_search_is_bounded_by_time_and_by_the_highest_rate():
    timed = search(dict(SETTINGS, max_total_s=120.0), limit=1e9)["result"]
    assert timed["ending"] == "time"
    assert timed["duration_s"] <= 120.0 or timed["steps"] >= 1
    capped = search(dict(SETTINGS, max_rate=1000.0), limit=1e9)["result"]
    assert capped["ending"] == "max_rate"
    assert capped["highest_sustainable_rate"] == 1000.0 and capped["limited_by"] is None


def test_nothing_sustainable_even_at_one_per_second_says_so():
    result = search(limit=0.5)["result"]
    assert result["ending"] == "none" and result["highest_sustainable_rate"] is None


def test_high_rates_shorten_the_step_but_keep_two_measured_seconds():
    assert capacity.step_timing(100, SETTINGS) == {"warmup_s": 2.0, "step_s": 8.0}
    fast = capacity.step_timing(100000, SETTINGS)
    assert fast["step_s"] == capacity.MIN_STEP_S and fast["warmup_s"] >= capacity.MIN_WARMUP_S
    assert (fast["warmup_s"] + fast["step_s"]) * 100000 <= 2.5 * SETTINGS["max_step_snapshots"]


def test_unmeasured_latency_is_reported_never_passed_off():
    measured, load = step_run(100, limit=1e9)
    measured["latency_ms"] = None
    step = capacity.step_figures(measured, load, {
        "step": 1, "level": 1, "phase": "ramp", "rate": 100, "warmup_s": 2, "step_s": 8})  # fmt: skip
    breaches, unmeasured = _judge_step(step)
    assert breaches == [] and [u["criterion"] for u in unmeasured] == ["latency"]


def _judge(state: dict, floor: float = 0.0) -> dict:
    criteria = judge_run([], 0, baseline=None, recovery=None, shutdown=None, start_pid=1,
                         end_pid=1, capacity=state, min_capacity=floor)  # fmt: skip
    return {c["name"]: c for c in criteria}


def test_the_run_judges_the_result_against_the_floor():
    state = search(limit=2000.0)
    judged = _judge(state)
    assert judged["capacity"]["verdict"] == "PASS"
    # A search alone has no fixed level for scaling, resources or degradation: not judged.
    assert not {"scaling", "resources", "error_rate", "graceful_degradation"} & set(judged)
    assert judged["integrity"]["verdict"] == "PASS"
    under = _judge(state, floor=5000.0)["capacity"]
    assert under["verdict"] == "FAIL" and under["limit"] == 5000.0
    generator_bound = search(limit=50000.0, generator=3000.0)
    assert _judge(generator_bound, floor=5000.0)["capacity"]["verdict"] == "NOT MEASURED"
    assert _judge({"steps": []})["capacity"]["verdict"] == "NOT MEASURED"


def test_a_lost_snapshot_in_any_step_fails_integrity():
    state = search(limit=2000.0)
    state["steps"][0]["lost"] = 1
    assert _judge(state)["integrity"]["verdict"] == "FAIL"


def _plan(**params) -> tuple[dict, list[str]]:
    base = {"profile": "smoke", "levels": [], "timings": {}, "limits": {}, "settings": {},
            "hosts": ["h"], "forks": 5, "interface": None, "run_id": None, "seed": 0,
            "artifacts_dir": "/tmp/qts-plan-test", "capacity": {}}  # fmt: skip
    return plan_run({**base, **params})


def test_the_plan_appends_the_search_or_runs_it_alone_and_refuses_bad_settings():
    alone, errors = _plan(profile="capacity")
    assert errors == [] and alone["levels"] == [] and alone["capacity"]["level_base"] == 0
    after, errors = _plan(settings={"capacity_search": "yes", "min_capacity": 1000})
    assert errors == [] and after["capacity"]["level_base"] == 4
    assert after["capacity"]["min_capacity"] == 1000
    assert _plan()[0]["capacity"] is None
    _unused, errors = _plan(
        profile="capacity", capacity={"start_rat": 5, "growth": 1, "max_rate": -1}
    )
    assert any("unknown key 'start_rat'" in e for e in errors)
    assert any("stress_capacity.growth must be a number > 1" in e for e in errors)
    assert any("stress_capacity.max_rate" in e for e in errors)


def test_a_step_is_judged_by_the_gate_in_the_levels_words():
    """One vocabulary: a step's breaches are the gate's criteria with the step's thresholds as
    limits, and what limited the search is named from them."""
    measured, load = step_run(1000, limit=1e9, p99=400.0, cpu=99.0, lost=2)
    step = capacity.step_figures(measured, load, {
        "step": 1, "level": 5, "phase": "ramp", "rate": 1000, "warmup_s": 2, "step_s": 8})  # fmt: skip
    breaches, _unused = judge_step(
        step,
        capacity.step_thresholds(1000, SETTINGS, RUN_LIMITS),
        dict(RUN_LIMITS, max_error_rate_pct=SETTINGS["max_error_rate_pct"]),
        SETTINGS,
    )
    named = {b["criterion"]: b for b in breaches}
    assert list(named) == ["integrity_lost", "max_latency_ms", "max_cpu_pct"]
    assert named["max_latency_ms"]["limit"] == SETTINGS["max_latency_ms"] == 300.0
    # The generator's share is left out of the Observer's CPU, judged on the fail signal.
    assert named["max_cpu_pct"]["measured"] == 94.0
    assert named["max_cpu_pct"]["limit"] == RUN_LIMITS["fail_cpu_pct"]


def test_how_the_first_failing_step_failed_is_the_runs_collapse_rule():
    """The run's collapse signs, each alone, make a failing step a collapse."""

    def failing_above_2000(rate: float, latency: dict) -> tuple[dict, dict]:
        measured, load = step_run(rate, limit=2000.0)
        if rate > 2000.0:
            measured["latency_ms"] = latency
        return measured, load

    def failed_how(latency: dict) -> str:
        state = capacity.start(SETTINGS, RUN_LIMITS, 0, "T", now=0.0)
        while not state["done"]:
            measured, load = failing_above_2000(state["next"]["rate"], latency)
            state = capacity.record(state, measured, load, now=1.0)
        assert state["result"]["limited_by"] == "throughput"
        return state["result"]["failed_how"]

    # A latency over the fail signal (500 ms) with a p99 that barely moved (40 ms).
    assert failed_how({"p50": 20.0, "p95": 30.0, "p99": 40.0, "max": 600.0}) == "collapse"
    # A p99 over ten times the step below's (1 ms) and over 50 ms, its max under 500 ms.
    assert failed_how({"p50": 20.0, "p95": 50.0, "p99": 60.0, "max": 90.0}) == "collapse"
    # Neither: a graceful degradation.
    assert failed_how({"p50": 1.0, "p95": 2.0, "p99": 3.0, "max": 6.0}) == "graceful degradation"


def test_random_arrivals_are_judged_against_what_their_schedule_drew():
    poisson, errors = capacity.resolve_settings({"arrivals": "poisson"})
    assert errors == [] and poisson["arrivals"] == "poisson" and SETTINGS["arrivals"] == "constant"
    _unused, errors = capacity.resolve_settings({"arrivals": "wave"})
    assert errors == ["stress_capacity.arrivals must be one of constant, poisson, got 'wave'"]
    # A step at 1000/s whose random arrivals drew 3 % fewer than rate x duration, every one
    # sent on time: its generator delivered what was offered.
    state = capacity.start(poisson, LENIENT, 0, "T", now=0.0)
    plan = state["next"]
    length = plan["warmup_s"] + plan["step_s"]
    measured, load = step_run(plan["rate"], limit=1e9, planned_s=length)
    drawn = round(0.97 * plan["rate"] * length)
    measured.update(sent=drawn, written=drawn)
    load.update(sent=drawn, planned=drawn, achieved_rate=round(drawn / length, 3),
                finished_at=load["started_at"] + length)  # fmt: skip
    step = capacity.step_figures(measured, load, plan)
    limits = dict(LENIENT, max_error_rate_pct=0.1)
    thresholds = capacity.step_thresholds(plan["rate"], poisson, LENIENT)
    breaches, _unused = judge_step(step, thresholds, limits, poisson)
    assert breaches == []
    # The same figures from an even schedule, which always offers the rate: 3 % short.
    breaches, _unused = judge_step(step, thresholds, limits, SETTINGS)
    assert breaches[0]["criterion"] == "generator"


def test_a_step_of_random_arrivals_runs_as_a_poisson_level_without_the_follower():
    from ansible_collections.qts.observer.plugins.action.stress_capacity import ActionModule

    poisson, _unused = capacity.resolve_settings({"arrivals": "poisson"})
    plan = capacity.start(poisson, LENIENT, 0, "T", now=0.0)["next"]
    args = {"settings": poisson, "work_dir": "/w", "settle_s": 10.0}
    step = ActionModule._step_args(args, plan)
    assert step["shape"] == {"type": "poisson"} and step["follow_records"] is False
    assert step["rate"] == plan["rate"] and step["ledger"] == "/w/C1.sent.jsonl"
    assert ActionModule._step_args(dict(args, settings=SETTINGS), plan)["shape"] is None
