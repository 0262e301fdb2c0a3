"""The execution environment as ansible-builder sees it: each definition of examples/ee/
turned into a build context by `ansible-builder create` (from a folder holding the built
tarball, as the definition's comment says to build it), and the collection's own
meta/execution-environment.yml read by ansible-builder's introspection of the installed
collection, as the builder stage of an EE build runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_builder
import pytest
import yaml
from stressrun import build_tarball, run_captured, shell_env

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EE = ROOT / "examples" / "ee"
INTROSPECT = Path(ansible_builder.__file__).parent / "_target_scripts" / "introspect.py"
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
TARBALL = "qts-observer-%s.tar.gz" % VERSION


def _run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_captured(list(argv), cwd, shell_env())


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """examples/ee/ with the tarball built into it."""
    folder = tmp_path_factory.mktemp("ee") / "ee"
    shutil.copytree(EE, folder)
    assert build_tarball(folder).name == TARBALL
    return folder


@pytest.mark.parametrize(
    ("definition", "extra_python"),
    [("execution-environment.yml", []), ("execution-environment-reports.yml", ["matplotlib"])],
)  # fmt: skip
def test_ansible_builder_creates_the_build_context(work, tmp_path, definition, extra_python):
    context = tmp_path / "context"
    created = _run(str(BIN / "ansible-builder"), "create", "-f", definition, "-c", str(context),
                   cwd=work)  # fmt: skip
    assert created.returncode == 0, created.stdout + created.stderr
    (containerfile,) = [p for p in context.iterdir() if p.name in ("Containerfile", "Dockerfile")]
    text = containerfile.read_text()
    assert 'ANSIBLE_INSTALL_REFS="ansible-core>=2.19,<2.22 ansible-runner"' in text
    assert "ansible-galaxy collection install" in text and "introspect.py introspect" in text
    # The tarball goes into the build, and the galaxy stage (working in _build) installs it.
    assert (context / "_build" / "collections" / TARBALL).is_file()
    wanted = yaml.safe_load((context / "_build" / "requirements.yml").read_text())["collections"]
    assert wanted == [{"name": "collections/%s" % TARBALL, "type": "file"}]
    python = context / "_build" / "requirements.txt"
    listed = python.read_text() if python.exists() else ""
    assert [
        n for n in ("matplotlib", "scipy") if re.search(r"^%s>=" % n, listed, re.M)
    ] == extra_python


def test_the_installed_collection_declares_what_an_ee_needs(work, tmp_path):
    collections = tmp_path / "collections"
    installed = _run(str(BIN / "ansible-galaxy"), "collection", "install", str(work / TARBALL),
                     "-p", str(collections), cwd=tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    found = _run(str(BIN / "python"), str(INTROSPECT), "introspect", str(collections), cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    needs = yaml.safe_load(found.stdout)
    assert needs["python"] == ["jmespath>=1.0  # from collection qts.observer"]
    assert needs["system"] == [
        "openssh-clients [platform:rpm]  # from collection qts.observer",
        "openssh-client [platform:dpkg]  # from collection qts.observer",
    ]
