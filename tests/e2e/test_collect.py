"""The run's raw data is fetched while the monitor keeps appending to its CSV (the monitor
runs on after the stress run ends): the fetch must not fail, and must hold this run only."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from stressrun import ROOT, user_env

pytestmark = pytest.mark.e2e

PLAYBOOK = Path(__file__).parent / "data" / "collect_only.yml"
HEADER = "Timestamp,CPU%,Memory%,Disk%,Network_Recv_MB,Network_Sent_MB,Observer_PID,Observer_CPU%,Observer_Memory_MB\n"


def iso_utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat(timespec="microseconds")


def row(moment: float) -> str:
    return f"{iso_utc(moment)},12.0,40.0,10.0,0,0,42,1.0,30.0\n"


def test_raw_data_is_fetched_whole_while_the_monitor_writes_fast(tmp_path):
    since = time.time() - 120  # the run began two minutes ago
    (tmp_path / "out").mkdir()
    csv = tmp_path / "system_monitor.csv"
    csv.write_text(HEADER + row(since - 7200) + "".join(row(since + n) for n in range(50)))
    stamp = iso_utc(since + 1).replace("+00:00", "Z")
    (tmp_path / "observer.log").write_text(
        f"{iso_utc(since - 7200).replace('+00:00', 'Z')} INFO PatternRecord dispatched run_id=old\n"
        f"{stamp} INFO PatternRecord dispatched run_id=this_run\n"
    )
    (tmp_path / "out" / "metrics.jsonl").write_text(
        json.dumps({"timestamp": iso_utc(since + 1)}) + "\n"
    )
    stop = threading.Event()

    def monitor_writing_fast() -> None:
        moment = since + 60
        with csv.open("a") as handle:
            while not stop.is_set():
                moment += 0.01
                handle.write(row(moment))
                handle.flush()
                time.sleep(0.0005)

    writer = threading.Thread(target=monitor_writing_fast)
    writer.start()
    try:
        result = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "ansible-playbook"),
                str(PLAYBOOK),
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                f"work={tmp_path}",
                "-e",
                f"since={since}",
                "-e",
                "ansible_python_interpreter=" + str(ROOT / ".venv" / "bin" / "python"),
            ],
            cwd=ROOT,
            env={**user_env(), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        stop.set()
        writer.join()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    shown = json.loads((tmp_path / "collected.json").read_text())
    # The pressure is real: fetching the growing file itself fails its checksum.
    assert shown["direct_failed"], "the monitor did not write during the fetch: no pressure"
    assert "checksum" in shown["direct_msg"].lower(), shown["direct_msg"]
    collected = shown["collected"]
    assert collected["problems"] == [], collected
    assert {"system_monitor.csv", "observer.log", "metrics.jsonl"} <= set(collected["files"])
    host_dir = tmp_path / "artifacts" / "collect-test" / "localhost"
    rows = (host_dir / "system_monitor.csv").read_text().splitlines()
    assert rows[0] == HEADER.strip() and len(rows) > 50
    assert all(r.count(",") == 8 for r in rows)
    assert iso_utc(since - 7200) not in "\n".join(rows), "a row of an earlier run was fetched"
    assert (host_dir / "observer.log").read_text() == (
        f"{stamp} INFO PatternRecord dispatched run_id=this_run\n"
    )
    assert not (tmp_path / "stress" / "collect-test").exists(), "the host's work files were kept"
