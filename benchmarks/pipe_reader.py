"""Reads a pipe or stdin and records the wall-clock arrival time of every line.

Usage: pipe_reader.py OUTPUT.json [FIFO]  (stdin when no FIFO). Writes [arrival, ...] as JSON.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    fd = os.open(sys.argv[2], os.O_RDONLY) if len(sys.argv) > 2 else 0
    arrivals: list[float] = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        now = time.time()
        arrivals.extend([now] * chunk.count(b"\n"))
    with open(sys.argv[1], "w") as handle:
        json.dump(arrivals, handle)


if __name__ == "__main__":
    main()
