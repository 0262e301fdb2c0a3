"""Fixtures for the Observer tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from observer_harness import ObserverProcess


@pytest.fixture
def observer_factory(tmp_path: Path) -> Iterator:
    started: list[ObserverProcess] = []

    def make(config: dict | None = None, fifo: bool = True, subdir: str = "") -> ObserverProcess:
        base = tmp_path / subdir if subdir else tmp_path
        base.mkdir(exist_ok=True)
        observer = ObserverProcess(base, config, fifo)
        started.append(observer)
        return observer

    yield make
    for observer in started:
        observer.kill()
