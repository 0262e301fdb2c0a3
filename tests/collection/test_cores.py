"""Every tested ansible-core (tests/ansible-core.toml), as its users get the collection: the
tarball built once, installed with that release's ansible-galaxy and read with its
ansible-doc, each from its own virtualenv on the Python it supports. One list of releases:
meta/runtime.yml's requires_ansible, requirements.txt's pin and the README's table agree
with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from cores import ensure_venv, load
from stressrun import build_tarball, run_captured, shell_env

ROOT = Path(__file__).resolve().parents[2]
CORES = load()
SUPPORT_WARNING = "does not support Ansible version"


def _next_minor(version: str) -> str:
    major, minor = version.split(".")
    return "%s.%d.0" % (major, int(minor) + 1)


@pytest.mark.unit
def test_requires_ansible_the_pin_and_the_readme_name_the_tested_releases():
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    expected = ">=%s.0,<%s" % (CORES[0].version, _next_minor(CORES[-1].version))
    assert runtime["requires_ansible"] == expected
    assert "ansible-core==%s\n" % CORES[0].pin in (ROOT / "requirements.txt").read_text()
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (\d+\.\d+\.\d+) \| (\d+\.\d+) \|", readme, re.MULTILINE)
    assert rows == [(core.pin, core.python) for core in CORES]
    assert "`%s`" % expected in readme
    for core in CORES:
        assert core.pin.startswith(core.version + ".")
        assert core.sanity_pythons[0] == core.python  # the controller's first


def _user_env(collections: Path) -> dict[str, str]:
    """A user's shell: only where the installed collection is."""
    return {**shell_env(), "ANSIBLE_COLLECTIONS_PATH": str(collections), "ANSIBLE_NOCOLOR": "1"}


def _tool(bin_dir: Path, cwd: Path, env: dict[str, str], *argv: str):
    return run_captured([str(bin_dir / argv[0]), *argv[1:]], cwd, env)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    return build_tarball(tmp_path_factory.mktemp("dist"), ensure_venv(CORES[0]))


@pytest.mark.process
@pytest.mark.parametrize("core", CORES, ids=[core.version for core in CORES])
def test_the_tarball_installs_and_loads_without_a_support_warning(core, tarball, tmp_path):
    bin_dir = ensure_venv(core)
    version = _tool(bin_dir, tmp_path, _user_env(tmp_path), "ansible", "--version")
    assert version.stdout.startswith("ansible [core %s]" % core.pin), version.stdout
    collections = tmp_path / "collections"
    env = _user_env(collections)
    installed = _tool(bin_dir, tmp_path, env, "ansible-galaxy", "collection", "install",
                      str(tarball), "-p", str(collections))  # fmt: skip
    output = installed.stdout + installed.stderr
    assert installed.returncode == 0, output
    assert "qts.observer" in output and "was installed successfully" in output, output
    assert SUPPORT_WARNING not in output and "[WARNING]" not in output, output
    # Loading it is where an ansible-core outside requires_ansible warns (2.19, 2.20).
    shown = _tool(bin_dir, tmp_path, env, "ansible-doc", "-t", "module",
                  "qts.observer.snapshot_load")  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "SNAPSHOT_LOAD" in shown.stdout.upper()
    assert SUPPORT_WARNING not in shown.stderr and "[WARNING]" not in shown.stderr, shown.stderr
    listed = _tool(bin_dir, tmp_path, env, "ansible-galaxy", "collection", "list", "qts.observer")
    assert listed.returncode == 0 and "qts.observer" in listed.stdout, listed.stderr
