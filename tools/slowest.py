"""The slowest tests and fixtures of a test run, from what the suite's timing plugin wrote.

Each pytest process of a run (every group, every xdist worker) appends JSON lines to its own
file in the times folder (QTS_TEST_TIMES, set by tools/phases.py): one per test
(`{"kind": "test", "id": ..., "group": ..., "outcome": "passed|failed|skipped", "setup": s,
"call": s, "teardown": s}`) and one per fixture set up (`{"kind": "fixture", "id": "<name> (<scope>) <where>", "setup": s}`).

    python3 tools/slowest.py build/test-times [--count 20]

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


def reset(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def _records(folder: Path) -> list[dict]:
    records = []
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a killed worker
    return records


def report(folder: Path, count: int = 20) -> None:
    records = _records(folder)
    tests = [r for r in records if r.get("kind") == "test"]
    fixtures = [r for r in records if r.get("kind") == "fixture"]
    if not tests:
        print(f"\n== no test timings in {folder}")
        return
    for record in tests:
        record["total"] = sum(record.get(phase, 0.0) for phase in ("setup", "call", "teardown"))
    tests.sort(key=lambda r: r["total"], reverse=True)
    fixtures.sort(key=lambda r: r.get("setup", 0.0), reverse=True)
    total = sum(r["total"] for r in tests)
    print(f"\n== the {min(count, len(tests))} slowest of {len(tests)} tests ({total:.0f} s in all)")
    print(f"  {'total':>7} {'setup':>7} {'call':>7} {'teardown':>8}  group  test")
    for record in tests[:count]:
        print(
            f"  {record['total']:7.1f} {record.get('setup', 0):7.1f} {record.get('call', 0):7.1f} "
            f"{record.get('teardown', 0):8.1f}  {record.get('group', '-'):<6} {record['id']}"
        )
    print(f"\n== the {min(count, len(fixtures))} slowest fixture set-ups")
    for record in fixtures[:count]:
        print(f"  {record.get('setup', 0):7.1f} s  {record['id']}")
    outcomes = [record.get("outcome", "passed") for record in tests]
    groups = sorted({record.get("group", "-") for record in tests})
    print(f"\n== every pytest group ({', '.join(groups)}) together:")
    print(
        f"pytest: {outcomes.count('passed')} passed, {outcomes.count('failed')} failed, "
        f"{outcomes.count('skipped')} skipped"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    report(args.folder, args.count)
    return 0


if __name__ == "__main__":
    sys.exit(main())
