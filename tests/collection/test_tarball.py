"""The collection as users get it: built with ansible-galaxy, installed into a temporary path,
read with ansible-doc and syntax-checked from the installed copy. The tarball holds what
users run and nothing of the checkout's tooling (galaxy.yml's build_ignore)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import yaml
from stressrun import build_tarball, run_captured, shell_env

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
SHIPPED = (
    "plugins",
    "roles",
    "playbooks",
    "files",
    "meta",
    "examples",
    "README.md",
    "CHANGELOG.md",
    "LICENSE",
    "changelogs/changelog.yaml",
)
PLUGIN_TYPES = ("module", "filter", "callback")


def tool(cwd: Path, env: dict[str, str], name: str, *argv: str):
    """One of the venv's Ansible tools, as a user runs it (its output captured)."""
    return run_captured([str(BIN / name), *argv], cwd, env, timeout_s=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("tarball")
    env = shell_env()
    tarball = build_tarball(work / "dist")
    collections = work / "collections"
    done = tool(
        work, env, "ansible-galaxy", "collection", "install", str(tarball), "-p", str(collections)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with tarfile.open(tarball) as archive:
        members = archive.getnames()
    config = work / "ansible.cfg"
    config.write_text(f"[defaults]\ncollections_path = {collections}\n")
    return {
        "members": members,
        "root": collections / "ansible_collections" / "qts" / "observer",
        "env": {**env, "ANSIBLE_CONFIG": str(config)},
        "cwd": work,
    }


def test_the_tarball_holds_what_users_run_and_nothing_that_build_ignore_excludes(installed):
    members = installed["members"]
    for shipped in SHIPPED:
        assert any(m == shipped or m.startswith(shipped + "/") for m in members), shipped
    ignored = yaml.safe_load((ROOT / "galaxy.yml").read_text())["build_ignore"]
    for pattern in ignored:
        if pattern == "*.pyc":
            assert not any(m.endswith(".pyc") for m in members)
        elif pattern == "**/__pycache__":
            assert not any("__pycache__" in m.split("/") for m in members)
        else:
            assert not any(m == pattern or m.startswith(pattern + "/") for m in members), pattern
    # No virtualenv (.venv, nor .venv-<release> of tools/cores.py): nothing of this machine.
    assert not any(m.split("/")[0].startswith(".venv") for m in members), members[:20]
    for tooling in ("tests", "tools", "benchmarks", "Makefile", "ansible.cfg", "inventories"):
        assert not any(m == tooling or m.startswith(tooling + "/") for m in members), tooling
    manifest = json.loads((installed["root"] / "MANIFEST.json").read_text())
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]


def _doc(installed: dict, kind: str, name: str) -> dict:
    shown = tool(installed["cwd"], installed["env"], "ansible-doc", "-t", kind, "--json", name)
    assert shown.returncode == 0 and not shown.stderr.strip(), (name, shown.stderr)
    return json.loads(shown.stdout)[name]


def test_every_plugin_and_role_is_documented_from_the_installed_copy(installed):
    root = installed["root"]
    seen = 0
    for kind in PLUGIN_TYPES:
        folder = {"module": "modules", "filter": "filter", "callback": "callback"}[kind]
        for path in sorted((root / "plugins" / folder).glob("*.py")):
            doc = _doc(installed, kind, "qts.observer.%s" % path.stem)
            assert doc["doc"]["short_description"], path.stem
            seen += 1
    assert seen >= 12
    for role in sorted(p.name for p in (root / "roles").iterdir() if not p.name.startswith("_")):
        doc = _doc(installed, "role", "qts.observer.%s" % role)
        assert doc["entry_points"]["main"]["options"], role
    stress = _doc(installed, "role", "qts.observer.stress")["entry_points"]["main"]["options"]
    # Typed to the leaf: the keys of a level and of its thresholds.
    level = stress["stress_levels"]["options"]
    assert set(level) == {"rate", "duration_s", "thresholds", "shape"}
    assert set(level["thresholds"]["options"]) == {
        "min_throughput",
        "max_latency_ms",
        "max_cpu_pct",
        "max_memory_pct",
        "max_visibility_ms",
    }


@pytest.mark.parametrize("playbook", ["stress.yml", "provision.yml"])
def test_each_playbook_passes_a_syntax_check_from_the_installed_copy(installed, playbook):
    playbook_path = str(installed["root"] / "playbooks" / playbook)
    checked = tool(
        installed["cwd"],
        installed["env"],
        "ansible-playbook",
        "--syntax-check",
        "-i",
        "localhost,",
        playbook_path,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
