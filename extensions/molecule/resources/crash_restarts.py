"""Run on a Molecule instance (as root): SIGKILL a unit's main process N times in a row and
print, as JSON, how long systemd waited each time before the new process started.

    crash_restarts.py qts-observer.service 3   ->   {"delays_s": [1.02, 2.01, 3.95]}
"""

import json
import os
import signal
import subprocess
import sys
import time


def show(unit: str) -> dict[str, str]:
    out = subprocess.run(
        ["systemctl", "show", "--property=MainPID,ActiveState,SubState", unit],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def wait_running(unit: str, not_pid: str, timeout_s: float = 60.0) -> float:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = show(unit)
        if state["ActiveState"] == "active" and state["MainPID"] not in ("0", not_pid):
            return time.monotonic()
        time.sleep(0.02)
    raise SystemExit(f"{unit} not restarted within {timeout_s} s: {show(unit)}")


def main() -> None:
    unit, count = sys.argv[1], int(sys.argv[2])
    delays = []
    for _unused in range(count):
        wait_running(unit, "0")
        pid = show(unit)["MainPID"]
        killed = time.monotonic()
        os.kill(int(pid), signal.SIGKILL)
        delays.append(round(wait_running(unit, pid) - killed, 3))
        time.sleep(0.5)  # the new process is up: the next crash is a crash of a running service
    print(json.dumps({"delays_s": delays}))


if __name__ == "__main__":
    main()
