"""Each role's defaults/main.yml and meta/argument_specs.yml list the same variables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ROLES = ("observer", "monitor", "stress")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


@pytest.mark.parametrize("role", ROLES)
def test_defaults_and_argument_specs_list_the_same_variables(role: str) -> None:
    defaults = load(REPO / "roles" / role / "defaults" / "main.yml")
    options = load(REPO / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"][
        "options"
    ]
    assert set(defaults) == set(options), {
        "only in defaults": sorted(set(defaults) - set(options)),
        "only in argument_specs": sorted(set(options) - set(defaults)),
    }


@pytest.mark.parametrize("role", ROLES)
def test_argument_spec_defaults_match_plain_defaults(role: str) -> None:
    defaults = load(REPO / "roles" / role / "defaults" / "main.yml")
    options = load(REPO / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]["main"][
        "options"
    ]
    for name, value in defaults.items():
        if isinstance(value, str) and "{{" in value:
            continue  # templated defaults are described, not repeated
        assert "default" in options[name], f"{name}: argument_specs lacks its default"
        assert options[name]["default"] == value, name


@pytest.mark.parametrize("role", ROLES)
def test_every_public_variable_is_commented_and_prefixed(role: str) -> None:
    text = (REPO / "roles" / role / "defaults" / "main.yml").read_text()
    previous = ""
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+):", line)
        if match:
            assert match.group(1).startswith(f"{role}_"), match.group(1)
            assert previous.startswith("#") or previous.startswith(f"{role}_"), (
                f"{match.group(1)} has no comment above it"
            )
        if line.strip():
            previous = line


@pytest.mark.parametrize("role", ROLES)
def test_internal_variables_are_underscored(role: str) -> None:
    internal = load(REPO / "roles" / role / "vars" / "main.yml")
    assert internal
    assert all(name.startswith(f"_{role}_") for name in internal), sorted(internal)


def test_observer_default_config_is_the_spec_configuration() -> None:
    """The role's default reads the Observer's shipped file; that file is the spec's JSON."""
    import json

    shipped = json.loads((REPO / "files/observer/config/stress_config.json").read_text())
    assert shipped == {
        "hybrid_trigger": {
            "enabled": True,
            "tick_source": "simulation",
            "min_interval_ms": 20.0,
            "max_interval_ms": 200.0,
        },
        "buffer": {"flush_interval_ms": 500.0, "max_buffer_size": 50000, "enable_buffering": True},
        "rotation": {"enabled": True, "window_ms": 600000, "max_files": 20},
        "performance": {"enabled": True, "metrics_history_size": 10000},
    }
    defaults = load(REPO / "roles/observer/defaults/main.yml")
    assert (
        "observer_source_dir ~ '/config/stress_config.json'" in defaults["observer_stress_config"]
    )
