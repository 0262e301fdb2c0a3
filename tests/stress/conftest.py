"""Puts the collection on the import path for the stress tests: build/collections, which
``make collection`` links (``make test`` does it)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "build" / "collections"
if not (COLLECTIONS / "ansible_collections" / "qts" / "observer").exists():
    raise RuntimeError("the collection is not linked: run `make collection` (make test does)")
sys.path.insert(0, str(COLLECTIONS))
