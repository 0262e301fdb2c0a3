"""The qts.observer.stress_report callback, driven the way ansible-playbook drives it.

The callback is loaded by Ansible's callback loader from build/collections and fed
ansible-core's own result objects (``_RawTaskResult(...).as_callback_task_result()``, what the
task queue manager hands to callbacks in 2.19) built from recorded module results
(``data/recorded_run.json``, figures judged by the collection's gate). The last test runs a
real ansible-playbook with the callback enabled.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
COLLECTIONS = ROOT / "build" / "collections"
PLUGIN = COLLECTIONS / "ansible_collections/qts/observer/plugins/callback/stress_report.py"
NAME = "qts.observer.stress_report"
OPTION_ENV = (
    "QTS_STRESS_ARTIFACTS_DIR",
    "QTS_STRESS_SHOW_PROGRESS",
    "QTS_STRESS_REPORT_FILE",
    "QTS_STRESS_JUNIT_FILE",
)
LEVEL_CRITERIA = 7  # throughput, latency, cpu, memory, integrity, error_rate, process


class Console:
    """What the callback printed through its Display."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.warnings: list[str] = []

    def display(self, msg: str = "", *args, **kwargs) -> None:
        self.lines.extend(str(msg).splitlines() or [""])

    def warning(self, msg: str, *args, **kwargs) -> None:
        self.warnings.append(str(msg))

    def starting(self, prefix: str) -> list[str]:
        return [line for line in self.lines if line.startswith(prefix)]


@pytest.fixture(scope="module")
def callback_loader():
    if not PLUGIN.exists():
        subprocess.run(["make", "-s", "collection"], cwd=ROOT, check=True)
    from ansible.plugins.loader import callback_loader, init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    # What ansible-playbook does at start-up (CLI.run): install the collection finder.
    if AnsibleCollectionConfig.collection_finder is None:
        init_plugin_loader([str(COLLECTIONS)])
    return callback_loader


@pytest.fixture
def make_callback(callback_loader, monkeypatch):
    for name in OPTION_ENV:
        monkeypatch.delenv(name, raising=False)

    def make(**env: str):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        callback = callback_loader.get(NAME)
        assert callback is not None, "callback not found under %s" % COLLECTIONS
        callback.set_options()
        console = Console()
        monkeypatch.setattr(callback._display, "display", console.display)
        monkeypatch.setattr(callback._display, "warning", console.warning)
        return callback, console

    return make


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = tmp_path / "artifacts" / "20250101T120000Z-ab12"
    folder.mkdir(parents=True)
    return folder


def recorded_events(artifacts: Path) -> list[dict]:
    text = (DATA / "recorded_run.json").read_text(encoding="utf-8")
    return json.loads(text.replace("@ARTIFACTS@", str(artifacts)))["events"]


def callback_result(event: dict):
    """The object ansible-core 2.19 passes to callbacks, built by ansible-core itself."""
    from ansible.executor.task_result import _RawTaskResult
    from ansible.inventory.host import Host
    from ansible.playbook.task import Task

    task = Task.load(
        {"name": event["task"], "action": event["action"], "ignore_errors": event["ignore_errors"]}
    )
    return_data = copy.deepcopy(event["result"])
    if event["hook"] == "v2_runner_on_failed":
        return_data["failed"] = True
    raw = _RawTaskResult(
        host=Host(event["host"]), task=task, return_data=return_data, task_fields=task.dump_attrs()
    )
    return raw.as_callback_task_result()


def replay(callback, events: list[dict]) -> None:
    from ansible.executor.stats import AggregateStats

    for event in events:
        hook = getattr(callback, event["hook"])
        if event["hook"] == "v2_runner_on_failed":
            hook(callback_result(event), ignore_errors=event["ignore_errors"])
        else:
            hook(callback_result(event))
    callback.v2_playbook_on_stats(AggregateStats())


def read_report(folder: Path, name: str = "report.json") -> dict:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def junit_suites(folder: Path, name: str = "junit.xml") -> dict[str, ET.Element]:
    root = ET.parse(folder / name).getroot()
    assert root.tag == "testsuites"
    return {suite.get("name"): suite for suite in root.findall("testsuite")}


