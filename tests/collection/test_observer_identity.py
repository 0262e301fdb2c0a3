"""The qts.observer.observer_identity module, run by ansible-playbook on a real install tree,
against the find and stat tasks whose digests the run history already holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

# The stress role's identity before the module: its digests are in every recorded run, so the
# module must give the same ones, or no run would compare with an earlier one. Each case (its
# install_dir, code_dirs and config_file) is taken both ways.
ONE_CASE = """
- name: The identity, as the module takes it
  qts.observer.observer_identity:
    install_dir: "{{ case.install_dir }}"
    code_dirs: "{{ case.code_dirs }}"
    config_file: "{{ case.config_file }}"
  register: taken
- name: The code's digests, as the stress role took them with find
  ansible.builtin.find:
    paths: "{{ [case.install_dir] + case.code_dirs | map('regex_replace', '^', case.install_dir ~ '/') | list }}"
    patterns: ["*.py"]
    get_checksum: true
  register: code
  failed_when: false
- name: The configuration's digest, as the stress role took it with stat
  ansible.builtin.stat:
    path: "{{ case.config_file }}"
    get_checksum: true
    checksum_algorithm: sha256
  register: config
  failed_when: false
- name: Keep both
  ansible.builtin.set_fact:
    results: "{{ results | default([]) + [both] }}"
  vars:
    both:
      module: "{{ taken.identity }}"
      changed: "{{ taken.changed }}"
      before:
        code_digest: >-
          {{ (code.files | default([]) | sort(attribute='path')
              | map(attribute='checksum') | join(',') | hash('sha256'))
             if code.files | default([]) | length > 0 else none }}
        code_files: "{{ code.files | default([]) | length }}"
        config_digest: "{{ config.stat.checksum | default(none) }}"
"""


def _take(playbook, tmp_path: Path, cases: list[dict]) -> list[dict]:
    """Each case's identity, from the module and from find and stat, in one playbook run."""
    tasks = tmp_path / "one_case.yml"
    tasks.write_text(ONE_CASE)
    proc, results = playbook(
        f"""
        - name: Take each case
          ansible.builtin.include_tasks: {tasks}
          loop: "{{{{ cases }}}}"
          loop_control:
            loop_var: case
        """,
        {"cases": cases},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(results) == len(cases)
    return results


def _install_tree(root: Path) -> Path:
    """An Observer's install directory: code at the top and in a package, files that are not
    code beside them, a deeper package (not part of the identity), a hidden file, a link."""
    install = root / "opt"
    package = install / "qts_observer"
    (package / "deeper").mkdir(parents=True)
    (install / "config").mkdir()
    (install / "run.py").write_text("print('run')\n")
    (install / "Setup.py").write_text("# capital first: the order ignores case\n")
    (install / "notes.txt").write_text("not code\n")
    (install / ".hidden.py").write_text("hidden\n")
    (package / "__init__.py").write_text("")
    (package / "observer.py").write_text("class Observer: ...\n")
    (package / "deeper" / "below.py").write_text("below the top\n")
    os.symlink(package / "observer.py", package / "linked.py")
    (install / "config" / "stress_config.json").write_text('{"buffer_size": 1000}\n')
    return install


def test_the_identity_is_the_one_find_and_stat_gave(playbook, tmp_path: Path) -> None:
    install = _install_tree(tmp_path)
    (tmp_path / "empty").mkdir()
    (install / "config" / "link.json").symlink_to(install / "config" / "stress_config.json")
    config = str(install / "config" / "stress_config.json")
    cases = [
        # The Observer as installed.
        {"code_dirs": ["qts_observer"], "config_file": config},
        # A package folder that does not exist, and no configuration.
        {"code_dirs": ["qts_observer", "gone"], "config_file": str(install / "none.json")},
        # No Python code at all, a configuration that is a folder.
        {"code_dirs": [], "config_file": str(install / "config"),
         "install_dir": str(tmp_path / "empty")},
        # A configuration that is a link: not followed.
        {"code_dirs": ["qts_observer"], "config_file": str(install / "config" / "link.json")},
    ]  # fmt: skip
    taken = _take(playbook, tmp_path, [{"install_dir": str(install)} | case for case in cases])
    for case, results in zip(cases, taken):
        assert results["module"] == results["before"], case
        assert results["changed"] is False
    installed, missing, no_code, linked = (results["module"] for results in taken)
    assert installed["code_files"] == 4 and installed["config_digest"] is not None
    assert missing["code_files"] == 4 and missing["config_digest"] is None
    assert no_code == {"code_digest": None, "code_files": 0, "config_digest": None}
    assert linked["config_digest"] is None


def test_a_changed_file_changes_the_identity(playbook, tmp_path: Path) -> None:
    install = _install_tree(tmp_path)
    case = {
        "install_dir": str(install),
        "code_dirs": ["qts_observer"],
        "config_file": str(install / "config" / "stress_config.json"),
    }
    (first,) = _take(playbook, tmp_path, [case])
    (install / "qts_observer" / "observer.py").write_text("class Observer: pass\n")
    (install / "config" / "stress_config.json").write_text('{"buffer_size": 2000}\n')
    (second,) = _take(playbook, tmp_path, [case])
    assert second["module"]["code_digest"] != first["module"]["code_digest"]
    assert second["module"]["config_digest"] != first["module"]["config_digest"]
    assert second["module"] == second["before"]
