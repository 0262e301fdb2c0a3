"""What a completed provisioning recorded, compared with the host and the inputs now: every kind
of change the roles must notice, on real files, users and groups (provision_state on the host,
provision.inputs_digest on the controller)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible_collections.qts.observer.plugins.module_utils.provision_state import (
    STAMP_VERSION,
    first_difference,
    read_stamp,
    record_of,
    write_stamp,
)
from ansible_collections.qts.observer.plugins.plugin_utils.provision import inputs_digest

pytestmark = pytest.mark.unit


def _installed(root: Path) -> list[dict]:
    """An install as the roles leave it: code, configuration, a venv, a pipe, output folders."""
    (root / "opt" / "pkg").mkdir(parents=True)
    (root / "opt" / "pkg" / "core.py").write_text("VALUE = 1\n")
    (root / "opt" / "config").mkdir()
    (root / "opt" / "config" / "stress_config.json").write_text('{"buffer": {}}\n')
    (root / "opt" / "config" / "output").mkdir()  # the service's own output, inside the tree
    packages = root / "opt" / "venv" / "lib" / "python3.11" / "site-packages"
    (packages / "psutil-7.0.0.dist-info").mkdir(parents=True)
    (root / "opt" / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (root / "opt" / "venv" / "bin").mkdir()
    (root / "opt" / "venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    (root / "run").mkdir()
    os.mkfifo(root / "run" / "input.fifo", 0o620)
    return [
        {"kind": "tree", "name": str(root / "opt"),
         "exclude": [str(root / "opt" / "venv"), str(root / "opt" / "config" / "output")]},
        {"kind": "venv", "name": str(root / "opt" / "venv")},
        {"kind": "path", "name": str(root / "opt" / "config" / "output")},
        {"kind": "path", "name": str(root / "run" / "input.fifo")},
        {"kind": "user", "name": "nobody"},
        {"kind": "group", "name": "nogroup"},
    ]  # fmt: skip


def _new_content(root: Path) -> None:
    (root / "opt" / "pkg" / "core.py").write_text("VALUE = 2\n")


def _new_mode(root: Path) -> None:
    (root / "opt" / "config" / "stress_config.json").chmod(0o666)


def _new_owner(root: Path) -> None:
    os.chown(root / "opt" / "pkg" / "core.py", 65534, -1)


def _added_file(root: Path) -> None:
    (root / "opt" / "pkg" / "extra.py").write_text("")


def _removed_file(root: Path) -> None:
    (root / "opt" / "config" / "stress_config.json").unlink()


def _pipe_replaced(root: Path) -> None:
    (root / "run" / "input.fifo").unlink()
    (root / "run" / "input.fifo").write_text("")


def _distribution_upgraded(root: Path) -> None:
    packages = root / "opt" / "venv" / "lib" / "python3.11" / "site-packages"
    (packages / "psutil-7.0.0.dist-info").rename(packages / "psutil-7.1.0.dist-info")


def _interpreter_moved(root: Path) -> None:
    (root / "opt" / "venv" / "bin" / "python").unlink()
    (root / "opt" / "venv" / "bin" / "python").symlink_to("/usr/local/bin/python3")


def _output_folder_mode(root: Path) -> None:
    (root / "opt" / "config" / "output").chmod(0o777)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_new_content, "pkg/core.py: its content changed"),
        (_new_mode, "stress_config.json: its mode changed"),
        (_new_owner, "pkg/core.py: its uid changed"),
        (_added_file, "pkg/extra.py appeared"),
        (_removed_file, "stress_config.json is gone"),
        (_pipe_replaced, "input.fifo: now file, was fifo"),
        (_distribution_upgraded, "(distributions): its installed changed"),
        (_interpreter_moved, "bin/python: its target changed"),
        (_output_folder_mode, "config/output: its mode changed"),
    ],
)
def test_every_change_to_what_the_role_manages_is_named(
    tmp_path: Path, change: Callable[[Path], None], named: str
) -> None:
    items = _installed(tmp_path)
    stamp = str(tmp_path / "opt" / "provisioned.json")
    recorded = record_of(items, stamp)
    assert first_difference(recorded, record_of(items, stamp)) is None
    change(tmp_path)
    difference = first_difference(recorded, record_of(items, stamp))
    assert difference is not None and named in difference, difference


def test_what_the_service_writes_itself_is_not_a_change(tmp_path: Path) -> None:
    """Byte-code caches, the service's output and the stamp itself never count."""
    items = _installed(tmp_path)
    stamp = tmp_path / "opt" / "provisioned.json"
    recorded = record_of(items, str(stamp))
    (tmp_path / "opt" / "pkg" / "__pycache__").mkdir()
    (tmp_path / "opt" / "pkg" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "opt" / "config" / "output" / "records.jsonl").write_text("{}\n")
    packages = tmp_path / "opt" / "venv" / "lib" / "python3.11" / "site-packages"
    (packages / "psutil.py").write_text("")  # a venv's files: only its distributions count
    write_stamp(str(stamp), {"version": STAMP_VERSION, "inputs_digest": "x", "record": recorded})
    assert first_difference(recorded, record_of(items, str(stamp))) is None