def failures(suite: ET.Element) -> dict[tuple[str, str], str]:
    return {
        (case.get("classname"), case.get("name")): case.find("failure").get("message")
        for case in suite.findall("testcase")
        if case.find("failure") is not None
    }


def only_hosts(events: list[dict], *hosts: str) -> list[dict]:
    return [event for event in events if event["host"] in hosts]


# -- the recorded failing run ---------------------------------------------------------------


def test_callback_identity(callback_loader):
    callback = callback_loader.get(NAME)
    assert callback.CALLBACK_VERSION == 2.0
    assert callback.CALLBACK_TYPE == "aggregate"
    assert callback.CALLBACK_NAME == NAME
    assert callback.CALLBACK_NEEDS_ENABLED is True
    callback._init_callback_methods()
    assert {
        "v2_runner_on_ok",
        "v2_runner_on_failed",
        "v2_runner_retry",
        "v2_runner_on_unreachable",
        "v2_playbook_on_stats",
    } <= callback._implemented_callback_methods


def test_failing_run_report_json(make_callback, artifacts):
    callback, console = make_callback()
    replay(callback, recorded_events(artifacts))

    assert console.warnings == []
    assert sorted(p.name for p in artifacts.iterdir()) == ["junit.xml", "report.json"]
    report = read_report(artifacts)
    assert report["run_id"] == "20250101T120000Z-ab12"
    assert report["profile"] == "smoke"
    assert report["seed"] == 7
    assert report["started_at"] == "2025-01-01T12:00:00Z"
    assert report["finished_at"].endswith("Z")
    assert report["verdict"] == "FAIL"
    assert [lv["rate"] for lv in report["levels_planned"]] == [5, 10]
    hosts = report["hosts"]
    assert {name: host["verdict"] for name, host in hosts.items()} == {
        "observer1": "PASS",
        "observer2": "FAIL",
        "observer3": "UNREACHABLE",
        "observer4": "FAIL",
    }
    assert "message" not in hosts["observer1"]
    assert [lv["level"] for lv in hosts["observer1"]["levels"]] == [1, 2]
    assert all(c["verdict"] == "PASS" for c in hosts["observer1"]["criteria"])

    level2 = hosts["observer2"]["levels"][1]
    assert level2["verdict"] == "FAIL"
    assert [(b["criterion"], b["measured"], b["limit"]) for b in level2["breaches"]] == [
        ("max_latency_ms", 91.3, 75.0),
        ("max_cpu_pct", 74.0, 60.0),
    ]
    # The gate failed the host on its level alone (no run-wide criterion breached).
    assert hosts["observer2"]["message"].startswith("Judge the run: stress verdict FAIL")
    assert all(c["verdict"] == "PASS" for c in hosts["observer2"]["criteria"])

    assert "Connection timed out" in hosts["observer3"]["message"]
    assert hosts["observer3"]["levels"] == []
    assert hosts["observer4"]["message"] == (
        "Inject level 1: process failure: Observer (pid 4242) exited with status -9 during level 1"
    )
    assert hosts["observer4"]["levels"] == []
    assert hosts["observer4"]["levels_not_run"] == [1, 2]


def test_failing_run_console(make_callback, artifacts):
    callback, console = make_callback()
    replay(callback, recorded_events(artifacts))

    assert "STRESS REPORT run 20250101T120000Z-ab12 (profile smoke, seed 7)" in console.lines
    header = console.starting("host ")
    assert len(header) == 1
    for column in ("level", "rate", "throughput", "p99 latency", "CPU", "memory", "errors"):
        assert column in header[0]
    row = console.starting("observer2  L2")[0].split()
    assert row[2:] == ["10/s", "10.000/s", "91.3", "ms", "74.0", "%", "52.0", "%", "0", "0", "FAIL"]
    assert console.starting("observer1  L1")[0].split()[-1] == "PASS"
    assert console.starting("observer3  -")[0].split()[-1] == "UNREACHABLE"
    assert console.starting("observer4  -")[0].split()[-1] == "FAIL"
    assert console.starting("observer1: PASS")
    stability = [line for line in console.lines if line.strip().startswith("stability")]
    assert len(stability) == 2 and "levels run 2/2" in stability[0]

    verdict = console.starting("STRESS VERDICT:")
    assert len(verdict) == 1
    assert verdict[0].startswith("STRESS VERDICT: FAIL (observer2: L2 max_latency_ms 91.3 > 75, ")
    assert "L2 max_cpu_pct 74 > 60" in verdict[0]
    assert "; observer3: unreachable; observer4: Inject level 1: process failure" in verdict[0]
    assert "observer1" not in verdict[0]
    assert console.lines[-1] == "stress artifacts: %s" % artifacts


