"""Locations of the schema files shipped beside the Observer: the contract's single source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
SNAPSHOT_SCHEMA = SCHEMA_DIR / "observation_snapshot.schema.json"
RECORD_SCHEMA = SCHEMA_DIR / "pattern_record.schema.json"
CONFIG_SCHEMA = SCHEMA_DIR / "stress_config.schema.json"


def load_schema(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        return json.load(handle)
