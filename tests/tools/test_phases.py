"""tools/phases.py, make test's runner: jobs started as the machine's cores carry them, in
order, after what they need; a failure skips what needs it; the table and the slowest tests
close the run. Real processes (short sleeps) stand for the jobs."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import cores
import pytest
import tomllib
from stressrun import ROOT

pytestmark = pytest.mark.process

PHASES = ROOT / "tools" / "phases.py"
# How long jobs that must be seen running side by side last.
SIDE_BY_SIDE_S = 6.0
# A job that says when it ran: the runner prefixes its lines with its name.
JOB = (
    "import sys, time; print('began', time.time(), flush=True); time.sleep(float(sys.argv[1]));"
    " print('ended', time.time(), flush=True); sys.exit(int(sys.argv[2]))"
)


def job(name: str, seconds: float = 1.0, status: int = 0, **cost: object) -> str:
    lines = [
        "[[job]]",
        f'name = "{name}"',
        f'phase = "{cost.pop("phase", "tests")}"',
        f"command = {json.dumps([sys.executable, '-c', JOB, str(seconds), str(status)])}",
    ]
    lines += [f"{key} = {json.dumps(value)}" for key, value in cost.items()]
    return "\n".join(lines) + "\n"


def run_phases(
    tmp_path: Path, jobs: str, *args: str, cores: int = 2
) -> subprocess.CompletedProcess:
    (tmp_path / "jobs.toml").write_text(jobs)
    env = dict(os.environ, QTS_TEST_CORES=str(cores), QTS_TEST_LAB_HOSTS="6")
    return subprocess.run(
        [sys.executable, str(PHASES), "--jobs", str(tmp_path / "jobs.toml"), *args],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def spans(output: str) -> dict[str, tuple[float, float]]:
    began = dict(re.findall(r"^\[(\S+)\s*\] began (\S+)$", output, re.M))
    ended = dict(re.findall(r"^\[(\S+)\s*\] ended (\S+)$", output, re.M))
    return {name: (float(began[name]), float(ended[name])) for name in began}


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_no_more_cores_at_once_than_the_machine_has(tmp_path):
    jobs = (
        job("big", 1.0, cores=2)
        # Long enough that the two, started together, overlap even if one's interpreter
        # takes seconds to start on a loaded machine.
        + job("small-1", SIDE_BY_SIDE_S)
        + job("small-2", SIDE_BY_SIDE_S)
        + job("other", 1.0, cores=2)
    )
    result = run_phases(tmp_path, jobs, cores=2)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = spans(result.stdout)
    assert sorted(ran) == ["big", "other", "small-1", "small-2"]
    # Each two-core job ran alone; the two one-core jobs ran side by side.
    for two_cores in ("big", "other"):
        assert not any(overlap(ran[two_cores], ran[n]) for n in ran if n != two_cores), ran
    assert overlap(ran["small-1"], ran["small-2"]), ran
    # In the file's order: the first big job first.
    assert ran["big"][0] < min(ran[n][0] for n in ran if n != "big")


def test_a_bigger_machine_runs_more_at_once(tmp_path):
    jobs = (
        job("big", SIDE_BY_SIDE_S, cores=2)
        + job("small-1", SIDE_BY_SIDE_S)
        + job("small-2", SIDE_BY_SIDE_S)
    )
    ran = spans(run_phases(tmp_path, jobs, cores=4).stdout)
    assert overlap(ran["big"], ran["small-1"]) and overlap(ran["big"], ran["small-2"]), ran


def test_workers_are_granted_from_what_is_free(tmp_path):
    jobs = job("pytest", 0.5, workers=4)
    result = run_phases(tmp_path, jobs, cores=3)
    assert "== start pytest (tests) at +0 s: 3 worker(s), 3 core(s)" in result.stdout, result.stdout


def test_a_job_waits_for_what_it_needs_and_is_skipped_when_that_failed(tmp_path):
    jobs = (
        job("images", 1.0, phase="checks")
        + job("lab", 0.5, needs=["images"])
        + job("broken", 0.2, status=3)
        + job("after-broken", 0.2, needs=["broken"])
    )
    result = run_phases(tmp_path, jobs, cores=4)
    assert result.returncode == 1
    ran = spans(result.stdout)
    assert ran["lab"][0] >= ran["images"][1], ran
    assert "after-broken" not in ran
    assert "[after-broken] not run: needs broken, which failed" in result.stdout
    assert "== last 2 lines of broken (exit 3)" in result.stdout
    table = result.stdout.split("== phase times", 1)[1]
    assert re.search(r"broken\s+\S+ s  FAILED \(exit 3\)", table), table
    assert re.search(r"images\s+\S+ s  ok", table), table


def test_only_runs_the_jobs_named_and_what_they_need(tmp_path):
    jobs = job("images", 0.2) + job("lab", 0.2, needs=["images"]) + job("lint", 0.2)
    result = run_phases(tmp_path, jobs, "--only", "lab")
    assert sorted(spans(result.stdout)) == ["images", "lab"], result.stdout
    unknown = run_phases(tmp_path, jobs, "--only", "nope")
    assert unknown.returncode != 0 and "unknown jobs ['nope']" in unknown.stderr


def test_the_slowest_tests_and_fixtures_close_the_run(tmp_path):
    times = tmp_path / "times"
    script = (
        "import json, os, pathlib; folder = pathlib.Path(os.environ['QTS_TEST_TIMES']);"
        "folder.mkdir(parents=True, exist_ok=True);"
        "(folder / 'w.jsonl').write_text("
        "json.dumps({'kind': 'test', 'id': 't::slow', 'group': 'lab', 'setup': 2, 'call': 5,"
        " 'teardown': 1}) + '\\n' + json.dumps({'kind': 'test', 'id': 't::quick', 'call': 0.1})"
        " + '\\n' + json.dumps({'kind': 'fixture', 'id': 'lab (module) t', 'setup': 2}) + '\\n')"
    )
    jobs = f'[[job]]\nname = "writer"\nphase = "tests"\ncommand = {json.dumps([sys.executable, "-c", script])}\n'
    result = run_phases(tmp_path, jobs, "--times", str(times))
    assert result.returncode == 0, result.stdout + result.stderr
    tail = result.stdout.split("== phase times", 1)[1]
    assert "== the 2 slowest of 2 tests (8 s in all)" in tail
    assert re.search(r"8\.0\s+2\.0\s+5\.0\s+1\.0\s+lab\s+t::slow", tail), tail
    assert tail.index("t::slow") < tail.index("t::quick")
    assert re.search(r"2\.0 s  lab \(module\) t", tail), tail
    # The last line counts every group's tests, as a CI log's reader expects.
    assert result.stdout.rstrip().splitlines()[-1] == "pytest: 2 passed, 0 failed, 0 skipped"


def test_small_jobs_do_not_jump_ahead_of_a_big_one_waiting_for_its_needs(tmp_path):
    jobs = (
        job("images", 2.0, phase="checks")
        + job("lint", 0.3, phase="checks")
        + job("lab", 1.0, cores=2, needs=["images"])
        + job("sanity", 1.0)
    )
    ran = spans(run_phases(tmp_path, jobs, cores=2).stdout)
    # lint's core, free after 0.3 s, is kept for lab: sanity waits until lab has run.
    assert ran["lab"][0] >= ran["images"][1], ran
    assert ran["sanity"][0] >= ran["lab"][1], ran


def test_every_job_of_make_test_has_work_to_do():
    """`make -n` of each job's command: a target that lost its recipe would pass in a second,
    having run nothing."""
    jobs = tomllib.loads((ROOT / "tests" / "jobs.toml").read_text())["job"]
    # Sanity once per tested ansible-core, each its own job.
    sanity = {"sanity-%s" % core.version for core in cores.load()}
    # Molecule once per scenario, each its own job.
    scenarios = {
        "molecule-%s" % scenario.parent.name
        for scenario in (ROOT / "extensions" / "molecule").glob("*/molecule.yml")
    }
    assert len(scenarios) >= 2, scenarios
    expected = {"images", "lint", "unit", "process", "e2e", "lab", *scenarios, *sanity}
    assert {j["name"] for j in jobs} >= expected
    for entry in jobs:
        argv = entry["command"]
        assert argv[0] == "make", entry
        dry = subprocess.run(
            [*argv[:1], "-n", *argv[1:]], cwd=ROOT, capture_output=True, text=True, check=False
        )
        assert dry.returncode == 0, (entry["name"], dry.stderr)
        assert "Nothing to be done" not in dry.stdout + dry.stderr, entry["name"]
        assert dry.stdout.strip(), entry["name"]


def collected(selections: dict[str, list[str]]) -> dict[str, list[str]]:
    """The node ids pytest collects for each selection (its arguments), in one process."""
    listed = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "support" / "collect_many.py"),
         json.dumps(selections)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    found = json.loads(listed.stdout)
    for name, result in found.items():
        assert result["status"] == 0, (name, result["output"])
    return {name: result["node_ids"] for name, result in found.items()}


def test_the_shares_of_each_pytest_group_hold_each_of_its_tests_once():
    jobs = tomllib.loads((ROOT / "tests" / "jobs.toml").read_text())["job"]
    shares: dict[str, list[list[str]]] = {}
    for entry in jobs:
        settings = dict(arg.split("=", 1) for arg in entry["command"] if "=" in arg)
        if "pytest-group" in entry["command"]:
            shares.setdefault(settings["GROUP"], []).append(
                shlex.split(settings.get("GROUP_ARGS", ""))
            )
    assert set(shares) == {"unit", "process", "e2e", "lab"}
    selections = {group: ["-m", group] for group in shares}
    for group, args_list in shares.items():
        for index, args in enumerate(args_list):
            selections["%s/%d" % (group, index)] = ["-m", group, *args]
    found = collected(selections)
    for group, args_list in shares.items():
        every = found[group]
        assert every, group
        picked = [
            node for index in range(len(args_list)) for node in found["%s/%d" % (group, index)]
        ]
        assert sorted(picked) == sorted(every), (group, set(every) ^ set(picked))


def test_lines_of_jobs_running_side_by_side_are_never_mixed(tmp_path):
    # Each job's lines are printed by its own thread: a line cut by another's would lose the
    # job's name, and a CI log's reader the line.
    chatter = "import sys\nfor i in range(3000): print('line', sys.argv[1], i, flush=True)\n"
    jobs = "".join(
        f'[[job]]\nname = "talker-{n}"\nphase = "tests"\n'
        f"command = {json.dumps([sys.executable, '-c', chatter, str(n)])}\n"
        for n in range(4)
    )
    result = run_phases(tmp_path, jobs, cores=4)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    whole = re.compile(r"\[talker-(\d)\] line (\d) \d+")
    said = [whole.fullmatch(line) for line in result.stdout.splitlines() if "line" in line]
    assert all(said), [line for line in result.stdout.splitlines() if "line" in line][:5]
    assert all(m.group(1) == m.group(2) for m in said if m)
    assert len(said) == 4 * 3000
