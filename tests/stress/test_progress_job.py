"""stress_progress reads the load's async job as Ansible's async_wrapper writes it: a real
background job started by `ansible -B`, polled by the real module until it has ended; its
result comes back once and its job file is gone after."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from stressrun import ROOT, run_captured, user_env

pytestmark = pytest.mark.process

ANSIBLE = ROOT / ".venv" / "bin" / "ansible"
PYTHON = ROOT / ".venv" / "bin" / "python"


def adhoc(module: str, args: dict, tmp_path: Path, *extra: str) -> dict:
    """One module run on localhost, as Ansible runs it; its result (ansible.builtin.tree)."""
    tree = tmp_path / "tree"
    env = dict(
        user_env(),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.tree",
        ANSIBLE_CALLBACK_TREE_DIR=str(tree),
        ANSIBLE_ASYNC_DIR=str(tmp_path / "async"),
        ANSIBLE_DEPRECATION_WARNINGS="0",
    )
    done = run_captured(
        [str(ANSIBLE), "localhost", "-i", "localhost,", "-c", "local", "-m", module,
         "-a", json.dumps(args), "-e", f"ansible_python_interpreter={PYTHON}", *extra],
        cwd=ROOT, env=env, timeout_s=300,
    )  # fmt: skip
    assert (tree / "localhost").is_file(), done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads((tree / "localhost").read_text())
    (tree / "localhost").unlink()
    return result


def poll(tmp_path: Path, job_file: str) -> dict:
    (tmp_path / "monitor.csv").touch()
    return adhoc(
        "qts.observer.stress_progress",
        {
            "progress_file": str(tmp_path / "L1.progress.json"),
            "monitor_csv": str(tmp_path / "monitor.csv"),
            "since": time.time(),
            "job_file": job_file,
        },
        tmp_path,
    )


def test_a_running_job_is_followed_and_an_ended_one_is_collected_once(tmp_path):
    started = adhoc(
        "ansible.builtin.command",
        {"argv": ["sleep", "6"]},
        tmp_path,
        "-B", "120", "-P", "0",
    )  # fmt: skip
    job_file = started["results_file"]
    assert Path(job_file).is_file(), started

    running = poll(tmp_path, job_file)
    assert running["job"] == {"finished": False, "result": None}, running
    assert running["qts_stress_progress"]["started"] is False
    assert Path(job_file).is_file()

    deadline = time.monotonic() + 120
    while True:
        ended = poll(tmp_path, job_file)
        if ended["job"]["finished"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ended["job"]["finished"] is True, ended
    assert ended["job"]["result"]["rc"] == 0
    assert ended["job"]["result"]["cmd"] == ["sleep", "6"]
    assert not Path(job_file).exists()

    # Asked again, the job is gone: said so, never taken for a load still running.
    gone = poll(tmp_path, job_file)
    assert gone["job"]["finished"] is True
    assert gone["job"]["result"]["failed"] is True
    assert "is gone" in gone["job"]["result"]["msg"]
