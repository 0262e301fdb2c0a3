"""The roles' preflight, run by ansible-playbook: a path that is not absolute is refused by
name, every such path in one message, before anything is changed."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.process

PREFLIGHT = """
- name: The role's preflight
  ansible.builtin.include_role:
    name: qts.observer.{role}
    tasks_from: preflight
"""
# The failed task's message as the task returned it (the console folds long lines).
PREFLIGHT_FAILING = """
- name: The role's preflight, its failure kept
  block:
    - name: The role's preflight
      ansible.builtin.include_role:
        name: qts.observer.{role}
        tasks_from: preflight
  rescue:
    - name: Keep the failed task and its message
      ansible.builtin.set_fact:
        results:
          task: "{{{{ ansible_failed_task.name }}}}"
          msg: "{{{{ ansible_failed_result.msg }}}}"
"""


@pytest.mark.parametrize(
    ("role", "paths", "named", "accepted"),
    [
        (
            "observer",
            {"observer_log_dir": "relative/log", "observer_input_fifo": "/run/a\nb",
             "observer_pidfile": None},
            ["observer_log_dir must be an absolute path, not 'relative/log'",
             "observer_input_fifo must be an absolute path, not '/run/a\nb'",
             "observer_pidfile must be an absolute path, not ''"],
            ["observer_install_dir", "observer_output_dir", "observer_run_dir"],
        ),
        (
            "monitor",
            {"monitor_csv_file": 42, "monitor_disk_path": "./disk"},
            ["monitor_csv_file must be an absolute path, not '42'",
             "monitor_disk_path must be an absolute path, not './disk'"],
            ["monitor_install_dir", "monitor_output_dir", "monitor_log_dir"],
        ),
    ],
)  # fmt: skip
def test_every_path_that_is_not_absolute_is_named(playbook, role, paths, named, accepted):
    proc, failed = playbook(PREFLIGHT_FAILING.format(role=role), paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert failed["task"] == "Assert the paths are absolute", failed
    for message in named:
        assert message in failed["msg"], failed["msg"]
    for path in accepted:
        assert path + " must be" not in failed["msg"]


def _outcome_of(task: str, out: str) -> str:
    """The lines a task printed: from its header to the next task's."""
    start = out.index("TASK [qts.observer.%s]" % task)
    end = out.find("\nTASK [", start + 1)
    return out[start : end if end >= 0 else None]


@pytest.mark.parametrize(
    ("role", "paths"),
    [
        ("observer", {}),
        ("monitor", {}),
        # The embedded default's paths, under a checkout with a space in its name.
        ("observer", {"observer_install_dir": "/srv/my checkout/local/opt/qts_observer",
                      "observer_log_dir": "/srv/my checkout/local/log/qts_observer"}),
    ],
)  # fmt: skip
def test_absolute_paths_pass(playbook, role, paths):
    proc, _unused = playbook(PREFLIGHT.format(role=role), paths)
    out = proc.stdout + proc.stderr
    outcome = _outcome_of("%s : Assert the paths are absolute" % role, out)
    assert "ok: [localhost]" in outcome, out
    assert "failed" not in outcome.lower() and "must be an absolute path" not in out, out
