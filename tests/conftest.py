"""What every test of the suite shares.

- The collection is importable the way Ansible itself does it: its collection finder over
  build/collections (``make collection`` links it; ``make test`` does it). A plain sys.path
  entry would shadow the finder for the other tests in the run.
- Every test belongs to one group, by the closest group marker (its own, else its module's
  ``pytestmark``): ``unit`` (in-process), ``process`` (real processes on this machine,
  seconds each), ``e2e`` (the playbooks as users run them, on this machine) or ``lab`` (lab
  hosts over SSH, root). A test without one is a collection error. ``make test-unit`` and
  its siblings run one group (``-m unit`` selects by the closest marker too: a test marked
  ``process`` in a ``unit`` module is left out of it); ``make test`` runs them all.
- Everything a test starts carries the run's QTS_TEST_RUN in its environment
  (tools/janitor.py finds it by that after a killed run); pytest run on its own owns it.
- SIGTERM is taken like Ctrl-C: the tests' teardowns still run (labs down, Observers
  stopped) before pytest exits.
- Each test's and fixture's duration is appended to QTS_TEST_TIMES when it is set (tools/
  phases.py sets it; tools/slowest.py prints the slowest).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from ansible.plugins.loader import init_plugin_loader
from ansible.utils.collection_loader import AnsibleCollectionConfig
from janitor import RUN_VARIABLE, new_run_id

ROOT = Path(__file__).resolve().parents[1]
COLLECTIONS = ROOT / "build" / "collections"
if not (COLLECTIONS / "ansible_collections" / "qts" / "observer").exists():
    raise RuntimeError("the collection is not linked: run `make collection` (make test does)")
if AnsibleCollectionConfig.collection_finder is None:
    init_plugin_loader([str(COLLECTIONS)])

GROUPS = ("unit", "process", "e2e", "lab")
# Fixtures quicker than this are not worth a line in the timings.
FIXTURE_TIMING_FLOOR_S = 0.05


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


class _Timings:
    """Appends each test's phases and each slow fixture set-up to this process's own file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.durations: dict[str, dict] = {}

    def write(self, record: dict) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        record = self.durations.setdefault(report.nodeid, {"outcome": "passed"})
        record[report.when] = round(report.duration, 3)
        if report.failed:
            record["outcome"] = "failed"
        elif report.skipped and record["outcome"] == "passed":
            record["outcome"] = "skipped"
        if report.when == "teardown":
            group = dict(report.user_properties).get("group", "-")
            record = self.durations.pop(report.nodeid)
            self.write({"kind": "test", "id": report.nodeid, "group": group, **record})

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: pytest.FixtureDef):
        started = time.monotonic()
        yield
        elapsed = time.monotonic() - started
        if elapsed >= FIXTURE_TIMING_FLOOR_S:
            where = fixturedef.baseid or "(plugin)"
            name = f"{fixturedef.argname} ({fixturedef.scope}) {where}"
            self.write({"kind": "fixture", "id": name, "setup": round(elapsed, 3)})


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(RUN_VARIABLE, new_run_id())
    signal.signal(signal.SIGTERM, _interrupt)
    folder = os.environ.get("QTS_TEST_TIMES")
    # Under xdist the workers write; the controller sees every report again.
    distributing = not hasattr(config, "workerinput") and config.getoption("numprocesses", None)
    if folder and not distributing:
        Path(folder).mkdir(parents=True, exist_ok=True)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        job = os.environ.get("QTS_TEST_JOB", "pytest")
        path = Path(folder) / f"{job}-{worker}-{os.getpid()}.jsonl"
        config.pluginmanager.register(_Timings(path), "qts-timings")


def group_of(item: pytest.Item) -> str | None:
    """The closest group marker: the test's own, else its class's or module's."""
    return next((m.name for m in item.iter_markers() if m.name in GROUPS), None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = [item.nodeid for item in items if group_of(item) is None]
    if missing:
        raise pytest.UsageError(
            f"every test needs a group marker ({', '.join(GROUPS)}), by itself or its module:"
            "\n  " + "\n  ".join(missing)
        )
    for item in items:
        item.user_properties.append(("group", group_of(item)))
    # `-m unit` would also pick a test marked process in a unit module (both markers are on
    # it): keep only the tests whose closest group is the one asked for.
    wanted = config.getoption("markexpr", "")
    if wanted in GROUPS:
        kept = [item for item in items if group_of(item) == wanted]
        dropped = [item for item in items if group_of(item) != wanted]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
