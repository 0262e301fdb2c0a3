"""A job as AWX runs one: ansible-runner (AWX's engine) in a private data folder whose project
holds the wrapper playbook of examples/awx/ and the collection installed from its tarball,
no ansible.cfg of this checkout. The verdict outlives the job's files as set_stats data, in
ansible-runner's artifact_data: the run's, each host's (one passes, one is down) and why."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from stressrun import LAB_LEVELS, ROOT

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float = 900):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout_s, check=False)  # fmt: skip


def _stats_event(artifacts: Path) -> dict:
    (ident,) = [p for p in artifacts.iterdir() if p.is_dir()]
    for path in sorted((ident / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            return event
    raise AssertionError("no playbook_on_stats event in %s" % ident)


def test_the_verdict_survives_an_awx_job_as_its_artifacts(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    data = tmp_path / "job"
    project = data / "project"
    shutil.copytree(ROOT / "examples" / "awx", project)
    # What a project sync does with collections/requirements.yml, from the tarball.
    built = _run([str(BIN / "ansible-galaxy"), "collection", "build", str(ROOT),
                  "--output-path", str(tmp_path)], tmp_path, env)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (tarball,) = tmp_path.glob("qts-observer-*.tar.gz")
    installed = _run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball),
                      "-p", str(project / "collections")], tmp_path, env)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    inventory = data / "inventory"
    shutil.copytree(ROOT / "inventories" / "local", inventory)
    # Nothing listens on 127.0.0.250:2298: a host that is down.
    (inventory / "down.yml").write_text(
        "observers:\n  hosts:\n    observer-down:\n      ansible_host: 127.0.0.250\n"
        "      ansible_port: 2298\n      ansible_ssh_common_args: -o ConnectTimeout=3\n"
    )
    (data / "env").mkdir()
    (data / "env" / "envvars").write_text(
        json.dumps({"ANSIBLE_COLLECTIONS_PATH": str(project / "collections")})
    )
    root, reports = tmp_path / "root", tmp_path / "reports"
    extra = {**json.loads(LAB_LEVELS.read_text()), "stress_profile": "smoke",
             "qts_local_root": str(root), "stress_artifacts_dir": str(reports)}  # fmt: skip
    (data / "env" / "extravars").write_text(json.dumps(extra))
    try:
        job = _run([str(BIN / "ansible-runner"), "run", str(data), "-p", "stress.yml",
                    "--ident", "job-1"], tmp_path, env)  # fmt: skip
    finally:
        for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
    output = job.stdout + job.stderr
    assert job.returncode != 0, output[-4000:]  # one host is down: the run fails
    stats = _stats_event(data / "artifacts")["event_data"]
    verdict = stats["artifact_data"]["qts_stress"]
    assert verdict["verdict"] == "FAIL"
    assert verdict["hosts"] == {"localhost": "PASS", "observer-down": "UNREACHABLE"}
    assert verdict["reasons"] == ["observer-down: unreachable"]
    # The same as the report the run wrote (kept only where stress_artifacts_dir outlives it).
    report = json.loads(Path(verdict["report_file"]).read_text())
    assert report["run_id"] == verdict["run_id"] and report["verdict"] == "FAIL"
    assert report["hosts"]["localhost"]["verdict"] == "PASS"
    assert "STRESS VERDICT: FAIL (observer-down: unreachable)" in output
