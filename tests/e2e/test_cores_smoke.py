"""`make smoke CORE=<release>` with every tested ansible-core but .venv's (which the other
e2e tests run): the real roles, Observer and monitor on this machine, provisioned by the
first release and again (nothing to change) by the next, each run judged and reported with
no support or deprecation warning from that release."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cores import load
from stressrun import LAB_LEVELS, latest_report, local_install_root, make_smoke

pytestmark = pytest.mark.e2e

OTHER_CORES = load()[1:]


@pytest.fixture(scope="module")
def local_root(tmp_path_factory) -> Iterator[Path]:
    """One install root for every release: the first run provisions, the next ones reuse it."""
    with local_install_root(tmp_path_factory.mktemp("qts_local")) as root:
        yield root


@pytest.mark.parametrize("core", OTHER_CORES, ids=[core.version for core in OTHER_CORES])
def test_the_smoke_passes_with_full_integrity_and_no_warning(core, local_root, tmp_path):
    artifacts = tmp_path / "artifacts"
    result = make_smoke("inventories/local", artifacts, "-e", f"qts_local_root={local_root}",
                        "-e", f"@{LAB_LEVELS}", core=core.version)  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "STRESS VERDICT: PASS" in result.stdout
    assert "does not support Ansible version" not in output
    assert "[DEPRECATION WARNING]" not in output, output[-6000:]
    report, junit, _unused = latest_report(artifacts)
    assert report["controller"]["ansible_core"] == core.pin
    assert report["controller"]["python"].startswith(core.python + ".")
    host = report["hosts"]["localhost"]
    assert host["verdict"] == "PASS"
    assert [level["rate"] for level in host["levels"]] == [5, 50]
    for level in host["levels"]:
        assert level["verdict"] == "PASS", level["breaches"]
        assert level["sent"] == level["written"] == level["rate"] * level["duration_s"]
        assert level["lost"] == level["duplicated"] == level["modified"] == 0
    assert all(c["verdict"] == "PASS" for c in host["criteria"]), host["criteria"]
    assert not junit.findall(".//failure")
