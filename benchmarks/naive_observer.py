"""The naive Observer loop the issue compares against: json.loads, jsonschema validate,
json.dumps, write. Reads stdin, writes records to argv[1], prints its own rate."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jsonschema

SCHEMA = (
    Path(__file__).resolve().parents[1] / "files/observer/schemas/observation_snapshot.schema.json"
)


def main() -> None:
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    count = 0
    with open(sys.argv[1], "w") as out:
        started = time.perf_counter()
        for seq, line in enumerate(sys.stdin.buffer, start=1):
            received = time.time()
            snapshot = json.loads(line)
            validator.validate(snapshot)
            record = {
                "seq": seq,
                "received_at": received,
                "dispatched_at": time.time(),
                "snapshot": snapshot,
            }
            out.write(json.dumps(record) + "\n")
            count += 1
        elapsed = time.perf_counter() - started
    print(json.dumps({"snapshots": count, "seconds": elapsed, "per_s": count / elapsed}))


if __name__ == "__main__":
    main()