def test_failing_run_junit(make_callback, artifacts):
    callback, _ = make_callback()
    replay(callback, recorded_events(artifacts))

    root = ET.parse(artifacts / "junit.xml").getroot()
    suites = junit_suites(artifacts)
    assert sorted(suites) == ["observer1", "observer2", "observer3", "observer4"]
    report = read_report(artifacts)
    run_criteria = len(report["hosts"]["observer1"]["criteria"])
    assert run_criteria == 9

    assert suites["observer1"].get("tests") == str(2 * LEVEL_CRITERIA + run_criteria)
    assert failures(suites["observer1"]) == {}

    failed2 = failures(suites["observer2"])
    assert failed2[("observer2.L2", "latency")] == (
        "p99 processing latency 91.300 ms not under 75 ms (measured 91.3, limit 75)"
    )
    assert "measured 74, limit 60" in failed2[("observer2.L2", "cpu")]
    level_failures = {key for key in failed2 if key[0] != "observer2.run"}
    assert level_failures == {("observer2.L2", "latency"), ("observer2.L2", "cpu")}
    failed_criteria = {
        c["name"] for c in report["hosts"]["observer2"]["criteria"] if c["verdict"] != "PASS"
    }
    assert {key[1] for key in failed2 if key[0] == "observer2.run"} == failed_criteria
    assert suites["observer2"].get("failures") == str(len(failed2))

    for name in ("observer3", "observer4"):
        suite = suites[name]
        failed = failures(suite)
        assert suite.get("tests") == suite.get("failures") == str(2 * LEVEL_CRITERIA + 1)
        assert len(failed) == 2 * LEVEL_CRITERIA + 1
        assert failed[(name + ".L2", "latency")].startswith("level not run")
        assert (name + ".run", "verdict") in failed
    assert "host unreachable" in failures(suites["observer3"])[("observer3.L1", "process")]

    total = sum(int(suite.get("tests")) for suite in suites.values())
    failed_total = sum(int(suite.get("failures")) for suite in suites.values())
    assert (root.get("tests"), root.get("failures")) == (str(total), str(failed_total))


# -- other outcomes -------------------------------------------------------------------------


def test_passing_run(make_callback, artifacts):
    callback, console = make_callback()
    replay(callback, only_hosts(recorded_events(artifacts), "observer1"))

    report = read_report(artifacts)
    assert report["verdict"] == "PASS"
    assert report["reasons"] == []
    assert list(report["hosts"]) == ["observer1"]
    assert console.starting("STRESS VERDICT:") == ["STRESS VERDICT: PASS"]
    suite = junit_suites(artifacts)["observer1"]
    assert suite.get("failures") == "0"
    assert len(suite.findall("testcase")) == 2 * LEVEL_CRITERIA + 9


def test_missing_level_is_not_a_pass(make_callback, artifacts):
    # The gate said PASS, but the report never saw level 2: the gap must not read as a PASS.
    events = [
        event
        for event in only_hosts(recorded_events(artifacts), "observer1")
        if event["task"] != "Judge level 2"
    ]
    callback, console = make_callback()
    replay(callback, events)

    host = read_report(artifacts)["hosts"]["observer1"]
    assert host["verdict"] == "FAIL"
    assert host["message"] == "levels not reported: L2"
    assert console.starting("observer1  L2")[0].split()[-2:] == ["NOT", "RUN"]
    failed = failures(junit_suites(artifacts)["observer1"])
    assert len(failed) == LEVEL_CRITERIA
    assert failed[("observer1.L2", "throughput")].startswith("level not run")
    assert "observer1: L2 not run" in console.starting("STRESS VERDICT: FAIL")[0]


