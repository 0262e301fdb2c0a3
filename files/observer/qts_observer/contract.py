"""The snapshot contract: parse one input line and decide whether it is a valid snapshot.

``observation_snapshot.schema.json`` is the truth. The hot path uses a validator compiled
from that file (``schema_compiler``), proven equal to jsonschema by a property-based test;
jsonschema itself explains every rejection in ``rejects.jsonl``.
"""

from __future__ import annotations

from typing import Any, Callable

import jsonschema
import orjson

from .schema_compiler import compile_schema
from .schemas import SNAPSHOT_SCHEMA, load_schema

# orjson refuses NaN/Infinity, invalid UTF-8, a byte order mark, lone surrogates and
# nesting deeper than 1024 levels, so every line it accepts is strict JSON.
parse_json: Callable[[bytes], Any] = orjson.loads
ParseError = orjson.JSONDecodeError


class SnapshotContract:
    """Validates parsed snapshots: a fast yes/no, and jsonschema's reasons for a no."""

    def __init__(self) -> None:
        schema = load_schema(SNAPSHOT_SCHEMA)
        self.is_valid: Callable[[Any], bool] = compile_schema(schema)
        self._validator = jsonschema.Draft202012Validator(schema)

    def reasons(self, document: Any) -> list[str]:
        """Every way ``document`` breaks the contract, as ``path: message`` lines."""
        reasons = []
        for error in sorted(self._validator.iter_errors(document), key=lambda e: e.path):
            location = "/".join(str(part) for part in error.absolute_path) or "(top level)"
            reasons.append(f"{location}: {error.message}"[:500])
        return reasons


def known_run_id(document: Any) -> str | None:
    """The snapshot's run_id when the document has a usable one, else None."""
    # JSON values: a dict or str here is exactly one (json.loads makes no subclass).
    if isinstance(document, dict):
        meta = document.get("meta")
        if isinstance(meta, dict):
            run_id = meta.get("run_id")
            if isinstance(run_id, str):
                return run_id
    return None
