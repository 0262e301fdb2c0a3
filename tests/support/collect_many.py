"""Collect several pytest selections in one process and print each one's node ids as JSON.

    python tests/support/collect_many.py '{"name": ["-m", "e2e", "tests/e2e/x.py"], ...}'

One process imports what the tests import once; a process per selection would import it all
again each time (about 3 CPU-seconds a selection here). The test modules themselves are
imported afresh for each selection, as a process of their own would: a module that builds its
parameters at import would otherwise give other node ids the second time.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import pytest


class _Collected:
    def __init__(self) -> None:
        self.node_ids: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.node_ids = [item.nodeid for item in session.items]


TESTS = Path(__file__).resolve().parents[1]


def _forget_test_modules() -> None:
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if name != "__main__" and path and Path(path).resolve().is_relative_to(TESTS):
            del sys.modules[name]


def main(selections: dict[str, list[str]]) -> dict[str, dict]:
    found = {}
    for name, args in selections.items():
        _forget_test_modules()
        collected = _Collected()
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            status = pytest.main(
                ["--collect-only", "-q", "-p", "no:cacheprovider", *args], plugins=[collected]
            )
        found[name] = {"status": int(status), "node_ids": collected.node_ids,
                       "output": printed.getvalue()[-2000:]}  # fmt: skip
    return found


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
