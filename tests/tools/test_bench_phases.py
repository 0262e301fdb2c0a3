"""make bench-scale splits a stress run's CPU by phase where its callback marks them: every
task file of the roles must belong to a phase, or run in the phase of what includes it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
# The files whose tasks run in the phase of whatever includes them.
INHERIT = {("stress", "failed"), ("observer", "stop")}


def _phase_marks():
    path = ROOT / "benchmarks" / "callback_plugins" / "phase_marks.py"
    spec = importlib.util.spec_from_file_location("phase_marks", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def test_every_task_file_of_the_roles_has_its_phase():
    phase_of = _phase_marks().phase_of
    for task_file in sorted(ROOT.glob("roles/*/tasks/*.yml")):
        role, name = task_file.parts[-3], task_file.stem
        phase = phase_of(f"{task_file}:1")
        if role == "_service" or (role, name) in INHERIT:
            assert phase is None, task_file
        else:
            assert phase in {"plan", "provision", "levels", "collect", "report"}, task_file


def test_a_run_s_story_maps_to_its_phases_in_order():
    phase_of = _phase_marks().phase_of
    story = [
        "roles/stress/tasks/start.yml:5",
        "roles/observer/tasks/install.yml:3",
        "roles/_service/tasks/systemd.yml:9",  # the Observer's unit: still provisioning
        "roles/monitor/tasks/main.yml:2",
        "roles/stress/tasks/level.yml:12",
        "roles/stress/tasks/finish.yml:7",
        "roles/observer/tasks/stop.yml:4",  # the stress role stops the Observer: collecting
        "roles/stress/tasks/report.yml:3",
    ]
    phases = [phase_of(f"/any/ansible_collections/qts/observer/{path}") for path in story]
    assert phases == ["plan", "provision", None, "provision", "levels", "collect", None, "report"]