def test_no_host_reported_is_a_fail(make_callback, artifacts):
    callback, console = make_callback()
    replay(callback, [e for e in recorded_events(artifacts) if e["task"] == "Plan the stress run"])

    report = read_report(artifacts)
    assert report["verdict"] == "FAIL"
    assert report["hosts"] == {}
    assert console.starting("STRESS VERDICT:") == [
        "STRESS VERDICT: FAIL (no host reported any result)"
    ]


def test_silent_without_a_run(make_callback, artifacts):
    # A provisioning-only playbook: failures, unreachable hosts, but no qts_stress_run.
    events = [e for e in recorded_events(artifacts) if e["task"] != "Plan the stress run"]
    events = [e for e in events if e["hook"] != "v2_runner_retry"]
    events = [e for e in events if "qts_stress_progress" not in e["result"]]
    callback, console = make_callback()
    replay(callback, events)

    assert console.lines == []
    assert console.warnings == []
    assert list(artifacts.iterdir()) == []


# -- progress -------------------------------------------------------------------------------


def test_progress_lines_and_warnings_once(make_callback, artifacts):
    events = recorded_events(artifacts)
    callback, console = make_callback()
    for event in events:
        if event["hook"] in ("v2_runner_retry", "v2_runner_on_ok") and event["task"].startswith(
            "Follow"
        ):
            getattr(callback, event["hook"])(callback_result(event))

    progress = console.starting("[progress] ")
    assert len(progress) == 12  # 2 hosts x 2 levels x 3 polls
    assert progress[0] == (
        "[progress] observer1 L1 5/s 2s/5s sent 8/25 written 6 p99 12.4 ms cpu 11.8 % mem 41.0 %"
    )
    assert progress[2].endswith("mem 41.0 % done")
    # observer2's level 2 polls carried the same early warning twice; it is shown once.
    polls_with_warning = [
        e
        for e in events
        if e["host"] == "observer2"
        and (e["result"].get("qts_stress_progress") or {}).get("warnings")
    ]
    assert len(polls_with_warning) == 2
    assert console.starting("[warning] ") == [
        "[warning] observer2 L2: CPU sustained 74.0 % (early warning 70-80 %)"
    ]
    assert console.warnings == []


def test_progress_can_be_hidden(make_callback, artifacts):
    callback, console = make_callback(QTS_STRESS_SHOW_PROGRESS="false")
    replay(callback, recorded_events(artifacts))

    assert console.starting("[progress] ") == []
    assert len(console.starting("[warning] observer2 L2: CPU sustained 74.0 %")) == 1
    warnings = read_report(artifacts)["hosts"]["observer2"]["warnings"]
    assert [(w["level"], w["kind"]) for w in warnings] == [(2, "warning")]


def test_progress_failure_is_shown_once(make_callback, artifacts):
    event = {
        "hook": "v2_runner_retry",
        "host": "observer9",
        "task": "Follow level 1",
        "action": "qts.observer.stress_progress",
        "ignore_errors": False,
        "result": {
            "qts_stress_progress": {"level": 1, "rate": 5, "failure": "Observer exited (-9)"}
        },
    }
    callback, console = make_callback()
    callback.v2_runner_retry(callback_result(event))
    callback.v2_runner_retry(callback_result(event))

    assert console.starting("[failure] ") == ["[failure] observer9 L1: Observer exited (-9)"]
    assert console.starting("[progress] observer9 L1 5/s -s/-s sent -/- written -")


# -- options, files and robustness ----------------------------------------------------------


def test_options_override_folder_and_names(make_callback, artifacts, tmp_path):
    elsewhere = tmp_path / "ci" / "stress"
    callback, console = make_callback(
        QTS_STRESS_ARTIFACTS_DIR=str(elsewhere),
        QTS_STRESS_REPORT_FILE="stress.json",
        QTS_STRESS_JUNIT_FILE="stress-junit.xml",
    )
    replay(callback, recorded_events(artifacts))

    assert list(artifacts.iterdir()) == []
    assert sorted(p.name for p in elsewhere.iterdir()) == ["stress-junit.xml", "stress.json"]
    assert read_report(elsewhere, "stress.json")["artifacts_dir"] == str(elsewhere)
    assert len(junit_suites(elsewhere, "stress-junit.xml")) == 4
    assert console.lines[-1] == "stress artifacts: %s" % elsewhere


