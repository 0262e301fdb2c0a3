"""Load shapes: their schedules (seeded poisson arrivals, bursts), the shape the generator
delivered on a real named pipe, and the gate's rule that a shape the generator could not
deliver is NOT MEASURED, never a FAIL of the Observer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.qts.observer.plugins.module_utils.capture import replay_timing
from ansible_collections.qts.observer.plugins.module_utils.gate import judge_run, judged_level
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.profile import validate_levels
from ansible_collections.qts.observer.plugins.module_utils.shapes import (
    Schedule,
    delivery,
    schedule,
    shape_errors,
)
from ansible_collections.qts.observer.plugins.plugin_utils.replay import replay_level
from captures import write_capture
from figures import healthy_figures
from scipy import stats
from test_generator_and_load import PipeReader

pytestmark = pytest.mark.unit

COLLECTIONS = Path(__file__).resolve().parents[2] / "build" / "collections"
BURST = {"type": "burst", "size": 100, "window_ms": 10, "period_s": 5}
THRESHOLDS = {"min_throughput": 4.8, "max_latency_ms": 50.0, "max_cpu_pct": 40.0,
              "max_memory_pct": 60.0}  # fmt: skip


def gaps(offsets) -> list[float]:
    return [b - a for a, b in zip(offsets, offsets[1:])]


def test_a_seeded_poisson_levels_gaps_fit_an_exponential_at_the_mean_rate():
    drawn = schedule({"type": "poisson"}, 50.0, 600.0, "7:1").offsets
    # About rate x duration arrivals (30,000; the count is random: 3 standard deviations).
    assert abs(len(drawn) - 30_000) < 3 * 30_000**0.5
    # Kolmogorov-Smirnov against the exponential of mean 1/rate: no reason to reject it.
    fit = stats.kstest(gaps(drawn), "expon", args=(0, 1 / 50.0))
    assert fit.pvalue > 0.01, fit
    # The same test rejects what is not random arrivals: the constant schedule's even gaps,
    # and poisson arrivals at another rate.
    even = schedule(None, 50.0, 600.0, "7:1").offsets
    assert stats.kstest(gaps(even), "expon", args=(0, 1 / 50.0)).pvalue < 1e-6
    assert stats.kstest(gaps(drawn), "expon", args=(0, 1 / 40.0)).pvalue < 1e-6
    # Seeded: the same seed and level draw the same arrivals, another level others.
    assert schedule({"type": "poisson"}, 50.0, 600.0, "7:1").offsets == drawn
    assert schedule({"type": "poisson"}, 50.0, 600.0, "7:2").offsets != drawn


def test_a_burst_shape_adds_its_bursts_to_the_base_rate_each_due_within_its_window():
    plan = schedule(BURST, 10.0, 12.0, "1:1")
    # The base: 10/s for 12 s; bursts at 2.5, 7.5 (half a period, then every period).
    assert plan.total == 120 + 2 * 100
    assert [start for start, _unused in plan.bursts] == [2.5, 7.5]
    for start, members in plan.bursts:
        due = [plan.offsets[i] for i in members]
        assert len(due) == 100 and start <= min(due) and max(due) < start + 0.010
    assert list(plan.offsets) == sorted(plan.offsets)
    # The constant schedule is n times the interval, as it always was.
    assert list(schedule(None, 3.0, 2.0, "1:1").offsets) == [n * (1 / 3.0) for n in range(6)]
    first = schedule(dict(BURST, first_at_s=0.0), 10.0, 12.0, "1:1")
    assert [start for start, _unused in first.bursts] == [0.0, 5.0, 10.0]


@pytest.mark.parametrize(
    ("shape", "named"),
    [
        (
            {"type": "wave"},
            "shape.type must be one of constant, poisson, burst, replay, got 'wave'",
        ),
        ({"type": "burst", "size": 10, "window_ms": 5}, "a burst needs 'period_s'"),
        (dict(BURST, size=0), "shape.size must be a whole number of snapshots, 1 or more"),
        (dict(BURST, window_ms=6000), "window_ms (6000 ms) must fit within its period_s (5 s)"),
        (dict(BURST, first_at_s=-1), "shape.first_at_s must be a number 0 or more"),
        ({"type": "poisson", "size": 3}, "unknown key 'size' for a poisson shape"),
        ("burst", "shape must be a mapping with a type"),
    ],
)
def test_a_bad_shape_is_named_with_its_level(shape, named):
    level = {"rate": 5, "duration_s": 10, "shape": shape, "thresholds": THRESHOLDS}
    errors = validate_levels([level])
    assert any(error.startswith("stress_levels[1]") and named in error for error in errors), errors
    assert shape_errors(None, "x") == [] and shape_errors({"type": "poisson"}, "x") == []


def test_the_delivered_shape_is_counted_per_window_against_the_intended_one():
    constant = schedule(None, 100.0, 10.0, "1:1")
    figures = delivery(constant, constant.offsets, 10.0, {})
    assert figures["offered"]["10ms"] == {"peak": 1, "dispersion": 0.0}
    random_arrivals = schedule({"type": "poisson"}, 100.0, 60.0, "1:1")
    dispersion = delivery(random_arrivals, random_arrivals.offsets, 60.0, {})
    assert 0.9 < dispersion["offered"]["10ms"]["dispersion"] < 1.1
    bursts = schedule(BURST, 10.0, 10.0, "1:1")
    # Sent as a lump 30 ms after the burst was due: delivered later than offered, and its
    # time to the last snapshot says so.
    sent = [t + 0.030 if i in bursts.burst_of else t for i, t in enumerate(bursts.offsets)]
    figures = delivery(bursts, sent, 10.0, {0: 0.025})
    # The burst's 100 and the base snapshot due at 2.5 s, in the same 10 ms and 1 ms windows.
    assert figures["offered"]["10ms"]["peak"] == 101 and figures["offered"]["1ms"]["peak"] == 11
    assert figures["offered"]["10ms"]["dispersion"] > 50
    first, second = figures["bursts"]
    assert first["size"] == first["sent"] == 100 and second["due_at_s"] == 7.5
    assert 39.8 < first["delivered_ms"] < 40.0 and first["blocked_ms"] == 25.0
    assert second["blocked_ms"] == 0.0


def bound_level(**changes) -> dict:
    figures = dict(
        healthy_figures(10.0, 10.0),
        send_lateness_ms={"p50": 0.1, "p95": 0.2, "p99": 0.3, "max": 450.0},
        blocked_s=0.0,
        sending_s=10.0,
        shape=BURST,
        delivery={
            "burst_window_ms": 10.0,
            "bursts": [
                {
                    "burst": 1,
                    "due_at_s": 5.0,
                    "size": 100,
                    "sent": 100,
                    "delivered_ms": 450.0,
                    "blocked_ms": 0.0,
                }
            ],
        },
    )
    figures.update(changes)
    return figures


def test_a_burst_the_generator_could_not_deliver_is_not_measured_never_a_fail():
    # Its burst took 450 ms, 440 past its window and none of it waiting on the pipe; the
    # Observer wrote too little meanwhile, which is not its failure at this level.
    level, line = judged_level(1, bound_level(throughput=2.0), THRESHOLDS, {})
    assert level["verdict"] == "NOT MEASURED", line
    assert level["breaches"] == []
    (unmeasured,) = level["not_measured"]
    assert unmeasured["criterion"] == "delivery"
    assert "could not deliver burst 1: 100 snapshots due within 10 ms took 450.0 ms" in line
    # What is the Observer's whatever the load: a lost snapshot still fails the level.
    lost, _unused = judged_level(1, bound_level(lost=1), THRESHOLDS, {})
    assert lost["verdict"] == "FAIL" and lost["breaches"][0]["criterion"] == "integrity_lost"
    # Within the bound (a looser one, from stress_limits), the level is judged as any other.
    judged, _unused = judged_level(
        1, bound_level(throughput=2.0), THRESHOLDS, {"generator_max_burst_overrun_ms": 500.0}
    )
    assert judged["verdict"] == "FAIL" and judged["breaches"][0]["criterion"] == "min_throughput"


def test_a_late_burst_held_back_by_a_full_pipe_is_the_observers_doing():
    delivered = bound_level(throughput=2.0)
    delivered["delivery"]["bursts"][0]["blocked_ms"] = 400.0
    level, _unused = judged_level(1, delivered, THRESHOLDS, {})
    assert level["verdict"] == "FAIL" and not level["generator_bound"]


def test_a_generator_behind_its_schedule_by_itself_is_not_measured_with_a_full_pipe_judged():
    late = bound_level(
        shape={"type": "constant"},
        delivery={},
        send_lateness_ms={"p50": 900.0, "p95": 1500.0, "p99": 1800.0, "max": 2000.0},
        sending_s=12.0,
        throughput=2.0,
    )
    level, line = judged_level(1, late, THRESHOLDS, {})
    assert level["verdict"] == "NOT MEASURED"
    assert "could not keep its schedule: send lateness p99 1800.0 ms (bound 1000 ms)" in line
    level, _unused = judged_level(1, dict(late, blocked_s=1.9), THRESHOLDS, {})
    assert level["verdict"] == "FAIL" and level["generator_bound"] == ""


def test_run_wide_criteria_leave_out_a_level_the_generator_did_not_deliver():
    healthy = [dict(healthy_figures(rate, 10.0), level=i, generator_bound="", verdict="PASS")
               for i, rate in enumerate((5.0, 10.0), start=1)]  # fmt: skip
    starved = dict(healthy_figures(50.0, 10.0), level=3, throughput=5.0, verdict="NOT MEASURED",
                   generator_bound="the load generator could not deliver burst 1")  # fmt: skip
    starved["cpu_pct"] = {"sustained": 99.0, "peak": 99.0}
    criteria = {
        c["name"]: c
        for c in judge_run(
            [*healthy, starved], 3, baseline=None, recovery=None, shutdown=None,
            start_pid=1, end_pid=1,
        )
    }  # fmt: skip
    scaling = criteria["scaling"]
    assert scaling["verdict"] == "NOT MEASURED", scaling
    assert "not measured at 50/s (the load generator did not deliver" in scaling["evidence"]
    # The machine's CPU is judged whatever the generator did: 99 % fails it.
    assert criteria["resources"]["verdict"] == "FAIL", criteria["resources"]
    assert criteria["integrity"]["verdict"] == "PASS"


@pytest.mark.process
def test_a_burst_level_delivers_its_bursts_and_the_ledger_shows_them(tmp_path, sleeper):
    reader = PipeReader(str(tmp_path / "in.fifo"))
    fd = open_pipe(reader.path)
    shape = {"type": "burst", "size": 300, "window_ms": 10, "period_s": 1.5}
    plan = LevelPlan(rate=20, duration_s=3, seed=1, level=1, run_tag="B", shape=shape)
    ledger = tmp_path / "ledger.jsonl"
    outcome = inject(plan, fd, ProcessWatch(sleeper.pid), str(ledger))
    os.close(fd)
    reader.close()
    assert outcome.failure is None and outcome.sent == 60 + 2 * 300
    received = [line for _unused, line in reader.arrivals]
    assert received == ledger.read_bytes().splitlines()
    # The ledger's send times: every snapshot's intended and actual time, in order.
    header, *rows = (ledger.parent / "ledger.jsonl.times").read_text().splitlines()
    assert header == "sequence\tintended_s\tsent_s"
    times = [(int(s), float(i), float(a)) for s, i, a in (row.split("\t") for row in rows)]
    assert [row[0] for row in times] == list(range(660))
    assert all(sent >= intended - 1e-6 for _unused, intended, sent in times)
    for start, members in plan.schedule.bursts:
        intended = [times[i][1] for i in members]
        assert start <= min(intended) and max(intended) < start + 0.010
    # Delivered as bursts: each burst's 300 lines were written together, within a
    # quarter of a second of the burst's due time (a late sender sends what is due at once).
    assert (
        outcome.delivery["offered"]["10ms"]["peak"] == 301
    )  # with the base snapshot due at 0.75 s
    assert outcome.delivery["delivered"]["10ms"]["dispersion"] > 20
    assert [b["sent"] for b in outcome.delivery["bursts"]] == [300, 300]
    assert all(b["delivered_ms"] < 250 for b in outcome.delivery["bursts"]), outcome.delivery


def test_a_schedule_is_what_the_injector_counts_lateness_against():
    plan = Schedule()
    assert plan.total == 0 and plan.burst_of == {}


@pytest.mark.process
def test_a_burst_levels_delivery_names_its_window(tmp_path, sleeper):
    reader = PipeReader(str(tmp_path / "in.fifo"))
    fd = open_pipe(reader.path)
    shape = {"type": "burst", "size": 10, "window_ms": 4, "period_s": 1}
    plan = LevelPlan(rate=5, duration_s=1, seed=1, level=1, shape=shape)
    outcome = inject(plan, fd, ProcessWatch(sleeper.pid), str(tmp_path / "ledger.jsonl"))
    os.close(fd)
    reader.close()
    assert outcome.delivery["burst_window_ms"] == 4.0
    # What the gate reads of it: a burst within its bound is delivered.
    figures = dict(healthy_figures(15.0, 1.0), delivery=outcome.delivery, send_lateness_ms={})
    assert judged_level(1, figures, THRESHOLDS, {})[0]["generator_bound"] == ""


# The generator of a replay in a process of its own, as on a host: the capture's level sent
# into a named pipe that `cat` reads into a file.
REPLAY_SENDER = """
import json, os, sys
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    LevelPlan, ProcessWatch, inject, open_pipe)
shape, rate, duration, fifo, reader, ledger = json.loads(sys.argv[1])
plan = LevelPlan(rate=rate, duration_s=duration, seed=1, level=2, run_tag="R", shape=shape)
outcome = inject(plan, open_pipe(fifo), ProcessWatch(reader), ledger)
print(json.dumps({"sent": outcome.sent, "failure": outcome.failure}))
"""


@pytest.mark.process
@pytest.mark.parametrize("speed", [1.0, 10.0])
def test_a_replayed_capture_keeps_its_gaps_and_its_bytes_but_the_run_id(tmp_path, speed):
    capture = tmp_path / "capture.jsonl"
    recorded = write_capture(capture, 400, mean_gap_s=0.010)
    rate, duration = replay_timing(400, (recorded[-1] - recorded[0]) / speed)
    fifo, received, ledger = tmp_path / "in.fifo", tmp_path / "received", tmp_path / "ledger"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=received.open("wb"))
    # Held open for writing until the sender is done: this open returns once cat reads the
    # pipe (the sender, at real-time priority, would otherwise find no reader yet on a busy
    # machine), and cat sees the end of its input only when both have closed it.
    holder = os.open(fifo, os.O_WRONLY)
    shape = {"type": "replay", "capture": str(capture), "speed": speed}
    job = json.dumps([shape, rate, duration, str(fifo), reader.pid, str(ledger)])
    # The gaps are the generator's to keep, not the machine's: its wake-ups are not left to
    # wait behind the other test jobs (real-time scheduling, as a dedicated core would give
    # it). On a host without it, late sends are measured and reported as lateness.
    sent = subprocess.run(
        ["chrt", "--fifo", "10", sys.executable, "-c", REPLAY_SENDER, job],
        env=dict(os.environ, PYTHONPATH=str(COLLECTIONS)),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    os.close(holder)
    reader.wait(timeout=30)
    assert json.loads(sent.stdout or "{}") == {"sent": 400, "failure": None}, sent.stderr
    # Every line as captured but for its run_id, the level's own, in the recorded order.
    captured = capture.read_bytes().splitlines()
    lines = ledger.read_bytes().splitlines()
    assert received.read_bytes().splitlines() == lines
    for number, (line, original) in enumerate(zip(lines, captured)):
        assert line == original.replace(
            b'"run_id": "capture-%d"' % number, b'"run_id":"stress_RL2_%d"' % number
        )
    # Sent at the recorded gaps over the speed: the error of each gap, p99, within 2 ms.
    rows = (tmp_path / "ledger.times").read_text().splitlines()[1:]
    sent_at = [float(row.split("\t")[2]) for row in rows]
    wanted = [(b - a) / speed for a, b in zip(recorded, recorded[1:])]
    errors = sorted(abs((b - a) - gap) for (a, b), gap in zip(zip(sent_at, sent_at[1:]), wanted))
    assert errors[int(0.99 * len(errors))] < 0.002, errors[-10:]


def test_a_capture_with_a_bad_line_is_refused_naming_the_file_and_the_line(tmp_path):
    capture = tmp_path / "capture.jsonl"
    write_capture(capture, 5, mean_gap_s=0.1)
    lines = capture.read_text().splitlines()
    lines[3] = lines[3].replace('"volume": 3', '"volume": -3')
    capture.write_text("\n".join(lines) + "\n")
    level = {"shape": {"type": "replay", "capture": str(capture)}, "thresholds": THRESHOLDS}
    assert validate_levels([level]) == []
    errors = replay_level(level, "stress_levels[1]")
    assert errors == [
        "stress_levels[1].shape.capture: %s line 4: not an ObservationSnapshot: does not match "
        "observation_snapshot.schema.json at market_data/volume: -3 is less than the minimum "
        "of 0" % capture
    ]
    capture.write_text("\n".join([*lines[:2], "{not json"]) + "\n")
    (error,) = replay_level(level, "stress_levels[1]")
    assert error.startswith("stress_levels[1].shape.capture: %s line 3: not JSON" % capture)
    # A sound one: the level's rate and length are the capture's.
    recorded = write_capture(capture, 5, mean_gap_s=0.1)
    assert replay_level(level, "stress_levels[1]") == []
    assert level["duration_s"] == pytest.approx((recorded[-1] - recorded[0]) * 5 / 4)
    assert level["rate"] * level["duration_s"] == pytest.approx(5)
    # A replay's rate and length are not the user's to give.
    given = {"shape": {"type": "replay", "capture": "c.jsonl"}, "rate": 5, "thresholds": THRESHOLDS}
    errors = validate_levels([given])
    assert errors == ["stress_levels[1]: a replay's rate is its capture's: leave it out"]


def test_the_plan_refuses_a_bad_capture_by_name_and_sizes_a_sound_one(tmp_path):
    from ansible_collections.qts.observer.plugins.plugin_utils.plan import plan_run

    capture = tmp_path / "capture.jsonl"
    recorded = write_capture(capture, 700, mean_gap_s=0.02)
    level = {"shape": {"type": "replay", "capture": str(capture), "speed": 2},
             "thresholds": THRESHOLDS}  # fmt: skip
    base = {"profile": "smoke", "timings": {}, "limits": {}, "settings": {}, "hosts": ["h"],
            "forks": 5, "interface": None, "run_id": None, "seed": 0,
            "artifacts_dir": str(tmp_path / "artifacts"), "capacity": {}}  # fmt: skip
    plan, errors = plan_run(dict(base, levels=[level]))
    assert errors == []
    (planned,) = plan["levels"]
    assert planned["duration_s"] == pytest.approx((recorded[-1] - recorded[0]) / 2 * 700 / 699)
    assert planned["shape"] == {"type": "replay", "capture": str(capture), "speed": 2.0}
    # At ten times the speed, too short to measure: named as the capture's, not a duration_s.
    _unused, errors = plan_run(
        dict(base, levels=[dict(level, shape=dict(level["shape"], speed=10))])
    )
    assert errors[0].startswith("stress_levels[1]'s capture over its speed (1.3")
    capture.write_text(capture.read_text().replace('"symbol": "ES.Z6"', '"symbol": ""', 1))
    _unused, errors = plan_run(dict(base, levels=[level]))
    assert errors == [
        "stress_levels[1].shape.capture: %s line 1: not an ObservationSnapshot: does not match "
        "observation_snapshot.schema.json at market_data/symbol: '' does not match "
        "'^[A-Za-z0-9._:/-]{1,32}$'" % capture
    ]


def test_bounds_are_counted_before_anything_is_built(tmp_path):
    # A burst every 10 us over a day: refused by its count, at once, not after a list of 8.6e9.
    tiny = {"type": "burst", "size": 1, "window_ms": 0.001, "period_s": 0.00001}
    level = {"rate": 1, "duration_s": 86_400, "shape": tiny, "thresholds": THRESHOLDS}
    assert validate_levels([level]) == [
        "stress_levels[1] plans more than 20000000 snapshots: shorten it or lower its rate"
    ]
    # A constant level keeps no list of its send times, and is not capped.
    even = schedule(None, 1_000_000.0, 86_400.0, "1:1").offsets
    assert len(even) == 86_400_000_000 and even[-1] == (86_400_000_000 - 1) * 1e-6
    assert validate_levels([dict(level, rate=1_000_000, shape=None)]) == []
    # A replay slowed down past a day is refused, naming its speed.
    capture = tmp_path / "capture.jsonl"
    write_capture(capture, 10, mean_gap_s=1.0)
    slow = {"shape": {"type": "replay", "capture": str(capture), "speed": 1e-9},
            "thresholds": THRESHOLDS}  # fmt: skip
    (error,) = replay_level(slow, "stress_levels[1]")
    assert "at speed 1e-09 make a level of" in error and "change the speed" in error


def test_a_bursts_wait_on_a_full_pipe_counts_whatever_was_being_written():
    from ansible_collections.qts.observer.plugins.module_utils.injector import (
        LevelOutcome,
        _burst_blocked,
    )

    plan = schedule(BURST, 10.0, 5.0, "1:1")  # one burst, due at 2.5 s
    outcome = LevelOutcome(planned=plan.total)
    # Blocked from 2.4 s to 2.8 s on a write of base snapshots, then the burst went out at once.
    outcome.sent_offsets.extend(
        2.8 if i in plan.burst_of else t for i, t in enumerate(plan.offsets)
    )
    outcome.blocked_timeline += [(2.3, 0.0), (2.8, 0.4), (2.81, 0.4)]
    outcome.blocked_s = 0.4
    assert _burst_blocked(plan, outcome) == {0: pytest.approx(0.4)}


def test_levels_of_another_shape_are_not_compared():
    from ansible_collections.qts.observer.plugins.plugin_utils.history import levels_key

    even = [{"rate": 50, "duration_s": 180}]
    assert levels_key(even) == "[[50.0, 180.0]]"  # as before shapes, for the history kept
    assert levels_key([dict(even[0], shape={"type": "constant"})]) == levels_key(even)
    assert levels_key([dict(even[0], shape={"type": "poisson"})]) != levels_key(even)


def test_scaling_compares_throughput_with_what_each_level_offered_on_average():
    # The trading day's open (20/s and 10,000 in bursts over 20 s: 520/s on average) before a
    # ramp of random arrivals at 100/s: throughput follows what was offered, not the base rate.
    opening = dict(healthy_figures(20.0, 20.0), level=1, throughput=520.0, offered_rate=520.0,
                   generator_bound="", verdict="PASS")  # fmt: skip
    ramp = dict(healthy_figures(100.0, 20.0), level=2, throughput=100.2, offered_rate=100.3,
                generator_bound="", verdict="PASS")  # fmt: skip
    criteria = {
        c["name"]: c
        for c in judge_run([opening, ramp], 2, baseline=None, recovery=None, shutdown=None,
                           start_pid=1, end_pid=1)
    }  # fmt: skip
    assert criteria["scaling"]["verdict"] == "PASS", criteria["scaling"]
    assert criteria["graceful_degradation"]["verdict"] == "PASS"
    # Half of what was offered is a collapse, bursts included.
    opening["throughput"] = 200.0
    criteria = {
        c["name"]: c
        for c in judge_run([opening, ramp], 2, baseline=None, recovery=None, shutdown=None,
                           start_pid=1, end_pid=1)
    }  # fmt: skip
    assert criteria["graceful_degradation"]["verdict"] == "FAIL"
    assert (
        "throughput 200.000/s under 50 % of the offered rate"
        in (criteria["graceful_degradation"]["evidence"])
    )
