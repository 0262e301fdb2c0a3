"""Fixtures for the collection's tests: the checkout made importable as qts.observer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTION_PARTS = ("galaxy.yml", "meta", "plugins", "roles", "playbooks", "files")


@pytest.fixture(scope="session")
def collections_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections root whose qts/observer is a tree of symlinks into the checkout."""
    root = tmp_path_factory.mktemp("collections")
    target = root / "ansible_collections" / "qts" / "observer"
    target.mkdir(parents=True)
    for part in COLLECTION_PARTS:
        (target / part).symlink_to(REPO / part)
    return root


@pytest.fixture(scope="session")
def ansible_env(collections_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
    )
    env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
    return env


class PlaybookRunner:
    def __init__(self, env: dict[str, str], workdir: Path) -> None:
        self.env = env
        self.workdir = workdir
        self.count = 0

    def __call__(
        self, tasks: str, extra_vars: dict | None = None, check: bool = False
    ) -> tuple[subprocess.CompletedProcess[str], dict]:
        """Run tasks on localhost; tasks may write facts to `results` (returned as a dict)."""
        self.count += 1
        results = self.workdir / f"results-{self.count}.json"
        playbook = self.workdir / f"playbook-{self.count}.yml"
        body = textwrap.indent(textwrap.dedent(tasks).strip("\n"), " " * 4)
        playbook.write_text(
            "- hosts: localhost\n"
            "  gather_facts: false\n"
            "  tasks:\n"
            f"{body}\n"
            "    - name: Save the results\n"
            "      ansible.builtin.copy:\n"
            '        content: "{{ results | default({}) | to_json }}"\n'
            f"        dest: {results}\n"
            "        mode: '0600'\n"
            "      check_mode: false\n"
        )
        argv = [
            str(BIN / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            json.dumps(extra_vars or {}),
            str(playbook),
        ]
        if check:
            argv.append("--check")
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        data = json.loads(results.read_text()) if results.exists() else {}
        return proc, data

    def each_case(
        self, module: str, cases: dict[str, dict]
    ) -> tuple[subprocess.CompletedProcess[str], dict]:
        """Run a module once per case (name: its arguments), failures included, in one
        playbook run (a run costs seconds of CPU); each outcome comes back by its case name."""
        tasks = f"""
            - name: Run the module for each case
              {module}: "{{{{ item.value }}}}"
              loop: "{{{{ cases | dict2items }}}}"
              register: tried
              ignore_errors: true
            - name: Keep each outcome by its case
              ansible.builtin.set_fact:
                results: "{{{{ dict(tried.results | map(attribute='item.key') | zip(tried.results)) }}}}"
        """
        return self(tasks, {"cases": cases})


@pytest.fixture
def playbook(ansible_env: dict[str, str], tmp_path: Path) -> PlaybookRunner:
    return PlaybookRunner(ansible_env, tmp_path)
