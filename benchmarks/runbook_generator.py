"""The original runbook's load generator, kept for comparison only: sleep-paced, printing
JSON to a block-buffered stdout. Usage: runbook_generator.py RATE COUNT (t0 on stderr)."""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime, timezone


def main() -> None:
    rate, count = float(sys.argv[1]), int(sys.argv[2])
    print(json.dumps({"t0": time.time()}), file=sys.stderr, flush=True)
    for i in range(count):
        now = datetime.now(timezone.utc).isoformat()
        snapshot = {
            "meta": {"run_id": f"stress_{i}", "timestamp": now, "source": "stress_test_simulation"},
            "market_data": {
                "symbol": "STRESS_TEST",
                "price": round(100.0 + random.uniform(-0.5, 0.5), 2),
                "volume": random.randint(100, 10000),
                "timestamp": now,
            },
            "system_state": {"status": "running", "memory_usage": round(random.uniform(30, 80), 1)},
        }
        print(json.dumps(snapshot))
        time.sleep(1.0 / rate)


if __name__ == "__main__":
    main()
