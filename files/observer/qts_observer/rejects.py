"""``rejects.jsonl``: every line that is not a valid snapshot, with why and when."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson

from .appendfile import AppendFile
from .clock import utc_stamp

REJECTS_NAME = "rejects.jsonl"


class RejectWriter(AppendFile):
    """Appends one JSON line per rejected input line; written in batches, fsynced at close."""

    def __init__(self, directory: Path, sample_bytes: int) -> None:
        super().__init__(directory / REJECTS_NAME)
        self._sample_bytes = sample_bytes
        self.count = 0

    def add(
        self,
        raw: bytes,
        reasons: list[str],
        received_at: float,
        run_id: str | None = None,
        raw_length: int | None = None,
    ) -> None:
        sample = raw[: self._sample_bytes]
        entry: dict[str, object] = {
            "received_at": utc_stamp(received_at),
            "reasons": reasons,
            "run_id": run_id,
            "raw_bytes": len(raw) if raw_length is None else raw_length,
            "raw_truncated": len(sample) < (len(raw) if raw_length is None else raw_length),
        }
        try:
            entry["raw"] = sample.decode("utf-8")
        except UnicodeDecodeError:
            entry["raw_base64"] = base64.b64encode(sample).decode("ascii")
        self.queue(orjson.dumps(entry) + b"\n")
        self.count += 1
