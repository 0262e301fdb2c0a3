"""A team's own Observer (tests/observers/team_observer: its own record shape, standard input
only, no pidfile, no metrics file, its own log format) run behind the real launcher, fed by
the real injector, and measured through the runbook profile's interface
(examples/runbook-observer.yml). Each fault of it is found and named."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ansible_collections.qts.observer.plugins.filter.observer_interface import resolve
from ansible_collections.qts.observer.plugins.module_utils.gate import judge_run
from ansible_collections.qts.observer.plugins.module_utils.injector import (
    LevelPlan,
    ProcessWatch,
    inject,
    open_pipe,
)
from ansible_collections.qts.observer.plugins.module_utils.measure import (
    after_stop,
    integrity,
    latencies,
    log_metrics,
    read_ledger,
    read_log,
    scan_records,
)

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
TEAM = ROOT / "tests" / "observers" / "team_observer"
LAUNCH = ROOT / "files" / "supervisor" / "qts_launch.py"
PROFILE = yaml.safe_load((ROOT / "examples" / "runbook-observer.yml").read_text())
SENT = 400  # 200/s for 2 s
HOLD = 9  # the abrupt fault's buffer: it holds up to 8 records, written 9 at a time


def runbook_interface() -> dict:
    resolved = resolve(PROFILE["stress_observer_interface"])
    assert resolved["errors"] == []
    return resolved["interface"]


def run_team_observer(work: Path, fault: str = "", buffer: dict | None = None) -> dict:
    """Install the team's Observer into ``work`` as the role would, run one level, stop it."""
    install = work / "install"
    shutil.copytree(TEAM, install)
    config = json.loads((ROOT / "files" / "observer" / "config" / "stress_config.json").read_text())
    config["buffer"].update(buffer or {})
    (install / "config").mkdir()
    (install / "config" / "stress_config.json").write_text(json.dumps(config))
    fifo, log, pidfile = work / "input.fifo", work / "observer.log", work / "observer.pid"
    os.mkfifo(fifo, 0o600)
    env = {**os.environ, "QTS_OBSERVER_STANDALONE": "1", "TEAM_OBSERVER_FAULT": fault}
    observer = subprocess.Popen(
        [sys.executable, str(LAUNCH), "--stdin-fifo", str(fifo), "--output", str(log),
         "--pidfile", str(pidfile), "--", sys.executable, "observer.py"],
        cwd=install, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not (log.exists() and "team observer started" in log.read_text()):
        assert observer.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    assert int(pidfile.read_text()) == observer.pid
    fd = open_pipe(str(fifo))
    plan = LevelPlan(rate=200, duration_s=2, seed=11, level=1, run_tag="T")
    ledger = work / "L1.sent.jsonl"
    outcome = inject(plan, fd, ProcessWatch(observer.pid), str(ledger))
    os.close(fd)
    assert outcome.sent == SENT and outcome.failure is None
    time.sleep(1.5)  # past a flush and a stats line
    interface = runbook_interface()
    output = str(install / "config" / "observer")
    found = scan_records(output, b"stress_TL1_", interface)
    sent = read_ledger(str(ledger))
    log_read = read_log(str(log), interface, outcome.started_at, time.time(), b"stress_TL1_")
    figures = {
        **integrity(sent, found, interface),
        **latencies(found, interface, log_read["dispatched"]),
        **log_metrics(log_read["reports"]),
        "errors": log_read["errors"],
        "dispatched": len(log_read["dispatched"]),
    }
    observer.send_signal(signal.SIGTERM)
    figures["exit_status"] = observer.wait(timeout=10)
    figures["after_stop"] = after_stop([str(ledger)], output, str(log), b"stress_TL", interface)
    return figures


def clean_shutdown(figures: dict) -> dict:
    shutdown = {"was_running": True, "stopped_cleanly": figures["exit_status"] == 0,
                "exit_status": figures["exit_status"], "elapsed_s": 0.1, "timeout_s": 10}  # fmt: skip
    criteria = judge_run([], 0, baseline=None, recovery=None, shutdown=shutdown,
                         start_pid=None, end_pid=None, after_stop=figures["after_stop"])  # fmt: skip
    return next(c for c in criteria if c["name"] == "clean_shutdown")


def test_a_sound_team_observer_is_measured_in_full(tmp_path):
    figures = run_team_observer(tmp_path)
    assert (figures["sent"], figures["written"], figures["lost"]) == (SENT, SENT, 0)
    assert figures["duplicated"] == figures["modified"] == figures["unexpected"] == 0
    assert figures["extra_fields"] == figures["decision_fields"] == []
    # Latency from its records, the dispatch time from its records, metrics from its log.
    assert figures["latency_source"] == "records (observer.took_ms)"
    assert 0 <= figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"] < 1000
    assert figures["e2e_latency_ms"]["p50"] >= 0
    assert figures["dispatched"] == SENT and figures["errors"] == 0
    assert figures["reports"] >= 1 and figures["buffer_depth_max"] is not None
    assert figures["flushes"] is None and figures["rejected"] is None  # not in its log
    assert figures["exit_status"] == 0
    assert figures["after_stop"] == {"sent": SENT, "written": SENT, "missing": 0, "held_lost": 0}
    assert clean_shutdown(figures)["verdict"] == "PASS"


def test_latency_from_the_log_when_records_carry_none(tmp_path):
    run_team_observer(tmp_path)
    interface = resolve({**PROFILE["stress_observer_interface"], "latency_ms": ""})["interface"]
    log = read_log(str(tmp_path / "observer.log"), interface, 0, time.time(), b"stress_TL1_")
    found = scan_records(
        str(tmp_path / "install" / "config" / "observer"), b"stress_TL1_", interface
    )
    measured = latencies(found, interface, log["dispatched"])
    assert measured["latency_source"] == "log (dispatch lines)"
    assert measured["latency_ms"]["max"] >= measured["latency_ms"]["p99"] >= 0
    # Neither records nor log: not measured, never 0.
    blind = resolve({**PROFILE["stress_observer_interface"], "latency_ms": "", "log_dispatch": ""})
    unmeasured = latencies(found, blind["interface"], {})
    assert unmeasured["latency_ms"] is None and unmeasured["latency_source"] is None


def test_dropping_one_snapshot_in_100_is_counted_exactly(tmp_path):
    figures = run_team_observer(tmp_path, "drop")
    assert (figures["lost"], figures["written"]) == (SENT // 100, SENT - SENT // 100)
    assert figures["modified"] == figures["duplicated"] == 0
    # Lost before the stop, not at it: the dropped ones were never taken in.
    assert figures["after_stop"]["missing"] == SENT // 100
    assert figures["after_stop"]["held_lost"] == 0


def test_changing_prices_is_modification(tmp_path):
    figures = run_team_observer(tmp_path, "alter")
    assert figures["modified"] == SENT and figures["lost"] == 0


def test_a_signal_field_is_a_contract_violation(tmp_path):
    figures = run_team_observer(tmp_path, "signal")
    assert figures["decision_fields"] == ["signal"]
    assert figures["extra_fields"] == ["signal"]
    assert figures["modified"] == figures["lost"] == 0


def test_exiting_at_sigterm_without_writing_is_an_unclean_shutdown(tmp_path):
    figures = run_team_observer(tmp_path, "abrupt", {"flush_interval_ms": 3_600_000.0,
                                                     "max_buffer_size": HOLD})  # fmt: skip
    assert figures["exit_status"] == 0  # its exit status says all is well
    held = SENT % HOLD
    assert figures["after_stop"] == {"sent": SENT, "written": SENT - held, "missing": held,
                                     "held_lost": held}  # fmt: skip
    verdict = clean_shutdown(figures)
    assert verdict["verdict"] == "FAIL", verdict
    assert f"{held} record(s) taken in and never written: lost at the stop" in verdict["evidence"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"colour": "x"}, "unknown key(s) colour"),
        ({"run_id": "data[0].meta"}, "stress_observer_interface.run_id 'data[0].meta'"),
        ({"run_id": "a..b"}, "not a JMESPath expression"),
        ({"log_dispatch": "dispatched (.*)"}, "needs the named group(s) run_id"),
        ({"log_p99": "p99=("}, "log_p99 is not a regular expression"),
        ({"embeds_verbatim": "yes"}, "embeds_verbatim must be a boolean"),
        ({"record_fields": "id"}, "record_fields must be a list of strings"),
        ({"snapshot": "data.inner"}, "embeds_verbatim needs the snapshot as a top-level field"),
        ({"run_id": ""}, "run_id is needed"),
    ],
)
@pytest.mark.unit
def test_a_bad_interface_is_refused_with_the_key_named(overrides, named):
    errors = resolve(overrides)["errors"]
    assert any(named in error for error in errors), errors


@pytest.mark.unit
def test_field_paths_are_jmespath_names():
    resolved = resolve({"run_id": 'a."b c".d', "embeds_verbatim": False, "snapshot": "x.y"})
    assert resolved["errors"] == []
    assert resolved["interface"]["paths"]["run_id"] == ["a", "b c", "d"]
    assert resolved["interface"]["paths"]["snapshot"] == ["x", "y"]


@pytest.mark.unit
def test_the_reference_interface_is_the_reference_observers_record():
    """The default record fields are pattern_record.schema.json's: one contract, two readers."""
    schema = json.loads(
        (ROOT / "files" / "observer" / "schemas" / "pattern_record.schema.json").read_text()
    )
    interface = resolve({})["interface"]
    assert resolve({})["errors"] == []
    assert interface["record_fields"] == schema["required"] == list(schema["properties"])
    assert schema["additionalProperties"] is False
    paths = interface["paths"]
    for key in ("snapshot", "latency_ms", "dispatched_at"):
        assert paths[key][0] in schema["properties"], key
    # The snapshot is the record's last field (embedded verbatim), its run_id in meta.
    assert list(schema["properties"])[-1] == paths["snapshot"][0]
    assert paths["run_id"][1:] == ["meta", "run_id"]
