"""Every module and callback documents itself: `ansible-doc` parses DOCUMENTATION, EXAMPLES
and RETURN, and modules declare their check-mode support."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.process

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py"))
CALLBACKS = sorted(p.stem for p in (ROOT / "plugins" / "callback").glob("*.py"))


def ansible_doc(kind: str, name: str) -> dict:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(ROOT / "build" / "collections"))
    result = subprocess.run(
        [str(BIN / "ansible-doc"), "--json", "-t", kind, f"qts.observer.{name}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    return json.loads(result.stdout)[f"qts.observer.{name}"]


@pytest.mark.parametrize("name", MODULES)
def test_module_documentation_parses(name):
    doc = ansible_doc("module", name)
    assert doc["doc"]["short_description"]
    assert doc["examples"].strip()
    assert doc["return"]
    assert doc["doc"]["attributes"]["check_mode"]["support"] in ("full", "partial", "none")
    for option, spec in doc["doc"].get("options", {}).items():
        descriptions = (
            spec["description"] if isinstance(spec["description"], list) else [spec["description"]]
        )
        assert all(isinstance(d, str) for d in descriptions), option


@pytest.mark.parametrize("name", CALLBACKS)
def test_callback_documentation_parses(name):
    doc = ansible_doc("callback", name)
    assert doc["doc"]["short_description"]


FILTERS = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.py"))


@pytest.mark.parametrize("name", FILTERS)
def test_filter_documentation_parses(name):
    doc = ansible_doc("filter", name)
    assert doc["doc"]["short_description"]
    assert doc["examples"].strip()
    assert doc["return"]
