"""The qts.observer.stress_window and stress_reconcile modules, run by ansible-playbook on real
files: each does one job (stress_measure, the level's, no longer switches between three)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

HEADER = "Timestamp,CPU%,Memory%,Disk%,Network_Recv_MB,Network_Sent_MB,Observer_PID,Observer_CPU%,Observer_Memory_MB\n"

WINDOW = """
- name: Summarise the monitor over a window
  qts.observer.stress_window: "{{ window_args }}"
  register: window
- name: Keep the result
  ansible.builtin.set_fact:
    results: "{{ window }}"
"""


def _monitor_csv(path: Path, now: float, cpu_by_age: dict[int, float]) -> None:
    """One row per second, `age` seconds ago, with the given system CPU."""
    rows = [HEADER]
    for age, cpu in sorted(cpu_by_age.items(), reverse=True):
        stamp = datetime.fromtimestamp(now - age, timezone.utc).isoformat()
        rows.append(f"{stamp},{cpu},40.0,10.0,0,0,4242,1.0,20.0\n")
    path.write_text("".join(rows))


def test_the_window_is_the_last_seconds_on_the_hosts_clock(playbook, tmp_path: Path) -> None:
    csv = tmp_path / "system_monitor.csv"
    # An hour-old busy spell, then four quiet seconds: only the quiet ones are in the window.
    _monitor_csv(csv, time.time(), {3600: 99.0, 3599: 99.0, 4: 10.0, 3: 12.0, 2: 10.0, 1: 12.0})
    args = {"last_s": 30, "monitor_csv": str(csv), "sustained_window_s": 4}
    proc, result = playbook(WINDOW, {"window_args": args})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = result["qts_stress_metrics"]
    assert figures["samples"] == 4
    assert figures["cpu_pct"]["peak"] == 12.0
    assert figures["cpu_pct"]["sustained"] == pytest.approx(11.0)


def test_a_window_that_cannot_be_is_refused_by_name(playbook, tmp_path: Path) -> None:
    monitor = {"monitor_csv": str(tmp_path / "absent.csv")}
    cases = {
        "last_s must be greater than 0": {"last_s": 0},
        "end (10.0) is before start (20.0)": {"start": 20.0, "end": 10.0},
        "mutually exclusive": {"last_s": 5, "start": 1.0, "end": 2.0},
        "parameters are required together: start, end": {"start": 1.0},
    }
    proc, tried = playbook.each_case(
        "qts.observer.stress_window", {m: {**a, **monitor} for m, a in cases.items()}
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(tried) == set(cases)
    for message, outcome in tried.items():
        assert outcome["failed"] is True, message
        assert message in outcome["msg"], (message, outcome["msg"])


def test_reconcile_counts_what_was_written_and_names_a_missing_ledger(
    playbook, tmp_path: Path
) -> None:
    output = tmp_path / "records"
    output.mkdir()
    ledger = tmp_path / "L1.sent.jsonl"
    ledger.write_text("".join('{"meta":{"run_id":"stress_T_L1_%d"}}\n' % n for n in range(3)))
    # Two of the three written; the third was never dispatched (no log line): missing.
    (output / "observer.jsonl").write_text(
        "".join(
            '{"snapshot":{"meta":{"run_id":"stress_T_L1_%d"}},"seq":%d}\n' % (n, n)
            for n in range(2)
        )
    )
    log = tmp_path / "observer.log"
    log.write_text("")
    args = {
        "ledgers": [str(ledger)],
        "run_id_prefix": "stress_T_",
        "output_dir": str(output),
        "log_file": str(log),
    }
    cases = {
        "counted": args,
        "missing ledger": {**args, "ledgers": [str(tmp_path / "L9.sent.jsonl")]},
    }
    proc, tried = playbook.each_case("qts.observer.stress_reconcile", cases)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counted = tried["counted"]["qts_stress_after_stop"]
    assert (counted["sent"], counted["written"], counted["missing"]) == (3, 2, 1)
    assert tried["missing ledger"]["failed"] is True
    assert "cannot read %s" % (tmp_path / "L9.sent.jsonl") in tried["missing ledger"]["msg"]


def test_the_window_reads_the_observers_pid_when_asked(playbook, tmp_path: Path) -> None:
    """The recovery's window gives the PID after the last level (the run-wide gate compares it
    with the PID at the start); a pidfile that cannot be read leaves it out, not the figures."""
    csv = tmp_path / "system_monitor.csv"
    _monitor_csv(csv, time.time(), {2: 10.0, 1: 12.0})
    pidfiles = {"a PID": "4242\n", "no number": "starting\n", "not text": b"\xff\xfe"}
    for name, content in pidfiles.items():
        path = tmp_path / name.replace(" ", "_")
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    window = {"last_s": 30, "monitor_csv": str(csv)}
    cases = {
        name: dict(window, pidfile=str(tmp_path / name.replace(" ", "_"))) for name in pidfiles
    }
    cases["gone"] = dict(window, pidfile=str(tmp_path / "absent.pid"))
    cases["not asked"] = window
    proc, tried = playbook.each_case("qts.observer.stress_window", cases)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name, outcome in tried.items():
        assert outcome.get("failed") is not True, (name, outcome)
        assert outcome["qts_stress_metrics"]["samples"] == 2, name
    assert tried["a PID"]["observer_pid"] == 4242
    assert tried["no number"]["observer_pid"] == 0  # as the int filter read the slurped file
    for name in ("not text", "gone", "not asked"):
        assert "observer_pid" not in tried[name], name
