"""Provisioning when nothing changed: `make provision` on this machine (the real roles, the
Observer and the monitor under the bundled supervisor, installed under a temporary root) skips
the installation when the inputs and the host are as its last completed run left them, and
provisions, restarting the service, as soon as either differs."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from stressrun import ROOT, local_install_root, user_env

pytestmark = pytest.mark.e2e

# Only catches a hang: the first run builds two venvs from the package index.
TIMEOUT_S = 900


@pytest.fixture(scope="module")
def local_root(tmp_path_factory) -> Iterator[Path]:
    with local_install_root(tmp_path_factory.mktemp("qts_provision")) as root:
        yield root


def _provision(root: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """`make provision` on this machine; its output with YAML's folded lines joined."""
    args = " ".join(["-e", f"qts_local_root={root}", *extra])
    done = subprocess.run(
        ["make", "--no-print-directory", "provision", "INVENTORY=inventories/local", f"ARGS={args}"],
        cwd=ROOT, env=user_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done, " ".join(done.stdout.split())


def _observer_pid(root: Path) -> int:
    return int((root / "run" / "qts_observer" / "observer.pid").read_text())


def _config(root: Path) -> dict:
    return json.loads((root / "opt" / "qts_observer" / "config" / "stress_config.json").read_text())


def _ran(output: str, task: str) -> bool:
    """Whether the task ran on localhost (output: _provision's, lines joined)."""
    return (
        re.search(r"TASK \[qts\.observer\.%s\] \*+ (ok|changed):" % re.escape(task), output)
        is not None
    )


def _skipped(output: str, task: str) -> bool:
    """Whether the task ran and skipped localhost (output: _provision's, lines joined)."""
    return (
        re.search(r"TASK \[qts\.observer\.%s\] \*+ skipping:" % re.escape(task), output) is not None
    )


def test_an_unchanged_host_is_not_provisioned_again_and_any_change_is(local_root: Path) -> None:
    root = local_root
    _unused, said_first = _provision(root)
    stamp = root / "opt" / "qts_observer" / "provisioned.json"
    assert oct(stamp.stat().st_mode & 0o777) == "0o600"
    assert (root / "opt" / "qts_monitor" / "provisioned.json").exists()
    pid = _observer_pid(root)
    shipped = _config(root)

    # Nothing changed: no installation task runs, nothing changes, the Observer runs on.
    assert _ran(said_first, "observer : Install the Observer's requirements into its venv")
    again, said = _provision(root)
    assert "changed=0" in said, again.stdout[-3000:]
    for task in ("observer : Install the Observer's requirements into its venv",
                 "observer : Write the stress configuration, validated by the Observer",
                 "monitor : Install the monitor's requirements into its venv"):  # fmt: skip
        assert not _ran(said, task), task
    assert _skipped(said, "observer : Say why the Observer is provisioned")
    assert _observer_pid(root) == pid

    # The host changed (the configuration edited by hand): named, put back, the Observer restarted.
    (root / "opt" / "qts_observer" / "config" / "stress_config.json").write_text("{}\n")
    _unused, said = _provision(root)
    assert "on the host since the last provisioning:" in said
    assert "config/stress_config.json: its content changed" in said
    assert _config(root) == shipped
    restarted = _observer_pid(root)
    assert restarted != pid

    # An input changed (a variable): provisioned, the new configuration running.
    overrides = json.dumps(
        {"observer_stress_config_overrides": {"buffer": {"max_buffer_size": 999}}}
    )
    _unused, said = _provision(root, f"-e '{overrides}'")
    assert (
        "the role's inputs (variables, facts, the collection's or the source's files) changed"
        in said
    )
    assert _config(root)["buffer"]["max_buffer_size"] == 999
    assert _observer_pid(root) != restarted

    # A run with tags does only part of the role: it records nothing, so the next whole run
    # still provisions (and finds that the inputs changed since the last whole one).
    partial = json.dumps({"observer_stress_config_overrides": {"buffer": {"max_buffer_size": 998}}})
    _unused, said = _provision(root, f"-e '{partial}'", "--tags", "configure")
    assert _config(root)["buffer"]["max_buffer_size"] == 998
    assert _skipped(said, "observer : Record the Observer's provisioning")
    _unused, said = _provision(root, f"-e '{partial}'")
    assert (
        "the role's inputs (variables, facts, the collection's or the source's files) changed"
        in said
    )
    _unused, said = _provision(root, f"-e '{partial}'")
    assert "changed=0" in said
