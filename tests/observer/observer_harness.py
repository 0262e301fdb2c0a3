"""Runs the real Observer process on real pipes and files, for the tests beside this file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OBSERVER_DIR = ROOT / "files" / "observer"
sys.path.insert(0, str(OBSERVER_DIR))
sys.path.insert(0, str(ROOT / "plugins" / "module_utils"))

from snapshots import SnapshotGenerator  # noqa: E402

DEFAULT_CONFIG = json.loads((OBSERVER_DIR / "config" / "stress_config.json").read_text())


def snapshot_lines(count: int, seed: int = 7, prefix: str = "") -> list[bytes]:
    generator = SnapshotGenerator(seed, prefix=prefix)
    now = time.time()
    return [generator.line(now + i * 0.001) for i in range(count)]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class ObserverProcess:
    """The real Observer, started as users start it: ``python observer.py`` from its directory."""

    def __init__(self, tmp: Path, config: dict | None = None, fifo: bool = True) -> None:
        self.tmp = tmp
        self.output_dir = tmp / "out"
        self.config_path = tmp / "stress_config.json"
        self.config_path.write_text(json.dumps(config if config is not None else DEFAULT_CONFIG))
        self.pidfile = tmp / "observer.pid"
        self.log_file = tmp / "observer.log"
        self.fifo = tmp / "input.fifo" if fifo else None
        if self.fifo is not None:
            os.mkfifo(self.fifo, 0o600)
        self.proc: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "observer.py",
            "--config",
            str(self.config_path),
            "--output-dir",
            str(self.output_dir),
            "--pidfile",
            str(self.pidfile),
            "--log-file",
            str(self.log_file),
        ]
        if self.fifo is not None:
            argv += ["--input", str(self.fifo)]
        return argv

    def start(self, stdin=subprocess.DEVNULL, wait_ready: bool = True) -> ObserverProcess:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        env["QTS_OBSERVER_STANDALONE"] = "1"
        self.proc = subprocess.Popen(
            self.argv(),
            cwd=OBSERVER_DIR,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        if wait_ready:
            wait_for(self._ready, what="the Observer's pidfile")
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            _out, err = self.proc.communicate()
            raise AssertionError(f"Observer exited {self.proc.returncode}: {err.decode()}")
        return self.pidfile.exists()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.record_lines()]

    def record_lines(self) -> list[bytes]:
        lines: list[bytes] = []
        for path in self.record_files():
            data = path.read_bytes()
            assert data == b"" or data.endswith(b"\n"), f"{path.name} ends mid-line"
            lines.extend(data.splitlines())
        return lines

    def record_files(self) -> list[Path]:
        files = sorted(self.output_dir.glob("observer-*.jsonl"))
        active = self.output_dir / "observer.jsonl"
        if active.exists():
            files.append(active)
        return files

    def rejects(self) -> list[dict]:
        path = self.output_dir / "rejects.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_bytes().splitlines()]

    def metrics(self) -> list[dict]:
        path = self.output_dir / "metrics.jsonl"
        return [json.loads(line) for line in path.read_bytes().splitlines()]

    def log(self) -> str:
        return self.log_file.read_text()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def embedded_snapshots(record_lines: list[bytes]) -> list[bytes]:
    """The snapshot bytes inside each record line, cut out without re-serialising."""
    marker = b',"snapshot":'
    out = []
    for line in record_lines:
        index = line.index(marker)
        assert line.endswith(b"}")
        out.append(line[index + len(marker) : -1])
    return out


def config_with(**sections: dict) -> dict:
    config = json.loads(json.dumps(DEFAULT_CONFIG))
    for section, values in sections.items():
        config.setdefault(section, {}).update(values)
    return config
