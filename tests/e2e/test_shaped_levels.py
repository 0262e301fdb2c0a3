"""Load shapes end to end, as users run them (`make smoke` with shaped stress_levels), against
the reference Observer on this machine, with the real load generator held under a CPU quota:
a burst it can still send in time is judged, one it cannot is NOT MEASURED, never a FAIL."""

from __future__ import annotations

import json

import pytest
from capped import generator_capped, needs_cpu_cap, provision_uncapped
from captures import write_capture
from stressrun import (
    LENIENT,
    LENIENT_LIMITS,
    latest_report,
    local_install_root,
    make_smoke,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def burst_level(size: int) -> dict:
    """20/s for 6 s, and a burst of ``size`` due within 10 ms at 1.5 s and at 4.5 s."""
    return {
        "rate": 20,
        "duration_s": 6,
        "shape": {"type": "burst", "size": size, "window_ms": 10, "period_s": 3},
        "thresholds": dict(LENIENT, min_throughput=15),
    }


@needs_cpu_cap
def test_a_burst_the_capped_generator_cannot_send_in_time_is_not_measured_not_failed(tmp_path):
    # Held to 5 % of one CPU (1 ms each 20 ms), the generator makes about 6,000 snapshots a
    # second on this machine: a burst of 100 (under a millisecond of CPU) still goes out within
    # the period it is due in; one of 10,000 takes over a second and a half, far past the
    # bound (100 ms after its 10 ms window). The reference Observer reads faster than that
    # generator even beside busy jobs, so the pipe is seldom full: the delay is the generator's.
    remote_tmp = tmp_path / "ansible-tmp"
    variables = {
        "stress_levels": [burst_level(100), burst_level(10_000)],
        "stress_limits": LENIENT_LIMITS,
        # This run's modules in a folder of its own: the cap finds its generator there.
        "ansible_remote_tmp": str(remote_tmp),
    }
    variables_file = tmp_path / "vars.json"
    variables_file.write_text(json.dumps(variables))
    artifacts = tmp_path / "artifacts"
    with local_install_root(tmp_path / "root") as root:
        provision_uncapped(root)
        with generator_capped(remote_tmp, quota_us=1000, period_us=20000) as capped:
            run = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                             "--skip-tags", "provision", "-e", f"@{variables_file}")  # fmt: skip
    assert len(capped) >= 2, capped  # each level's generator ran under the cap
    report, junit, _unused = latest_report(artifacts)
    entry = report["hosts"]["localhost"]
    assert len(entry["levels"]) == 2, run.stdout[-5000:]
    small, large = entry["levels"]
    # The small bursts were delivered: the level is judged, and passes.
    assert small["verdict"] == "PASS", (small["breaches"], small["not_measured"], small["delivery"])
    assert [b["sent"] for b in small["delivery"]["bursts"]] == [100, 100]
    assert small["generator_bound"] == ""
    # The large ones were not: NOT MEASURED with the generator named, no breach of the
    # Observer's, whatever it wrote meanwhile; nothing lost either way.
    assert large["verdict"] == "NOT MEASURED", (large["breaches"], large["delivery"]["bursts"])
    assert large["breaches"] == []
    (unmeasured,) = large["not_measured"]
    assert unmeasured["criterion"] == "delivery"
    assert (
        "the load generator could not deliver burst 1: 10000 snapshots due within 10 ms"
        in (unmeasured["reason"])
    )
    burst = large["delivery"]["bursts"][0]
    assert burst["delivered_ms"] > 110 and burst["blocked_ms"] < burst["delivered_ms"] / 2
    assert small["lost"] == large["lost"] == 0 and large["sent"] == 120 + 20_000
    # The host: not measured, never a FAIL (the run does not pass: a host did not); the
    # run-wide criteria leave the level out and say so.
    assert entry["verdict"] == "NOT MEASURED", report["reasons"]
    assert report["verdict"] != "PASS" and run.returncode != 0
    criteria = {c["name"]: c for c in entry["criteria"]}
    assert criteria["integrity"]["verdict"] == "PASS"
    assert (
        "not measured at 20/s (the load generator did not deliver"
        in (criteria["scaling"]["evidence"])
    )
    # junit: the large level's performance testcases fail as not measured, its integrity passes.
    cases = {
        case.get("name"): case
        for case in junit.iter("testcase")
        if case.get("classname") == "localhost.L2"
    }
    assert cases["throughput"].find("failure").get("type") == "not_measured"
    assert cases["integrity"].find("failure") is None
    assert "L2" in run.stdout and "NOT MEASURED delivery" in run.stdout


def test_a_capture_is_replayed_as_a_level_and_a_bad_one_refused_before_anything_starts(tmp_path):
    capture = tmp_path / "capture.jsonl"
    write_capture(capture, 600, mean_gap_s=0.010)  # about 6 s: longer than a sustained window
    level = {"shape": {"type": "replay", "capture": str(capture)},
             "thresholds": dict(LENIENT, min_throughput=60)}  # fmt: skip
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"stress_levels": [level], "stress_limits": LENIENT_LIMITS}))
    artifacts = tmp_path / "artifacts"
    with local_install_root(tmp_path / "root") as root:
        run = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={root}",
                         "-e", f"@{variables}")  # fmt: skip
        assert run.returncode == 0, run.stdout[-4000:]
        report, _junit, run_dir = latest_report(artifacts)
        (replayed,) = report["hosts"]["localhost"]["levels"]
        assert replayed["verdict"] == "PASS" and replayed["shape"]["type"] == "replay"
        assert replayed["sent"] == replayed["written"] == 600 and replayed["lost"] == 0
        assert replayed["modified"] == 0  # the Observer kept every byte of what was sent
        assert replayed["freshness"]["visible"] == 600
        # The lines sent, their send times and their sightings, collected beside each other.
        host = run_dir / "localhost"
        assert len((host / "L1.sent.jsonl").read_bytes().splitlines()) == 600
        assert len((host / "L1.sent.jsonl.times").read_text().splitlines()) == 601
        assert len((host / "L1.sent.jsonl.visible").read_text().splitlines()) == 601
        # A capture with a bad line: refused before anything starts, naming file and line.
        lines = capture.read_text().splitlines()
        lines[41] = lines[41].replace('"status": "running"', '"status": "Running!"')
        capture.write_text("\n".join(lines) + "\n")
        refused = make_smoke("inventories/local", tmp_path / "refused", "-e",
                             f"qts_local_root={root}", "-e", f"@{variables}")  # fmt: skip
    assert refused.returncode != 0
    report, _junit, _unused = latest_report(tmp_path / "refused")
    named = "stress_levels[1].shape.capture: %s line 42: not an ObservationSnapshot" % capture
    assert named in json.dumps(report), report
    assert report["hosts"]["localhost"]["levels"] == []  # nothing started
