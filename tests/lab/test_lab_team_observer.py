"""A team's own Observer, provisioned and stressed end to end as users run it: `make smoke`
with `-e @examples/runbook-observer.yml` and observer_source_dir at the test Observer of
tests/observers/team_observer (its own record shape, standard input only, no pidfile, no
metrics file, its own log format), on lab hosts under both service managers at once: odd
hosts boot systemd, even hosts run sshd only (the bundled supervisor). Two hosts run it
sound and must PASS with full integrity; each other host runs one of its faults, which must
be found, counted exactly and named. One fleet run; one test per host's outcome.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from labkit import NEEDS_ROOT, Lab, is_root
from stressrun import ROOT, SmokeRun, latest_report, lenient_level, levels_args

LAB = Lab(name="pytest-team", base_addr="127.0.0.221", port=2221)
TEAM_OBSERVER = ROOT / "tests" / "observers" / "team_observer"
PROFILE = ROOT / "examples" / "runbook-observer.yml"
LEVELS = [lenient_level(20, 5), lenient_level(20, 10)]
SENT = [100, 200]
HOLD = 9  # the abrupt host's buffer: written 9 records at a time, never by time
# host -> (fault, service manager); odd hosts boot systemd, even ones the supervisor.
FLEET = {
    "observer-01": ("", "systemd"),
    "observer-02": ("", "supervisor"),
    "observer-03": ("drop", "systemd"),
    "observer-04": ("alter", "supervisor"),
    "observer-05": ("signal", "systemd"),
    "observer-06": ("abrupt", "supervisor"),
}

if not is_root():
    pytest.skip(NEEDS_ROOT, allow_module_level=True)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def host_vars(fault: str) -> str:
    text = (
        f"observer_environment:\n  QTS_OBSERVER_STANDALONE: '1'\n  TEAM_OBSERVER_FAULT: '{fault}'\n"
    )
    if fault == "abrupt":
        text += (
            "observer_stress_config_overrides:\n"
            f"  buffer: {{flush_interval_ms: 3600000.0, max_buffer_size: {HOLD}}}\n"
        )
    return text


@pytest.fixture(scope="module")
def fleet(tmp_path_factory) -> Iterator[dict]:
    """The one fleet run: report, junit, output, and each host's verdicts by criterion."""
    LAB.run("down")
    try:
        LAB.run("up", "--hosts", str(len(FLEET)), "--init", "systemd,sshd")
        assert sorted(h["name"] for h in LAB.state()["hosts"]) == sorted(FLEET)
        work = tmp_path_factory.mktemp("team")
        inventory = work / "inventory"
        shutil.copytree(LAB.inventory, inventory)
        (inventory / "group_vars" / "all.yml").write_text(f"observer_source_dir: {TEAM_OBSERVER}\n")
        (inventory / "host_vars").mkdir()
        for host, (fault, _unused) in FLEET.items():
            (inventory / "host_vars" / f"{host}.yml").write_text(host_vars(fault))
        artifacts = work / "artifacts"
        run = SmokeRun(inventory, artifacts, "-e", f"@{PROFILE}", *levels_args(LEVELS))
        returncode = run.wait()
        (work / "run.log").write_text(run.text)  # beside the artifacts, to read on a failure
        report, junit, run_dir = latest_report(artifacts)
        yield {"returncode": returncode, "text": run.text, "report": report, "junit": junit,
               "run_dir": run_dir}  # fmt: skip
    finally:
        LAB.run("down")
        assert not LAB.processes()


def entry(fleet: dict, host: str) -> dict:
    return fleet["report"]["hosts"][host]


def criterion(fleet: dict, host: str, name: str) -> dict:
    return next(c for c in entry(fleet, host)["criteria"] if c["name"] == name)


def breaches(fleet: dict, host: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for level in entry(fleet, host)["levels"]:
        for breach in level["breaches"]:
            found.setdefault(breach["criterion"], []).append(breach)
    return found


@pytest.mark.parametrize("host", ["observer-01", "observer-02"])
def test_a_sound_team_observer_passes_with_full_integrity(fleet, host):
    assert entry(fleet, host)["verdict"] == "PASS", entry(fleet, host)
    for level, sent in zip(entry(fleet, host)["levels"], SENT):
        assert level["verdict"] == "PASS", level["breaches"]
        assert level["not_measured"] == []
        assert level["sent"] == level["written"] == sent
        assert level["lost"] == level["duplicated"] == level["modified"] == 0
        assert level["decision_fields"] == level["extra_fields"] == []
        assert level["latency_source"] == "records (observer.took_ms)"
        assert level["latency_ms"]["p99"] >= 0 and level["reports"] >= 1
    for item in entry(fleet, host)["criteria"]:
        assert item["verdict"] == "PASS", item
    # Found by the service manager, under the one it was given (the launcher's PID file).
    assert f"[progress] {host} L2" in fleet["text"]
    log = (fleet["run_dir"] / host / "observer.log").read_text()
    assert log.count("PatternRecord dispatched observed_run=stress_") == sum(SENT)
    assert not (fleet["run_dir"] / host / "metrics.jsonl").exists()


def test_the_fleet_fails_and_names_each_faulty_host(fleet):
    report = fleet["report"]
    assert fleet["returncode"] != 0
    assert report["verdict"] == "FAIL"
    assert {host: e["verdict"] for host, e in report["hosts"].items()} == {
        host: "PASS" if not fault else "FAIL" for host, (fault, _unused) in FLEET.items()
    }
    reasons = dict(reason.split(": ", 1) for reason in report["reasons"])
    assert set(reasons) == {"observer-03", "observer-04", "observer-05", "observer-06"}
    assert "STRESS VERDICT: FAIL (" in fleet["text"]


def test_dropping_one_snapshot_in_100_is_counted_exactly(fleet):
    host = "observer-03"
    assert [level["lost"] for level in entry(fleet, host)["levels"]] == [1, 2]
    assert [b["measured"] for b in breaches(fleet, host)["integrity_lost"]] == [1, 2]
    integrity = criterion(fleet, host, "integrity")
    assert integrity["verdict"] == "FAIL"
    assert "300 sent, 297 written once, 3 lost, 0 duplicated, 0 modified" in integrity["evidence"]
    assert criterion(fleet, host, "clean_shutdown")["verdict"] == "PASS"  # lost, not held


def test_changing_prices_is_found_as_modified(fleet):
    host = "observer-04"
    assert [level["modified"] for level in entry(fleet, host)["levels"]] == SENT
    assert criterion(fleet, host, "contract")["verdict"] == "FAIL"
    assert criterion(fleet, host, "integrity")["verdict"] == "FAIL"
    assert "L1 integrity_modified" in " ".join(fleet["report"]["reasons"])


def test_a_signal_field_is_a_contract_violation(fleet):
    host = "observer-05"
    contract = criterion(fleet, host, "contract")
    assert contract["verdict"] == "FAIL"
    assert "decision fields: signal" in contract["evidence"]
    assert [b["measured"] for b in breaches(fleet, host)["contract_decision"]] == [["signal"]] * 2
    assert criterion(fleet, host, "integrity")["verdict"] == "PASS"  # nothing lost or changed


def test_exiting_at_sigterm_without_writing_is_an_unclean_shutdown(fleet):
    host = "observer-06"
    stop = criterion(fleet, host, "clean_shutdown")
    held = sum(SENT) % HOLD
    assert stop["verdict"] == "FAIL", stop
    assert "exit status 0" in stop["evidence"]  # its exit status alone says all is well
    assert f"{held} record(s) taken in and never written: lost at the stop" in stop["evidence"]