def test_accounts_are_recorded_and_a_missing_one_is_a_change(tmp_path: Path) -> None:
    recorded = record_of(
        [{"kind": "user", "name": "nobody"}, {"kind": "group", "name": "nogroup"}], ""
    )
    assert recorded["user nobody"]["uid"] == 65534
    assert recorded["group nogroup"]["gid"] == 65534
    assert record_of([{"kind": "user", "name": "qts-no-such-user"}], "") == {
        "user qts-no-such-user": {"type": "missing"}
    }
    deleted = {**recorded, "user nobody": {"type": "missing"}}  # as a deleted user reads
    assert first_difference(recorded, deleted) == "user nobody: now missing, was user"


def test_an_unknown_kind_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown kind 'file' for /x"):
        record_of([{"kind": "file", "name": "/x"}], "")


def test_the_stamp_is_written_whole_private_and_only_when_it_differs(tmp_path: Path) -> None:
    path = tmp_path / "provisioned.json"
    stamp = {"version": STAMP_VERSION, "inputs_digest": "abc", "record": {}}
    assert write_stamp(str(path), stamp) is True
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert write_stamp(str(path), stamp) is False
    assert read_stamp(str(path)) == (stamp, "")
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "no record of an earlier provisioning"),
        ("{not json", "cannot be read"),
        (json.dumps({"version": STAMP_VERSION + 1}), "of another layout"),
    ],
)
def test_an_unusable_stamp_says_why(tmp_path: Path, content: str | None, said: str) -> None:
    path = tmp_path / "provisioned.json"
    if content is not None:
        path.write_text(content)
    stamp, reason = read_stamp(str(path))
    assert stamp is None and said in reason and str(path) in reason


# The controller's side: the role's inputs.


def _digest(variables: dict, facts: dict, trees: list[Path], names: list[str] | None = None) -> str:
    task_vars = {**variables, "ansible_facts": facts}
    return inputs_digest(task_vars, lambda value: value, ["observer_", "_observer_"],
                         names or ["user_id"], [str(t) for t in trees])  # fmt: skip


def test_each_input_of_the_role_changes_the_digest(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "core.py").write_text("VALUE = 1\n")
    variables = {"observer_port": 1, "_observer_command": ["a"], "stress_rate": 5}
    facts = {"user_id": "root", "date_time": {"epoch": "1"}}
    first = _digest(variables, facts, [source])

    assert _digest(variables, facts, [source]) == first
    assert _digest({**variables, "observer_port": 2}, facts, [source]) != first
    assert _digest({**variables, "_observer_command": ["b"]}, facts, [source]) != first
    assert _digest({**variables, "observer_new": True}, facts, [source]) != first
    assert _digest(variables, {**facts, "user_id": "qts"}, [source]) != first
    (source / "pkg" / "core.py").write_text("VALUE = 2\n")
    assert _digest(variables, facts, [source]) != first
    (source / "pkg" / "core.py").write_text("VALUE = 1\n")
    (source / "pkg" / "new.py").write_text("")
    assert _digest(variables, facts, [source]) != first
    (source / "pkg" / "new.py").unlink()
    shutil.rmtree(source)
    assert _digest(variables, facts, [source]) != first


def test_what_is_not_an_input_leaves_the_digest_alone(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "core.py").write_text("")
    variables = {"observer_port": 1}
    facts = {"user_id": "root", "date_time": {"epoch": "1"}}
    first = _digest(variables, facts, [source])
    # Another role's variables, a run's own results, facts the role does not read, caches.
    assert (
        _digest({**variables, "stress_rate": 50, "__observer_fifo": {"stat": {}}}, facts, [source])
        == first
    )
    assert _digest(variables, {**facts, "date_time": {"epoch": "2"}}, [source]) == first
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\0")
    assert _digest(variables, facts, [source]) == first


def test_variables_are_digested_as_templated(tmp_path: Path) -> None:
    """The value a role reads is the templated one: a template whose result changes is a change."""
    task_vars = {"observer_dir": "{{ base }}/opt", "ansible_facts": {}}
    digests = set()
    for base in ("/a", "/b"):
        template = lambda value, base=base: value.replace("{{ base }}", base)  # noqa: E731
        digests.add(inputs_digest(task_vars, template, ["observer_"], [], []))
    assert len(digests) == 2