def test_missing_run_folder_writes_nothing(make_callback, tmp_path):
    # Check mode: the planning task returns the plan without creating the folder.
    missing = tmp_path / "never-created"
    callback, console = make_callback()
    replay(callback, recorded_events(missing))

    assert not missing.exists()
    assert console.starting("STRESS VERDICT: FAIL")
    assert len(console.warnings) == 1 and "does not exist" in console.warnings[0]


def test_messages_are_made_xml_safe(make_callback, artifacts):
    events = only_hosts(recorded_events(artifacts), "observer1", "observer2")
    for event in events:
        level = event["result"].get("qts_stress_level")
        if level and level["breaches"]:
            level["breaches"][0]["message"] = "latency \x1b[31m<high> & \x00rising\x1b[0m"
    callback, _ = make_callback()
    replay(callback, events)

    failed = failures(junit_suites(artifacts)["observer2"])
    assert failed[("observer2.L2", "latency")].startswith("latency ?[31m<high> & ?rising?[0m")


def test_a_broken_payload_warns_instead_of_raising(make_callback, artifacts):
    events = recorded_events(artifacts)
    for event in events:
        if "qts_stress_run" in event["result"]:
            event["result"]["qts_stress_run"]["levels"] = 2  # not a list
    events.insert(
        2,
        {
            "hook": "v2_runner_on_ok",
            "host": "observer1",
            "task": "Odd",
            "action": "qts.observer.stress_gate",
            "ignore_errors": False,
            "result": {"qts_stress_level": {"level": "one"}, "qts_stress_progress": "text"},
        },
    )
    callback, console = make_callback()
    replay(callback, events)  # must not raise

    assert len(console.warnings) == 1
    assert "v2_playbook_on_stats failed" in console.warnings[0]


# -- a real ansible-playbook run ------------------------------------------------------------


def test_end_to_end_playbook(callback_loader, tmp_path):
    artifacts = tmp_path / "run"
    artifacts.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ANSIBLE_CONFIG" and k not in OPTION_ENV}
    env.update(
        ANSIBLE_CALLBACKS_ENABLED=NAME,
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_HOST_KEY_CHECKING="0",
    )
    command = [
        str(Path(sys.executable).with_name("ansible-playbook")),
        "-i",
        str(DATA / "inventory.yml"),
        str(DATA / "e2e.yml"),
        "-e",
        "artifacts=%s" % artifacts,
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    out = done.stdout
    assert done.returncode != 0, out  # host2 and host3 failed: the play's result stands
    assert "Callback dispatch" not in out + done.stderr, out + done.stderr

    report = read_report(artifacts)
    verdicts = {name: host["verdict"] for name, host in report["hosts"].items()}
    expected = {"host1": "PASS", "host2": "FAIL", "host3": "FAIL", "host4": "UNREACHABLE"}
    if shutil.which("ssh") is None:
        verdicts.pop("host4", None)
        expected.pop("host4")
    assert verdicts == expected
    assert report["run_id"] == "e2e"
    assert [lv["level"] for lv in report["hosts"]["host1"]["levels"]] == [1, 2]
    # The level gate is a loop with ignore_errors: both items reach the report.
    breach = report["hosts"]["host2"]["levels"][1]["breaches"][0]
    assert (breach["criterion"], breach["measured"], breach["limit"]) == (
        "max_latency_ms",
        91.3,
        75,
    )
    assert "exited with status -9" in report["hosts"]["host3"]["message"]

    # until/retries: two retries per host and level, then the final result of the loop.
    for host in ("host1", "host2"):
        for level in (1, 2):
            lines = [
                ln for ln in out.splitlines() if ln.startswith("[progress] %s L%d " % (host, level))
            ]
            assert len(lines) == 3, out
            assert lines[-1].endswith(" done")
    assert out.count("[warning] host2 L2: CPU sustained 74.0 %") == 1
    assert "STRESS VERDICT: FAIL (host2: L2 max_latency_ms 91.3 > 75" in out
    assert "stress artifacts: %s" % artifacts in out

    suites = junit_suites(artifacts)
    assert suites["host1"].get("failures") == "0"
    assert failures(suites["host2"])[("host2.L2", "latency")].endswith("(measured 91.3, limit 75)")
