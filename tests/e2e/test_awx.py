"""A job as AWX runs one: ansible-runner (AWX's engine) in a private data folder whose project
holds the wrapper playbook of examples/awx/ and the collection installed from its tarball,
no ansible.cfg of this checkout. The verdict outlives the job's files as set_stats data, in
ansible-runner's artifact_data: the run's, each host's (one passes, one is down) and why.

Then the same test sliced as AWX job slicing does it, each slice a separate run over its
share of the hosts (an inventory of its own): `make merge` of the slices gives the verdict,
each host's verdict and the reasons of the one run over every host above."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from stressrun import LAB_LEVELS, ROOT, build_tarball, make_smoke, run_captured, shell_env

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def _stats_event(artifacts: Path) -> dict:
    (ident,) = [p for p in artifacts.iterdir() if p.is_dir()]
    for path in sorted((ident / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            return event
    raise AssertionError("no playbook_on_stats event in %s" % ident)


DOWN_HOST = (
    "observers:\n  hosts:\n    observer-down:\n      ansible_host: 127.0.0.250\n"
    "      ansible_port: 2298\n      ansible_ssh_common_args: -o ConnectTimeout=3\n"
)  # nothing listens on 127.0.0.250:2298: a host that is down


def _stop_services(root: Path) -> None:
    for pidfile in (root / "run" / "qts_supervise").glob("*.pid"):
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> Iterator[dict]:
    """The AWX job: the wrapper playbook over this machine and a host that is down."""
    tmp_path = tmp_path_factory.mktemp("awx")
    env = shell_env()
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    data = tmp_path / "job"
    project = data / "project"
    shutil.copytree(ROOT / "examples" / "awx", project)
    # What a project sync does with collections/requirements.yml, from the tarball.
    tarball = build_tarball(tmp_path)
    install = [str(BIN / "ansible-galaxy"), "collection", "install", str(tarball),
               "-p", str(project / "collections")]  # fmt: skip
    installed = run_captured(install, tmp_path, env)
    assert installed.returncode == 0, installed.stderr
    inventory = data / "inventory"
    shutil.copytree(ROOT / "inventories" / "local", inventory)
    (inventory / "down.yml").write_text(DOWN_HOST)
    (data / "env").mkdir()
    (data / "env" / "envvars").write_text(
        json.dumps({"ANSIBLE_COLLECTIONS_PATH": str(project / "collections")})
    )
    root, reports = tmp_path / "root", tmp_path / "reports"
    extra = {**json.loads(LAB_LEVELS.read_text()), "stress_profile": "smoke",
             "qts_local_root": str(root), "stress_artifacts_dir": str(reports)}  # fmt: skip
    (data / "env" / "extravars").write_text(json.dumps(extra))
    try:
        runner = [str(BIN / "ansible-runner"), "run", str(data), "-p", "stress.yml",
                  "--ident", "job-1"]  # fmt: skip
        done = run_captured(runner, tmp_path, env, timeout_s=900)
        yield {"done": done, "data": data, "root": root}
    finally:
        _stop_services(root)


def test_the_verdict_survives_an_awx_job_as_its_artifacts(job):
    data, done = job["data"], job["done"]
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-4000:]  # one host is down: the run fails
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


def test_slices_merged_are_judged_as_the_one_run_over_every_host(job, tmp_path):
    stats = _stats_event(job["data"] / "artifacts")["event_data"]["artifact_data"]["qts_stress"]
    whole = json.loads(Path(stats["report_file"]).read_text())
    # Two slices of the job's hosts, each a run of its own with the job's settings.
    artifacts = tmp_path / "artifacts"
    shutil.copytree(ROOT / "inventories" / "local", tmp_path / "slice-1")
    (tmp_path / "slice-2").mkdir()
    (tmp_path / "slice-2" / "hosts.yml").write_text(DOWN_HOST)
    settings = ("-e", "@%s" % LAB_LEVELS, "-e", "qts_local_root=%s" % job["root"])
    try:
        first = make_smoke(tmp_path / "slice-1", artifacts, *settings)
    finally:
        _stop_services(job["root"])
    assert first.returncode == 0, first.stdout[-4000:]
    second = make_smoke(tmp_path / "slice-2", artifacts, *settings)
    assert second.returncode != 0, second.stdout[-4000:]
    slices = sorted(p for p in artifacts.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(slices) == 2, slices
    merged = subprocess.run(
        ["make", "--no-print-directory", "merge", "RUNS=%s" % " ".join(map(str, slices))],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert merged.returncode != 0, merged.stdout + merged.stderr  # FAIL, as the whole run
    assert "STRESS VERDICT: FAIL (observer-down: unreachable)" in merged.stdout
    report = json.loads((artifacts / "latest" / "report.json").read_text())
    assert report["run_id"] not in {p.name for p in slices}
    assert report["verdict"] == whole["verdict"] == "FAIL"
    assert report["reasons"] == whole["reasons"]
    verdicts = {host: entry["verdict"] for host, entry in report["hosts"].items()}
    assert verdicts == {host: entry["verdict"] for host, entry in whole["hosts"].items()}
    assert [len(s["hosts"]) for s in report["slices"]] == [1, 1]
    # Each host's raw data is reachable from the merged run, as from a run of its own.
    assert (artifacts / "latest" / "localhost" / "system_monitor.csv").stat().st_size > 0
    assert (artifacts / "latest" / "junit.xml").read_text().count("observer-down") >= 1
    assert (artifacts / "latest" / "report.html").stat().st_size > 0
