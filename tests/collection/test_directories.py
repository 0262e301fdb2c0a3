"""The qts.observer.directories module, run by ansible-playbook on real directories."""

from __future__ import annotations

import grp
import pwd
import stat
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

# Owned by another user than the one running the test (root here, as `make test` runs), so that
# an owner the module fails to set shows.
OTHER_USER = "nobody"
OTHER_GROUP = "nogroup"

TASK = """
- name: Make the directories
  qts.observer.directories:
    owner: root
    group: "{{ other_group }}"
    mode: "0750"
    directories: "{{ wanted }}"
  register: made
- name: Keep the result
  ansible.builtin.set_fact:
    results: "{{ made }}"
"""


def _owner_group_mode(path: Path) -> tuple[str, str, str]:
    info = path.stat()
    return (
        pwd.getpwuid(info.st_uid).pw_name,
        grp.getgrgid(info.st_gid).gr_name,
        "%04o" % stat.S_IMODE(info.st_mode),
    )


def _wanted(root: Path) -> list:
    return [
        str(root / "opt"),
        {"path": str(root / "var" / "lib" / "svc"), "owner": OTHER_USER},
        {"path": str(root / "run"), "owner": OTHER_USER, "mode": "0755"},
    ]


def test_directories_are_made_with_their_own_owner_group_and_mode_then_left_alone(
    playbook, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    variables = {"wanted": _wanted(root), "other_group": OTHER_GROUP}

    proc, made = playbook(TASK, variables)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert made["changed"] is True
    assert [(d["path"], d["created"]) for d in made["directories"]] == [
        (str(root / "opt"), True),
        (str(root / "var" / "lib" / "svc"), True),
        (str(root / "run"), True),
    ]
    assert _owner_group_mode(root / "opt") == ("root", OTHER_GROUP, "0750")
    assert _owner_group_mode(root / "var" / "lib" / "svc") == (OTHER_USER, OTHER_GROUP, "0750")
    # A missing parent gets what its child asked for, as ansible.builtin.file does.
    assert _owner_group_mode(root / "var") == (OTHER_USER, OTHER_GROUP, "0750")
    assert _owner_group_mode(root / "run") == (OTHER_USER, OTHER_GROUP, "0755")

    proc, again = playbook(TASK, variables)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert again["changed"] is False
    assert not any(d["changed"] or d["created"] for d in again["directories"])


def test_check_mode_tells_what_would_change_and_changes_nothing(playbook, tmp_path: Path) -> None:
    root = tmp_path / "root"
    variables = {"wanted": _wanted(root), "other_group": OTHER_GROUP}
    proc, _ = playbook(TASK, variables)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (root / "run").chmod(0o700)
    (root / "gone").mkdir()
    (root / "gone").rmdir()
    variables["wanted"] = [*variables["wanted"], str(root / "gone")]

    proc, checked = playbook(TASK, variables, check=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert checked["changed"] is True
    changed = {d["path"]: (d["changed"], d["created"]) for d in checked["directories"]}
    assert changed[str(root / "run")] == (True, False)
    assert changed[str(root / "gone")] == (True, True)
    assert changed[str(root / "opt")] == (False, False)
    assert _owner_group_mode(root / "run")[2] == "0700"
    assert not (root / "gone").exists()

    proc, _ = playbook(TASK, variables)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _owner_group_mode(root / "run") == (OTHER_USER, OTHER_GROUP, "0755")
    assert (root / "gone").is_dir()


def test_bad_input_is_refused_naming_the_entry_and_nothing_is_changed(
    playbook, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "data").write_text("keep me\n")
    cases = {
        "file in the way": [str(root / "first"), str(root / "data" / "inner")],
        "misspelt key": [{"path": "/tmp/x", "mdoe": "0750"}],
        "no path": [{"owner": "root"}],
        "relative path": ["var/lib/svc"],
    }
    proc, tried = playbook.each_case(
        "qts.observer.directories",
        {case: {"directories": wanted} for case, wanted in cases.items()},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(tried) == set(cases)
    expected = {
        "file in the way": "%s exists and is not a directory" % (root / "data"),
        "misspelt key": "directories[0] (/tmp/x): unknown key(s) mdoe",
        "no path": "directories[0] must be a path or a dictionary with a path",
        "relative path": "directories[0] (var/lib/svc): not an absolute path",
    }
    for case, message in expected.items():
        assert tried[case]["failed"] is True, case
        assert message in tried[case]["msg"], (case, tried[case]["msg"])
    assert not (root / "first").exists()  # refused before the first directory was made
    assert (root / "data").read_text() == "keep me\n"
