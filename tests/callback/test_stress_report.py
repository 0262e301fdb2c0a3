"""The qts.observer.stress_report callback: every metric of each judged level on one line,
and a console that reaches a pipe as it is written. The report itself (report.json, junit.xml,
the verdict) does not depend on it: tests/report and tests/e2e cover that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
COLLECTIONS = ROOT / "build" / "collections"
PLUGIN = COLLECTIONS / "ansible_collections/qts/observer/plugins/callback/stress_report.py"
NAME = "qts.observer.stress_report"

LEVEL = {
    "level": 2,
    "rate": 10,
    "verdict": "FAIL",
    "throughput": 9.8,
    "sent": 50,
    "written": 49,
    "lost": 1,
    "duplicated": 0,
    "modified": 0,
    "latency_ms": {"p50": 0.4, "p95": 0.9, "p99": 1.5, "max": 2.0},
    "latency_source": "records (processing_latency_ms)",
    "e2e_latency_ms": {"p50": 1.1, "p95": 2.0, "p99": 3.0, "max": 4.0},
    "send_lateness_ms": {"p50": 0.1, "p95": 0.2, "p99": 0.3, "max": 0.5},
    "achieved_rate": 10.0,
    "cpu_pct": {"sustained": 12.5, "peak": 30.0},
    "memory_pct": {"sustained": 40.0, "peak": 41.0},
    "observer_cpu_pct": {"sustained": 3.0, "peak": 5.0},
    "observer_rss_mb": {"peak": 22.5},
    "cpu_count": 2,
    "buffer_depth_max": 7,
    "queue_depth_max": 1,
    "flushes": 10,
    "rotations": 0,
    "errors": 0,
    "error_rate_pct": 0.0,
    "validation_rate_pct": 100.0,
}


@pytest.fixture(scope="module")
def callback_module():
    if not PLUGIN.exists():
        subprocess.run(["make", "-s", "collection"], cwd=ROOT, check=True)
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(COLLECTIONS)])
    return callback_loader


@pytest.mark.unit
def test_callback_identity(callback_module):
    callback = callback_module.get(NAME)
    assert callback.CALLBACK_VERSION == 2.0
    assert callback.CALLBACK_TYPE == "aggregate"
    assert callback.CALLBACK_NEEDS_ENABLED is True


@pytest.mark.unit
def test_the_level_line_holds_every_metric(callback_module):
    module = sys.modules[type(callback_module.get(NAME)).__module__]
    line = module.level_line("observer-01", LEVEL)
    assert line.startswith("[level] observer-01 L2 FAIL: throughput 9.800/s of 10/s; ")
    for text in (
        "sent 50 written 49 lost 1 duplicated 0 modified 0",
        "latency p50/p95/p99/max 0.4/0.9/1.5/2.0 ms (from records (processing_latency_ms))",
        "end-to-end 1.1/2.0/3.0/4.0 ms",
        "send lateness 0.1/0.2/0.3/0.5 ms, achieved 10.00/s",
        "CPU 12.5 % (peak 30.0), Observer 1.5 % of the machine",
        "memory 40.0 % (peak 41.0), Observer RSS 22.5 MB",
        "buffer depth max 7, queue depth max 1, flushes 10, rotations 0",
        "errors 0 (0.000 %), validation 100.0 %",
    ):
        assert text in line, text
    partial = module.level_line("h", {"level": 1, "verdict": "NOT MEASURED"})
    assert "throughput -/s of -/s" in partial and "0.0" not in partial  # nothing made up
    assert "latency p50/p95/p99/max -/-/-/- ms (from nowhere)" in partial


def run_playbook(tmp_path: Path, callbacks: str):
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_CONFIG", "PYTHONUNBUFFERED")}
    env.update(
        ANSIBLE_CALLBACKS_ENABLED=callbacks,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_ACTION_PLUGINS=str(DATA / "action_plugins"),
    )
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i", "localhost,", "-c", "local", str(DATA / "levels.yml"),
        "-e", json.dumps({"level": LEVEL}),
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )


def read_until(process: subprocess.Popen, marker: str, timeout_s: float) -> tuple[str, bool]:
    """Output up to the line holding ``marker``; whether it came before the process ended."""
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout_s
    for line in process.stdout:
        seen.append(line)
        if marker in line:
            return "".join(seen), process.poll() is None
        assert time.monotonic() < deadline
    return "".join(seen), False


def test_enabled_it_prints_the_level_and_the_output_arrives_live(callback_module, tmp_path):
    process = run_playbook(tmp_path, NAME)
    try:
        text, live = read_until(process, "FIRST LINES PRINTED", timeout_s=60)
        assert live, "the output reached the pipe only when the process ended"
        assert "[level] localhost L2 FAIL: throughput 9.800/s of 10/s" in text
    finally:
        process.wait(timeout=60)
    assert process.returncode == 0


def test_not_enabled_nothing_is_added_and_the_output_waits(callback_module, tmp_path):
    """Without the callback the same output stays in Ansible's buffer until the end: what the
    callback changes is real (the plan says, at the start, what enabling it adds)."""
    process = run_playbook(tmp_path, "")
    text, live = read_until(process, "FIRST LINES PRINTED", timeout_s=60)
    process.wait(timeout=60)
    assert not live
    assert "[level]" not in text
