"""Load and validate ``stress_config.json`` against ``schemas/stress_config.schema.json``.

Missing keys take the ``default`` the schema gives; unknown keys, wrong types and
impossible values are refused with one line naming the key and the problem.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from .schemas import CONFIG_SCHEMA, load_schema


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line for the operator."""


@dataclass(frozen=True)
class Settings:
    trigger_enabled: bool
    tick_source: str
    min_interval_s: float
    max_interval_s: float
    flush_interval_s: float
    max_buffer_size: int
    buffering: bool
    rotation_enabled: bool
    window_s: float
    max_files: int
    metrics_enabled: bool
    metrics_history_size: int
    report_interval_s: float
    max_line_bytes: int
    reject_sample_bytes: int


def _fill_defaults(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """Apply the schema's ``default`` values, two levels deep (sections, then keys)."""
    filled = copy.deepcopy(document)
    for section, section_schema in schema["properties"].items():
        values = filled.setdefault(section, copy.deepcopy(section_schema.get("default", {})))
        if isinstance(values, dict):
            for key, key_schema in section_schema.get("properties", {}).items():
                if "default" in key_schema:
                    values.setdefault(key, key_schema["default"])
    return filled


def _describe(error: jsonschema.ValidationError) -> str:
    location = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - known)
        return f"{location}: unknown key(s) {', '.join(map(repr, unknown))}; known: {sorted(known)}"
    return f"{location}: {error.message}"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ConfigError(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _reject_constant(token: str) -> float:
    raise ConfigError(f"{token} is not a valid JSON number")


def parse_config(text: str, origin: str) -> Settings:
    """Validate configuration text; raise ConfigError with a one-line message."""
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin}: not valid JSON: {exc}") from None
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    schema = load_schema(CONFIG_SCHEMA)
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is not None:
        raise ConfigError(f"{origin}: {_describe(error)}")
    values = _fill_defaults(schema, document)
    trigger, buffer = values["hybrid_trigger"], values["buffer"]
    if trigger["min_interval_ms"] > trigger["max_interval_ms"]:
        raise ConfigError(
            f"{origin}: hybrid_trigger.min_interval_ms ({trigger['min_interval_ms']}) "
            f"is greater than hybrid_trigger.max_interval_ms ({trigger['max_interval_ms']})"
        )
    rotation, performance, intake = values["rotation"], values["performance"], values["intake"]
    return Settings(
        trigger_enabled=trigger["enabled"],
        tick_source=trigger["tick_source"],
        min_interval_s=trigger["min_interval_ms"] / 1000.0,
        max_interval_s=trigger["max_interval_ms"] / 1000.0,
        flush_interval_s=buffer["flush_interval_ms"] / 1000.0,
        max_buffer_size=buffer["max_buffer_size"],
        buffering=buffer["enable_buffering"],
        rotation_enabled=rotation["enabled"],
        window_s=rotation["window_ms"] / 1000.0,
        max_files=rotation["max_files"],
        metrics_enabled=performance["enabled"],
        metrics_history_size=performance["metrics_history_size"],
        report_interval_s=performance["report_interval_ms"] / 1000.0,
        max_line_bytes=intake["max_line_bytes"],
        reject_sample_bytes=intake["reject_sample_bytes"],
    )


def load_config(path: Path) -> Settings:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_config(text, str(path))
