"""The roles' systemd units, rendered by Ansible and checked by systemd-analyze."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.process,
    pytest.mark.skipif(
        shutil.which("systemd-analyze") is None,
        reason="systemd-analyze not installed (Debian: apt-get install -y systemd)",
    ),
]

RENDER = """
- name: Render the units
  ansible.builtin.template:
    src: "{{ repo }}/roles/{{ item.role }}/templates/{{ item.src }}"
    dest: "{{ out }}/{{ item.dest }}"
    mode: "0644"
  loop:
    - {role: observer, src: observer.service.j2, dest: qts-observer.service}
    - {role: monitor, src: monitor.service.j2, dest: qts-monitor.service}
    - {role: observer, src: tmpfiles.conf.j2, dest: qts-observer.conf}
    - {role: monitor, src: tmpfiles.conf.j2, dest: qts-monitor.conf}
  vars:
    role_path: /unused

- name: Render the restart policy for an old and a new systemd
  ansible.builtin.template:
    src: "{{ repo }}/roles/_service/templates/restart.conf.j2"
    dest: "{{ out }}/restart-{{ item.release }}.conf"
    mode: "0644"
  loop:
    - {release: 252, spec: "{{ _observer_service }}"}
    - {release: 257, spec: "{{ _observer_service }}"}
  vars:
    role_path: /unused
    _service_spec: "{{ item.spec }}"
    __service_systemd_release: "{{ item.release }}"
    _service_backoff_systemd: 254
"""


def role_vars(role: str) -> dict:
    import yaml

    data = {}
    for part in ("defaults", "vars"):
        data.update(yaml.safe_load((REPO / "roles" / role / part / "main.yml").read_text()))
    return data


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory, ansible_env: dict[str, str]) -> Path:
    out = tmp_path_factory.mktemp("units")
    root = out / "root"
    for name in ("qts_observer", "qts_monitor"):  # systemd-analyze checks ExecStart exists
        (root / name / "venv" / "bin").mkdir(parents=True)
        (root / name / "venv" / "bin" / "python").symlink_to(sys.executable)
    variables = {**role_vars("observer"), **role_vars("monitor")}
    variables.update(
        repo=str(REPO),
        out=str(out),
        observer_install_dir=str(root / "qts_observer"),
        monitor_install_dir=str(root / "qts_monitor"),
        observer_user="root",
        observer_group="root",
        monitor_user="root",
        monitor_group="root",
        monitor_supplementary_groups=["root"],
        # What the quoting must survive: spaces, quotes, backslashes, % specifiers.
        observer_environment={"QTS_OBSERVER_STANDALONE": "1", "NOTE": "50% of a b"},
        monitor_interfaces=["lo"],
        # Facts the role vars read (the render runs without gathering them).
        _observer_code_owner="root",
        _observer_service_manager="systemd",
        _monitor_code_owner="root",
        _monitor_service_manager="systemd",
    )
    playbook = out / "render.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        + "\n".join("    " + line for line in RENDER.strip().splitlines())
        + "\n"
    )
    extra = out / "vars.json"
    extra.write_text(json.dumps(variables))
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            f"@{extra}",
            str(playbook),
        ],
        env=ansible_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.parametrize("unit", ["qts-observer.service", "qts-monitor.service"])
def test_systemd_analyze_verify_accepts_the_unit(units: Path, unit: str) -> None:
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(units / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


@pytest.mark.parametrize("unit", ["qts-observer.service", "qts-monitor.service"])
def test_the_unit_is_hardened(units: Path, unit: str) -> None:
    text = (units / unit).read_text()
    assert text.startswith("#")  # ansible_managed header
    for setting in (
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "CapabilityBoundingSet=",
        "ReadWritePaths=",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=10",
    ):
        assert re.search(rf"^{re.escape(setting)}", text, re.M), setting
    proc = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(units / unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.5, proc.stdout


def test_the_restart_policy_is_what_the_hosts_systemd_can_do(units: Path) -> None:
    """systemd 254 and later back off (RestartSteps=, RestartMaxDelaySec=); 252 cannot, and
    the drop-in says so instead of promising a backoff it would ignore."""
    old = (units / "restart-252.conf").read_text()
    new = (units / "restart-257.conf").read_text()
    for text in (old, new):
        for setting in ("Restart=on-failure", "RestartSec=1", "RestartPreventExitStatus=2",
                        "StartLimitBurst=5", "StartLimitIntervalSec=60"):  # fmt: skip
            assert re.search(rf"^{re.escape(setting)}$", text, re.M), setting
    assert "RestartSteps=5" in new and "RestartMaxDelaySec=30" in new  # 1 s x2 ... to 30 s
    assert "RestartSteps" not in old.replace("# ", "").split("cannot back off")[0]
    assert not re.search(r"^RestartSteps=", old, re.M) and "cannot back off" in old
    # This machine's systemd (252) accepts the unit with the drop-in it would get.
    dropin = units / "qts-observer.service.d"
    dropin.mkdir(exist_ok=True)
    (dropin / "restart.conf").write_text(old)
    proc = subprocess.run(
        ["systemd-analyze", "verify", str(units / "qts-observer.service")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr


def test_exec_start_and_environment_are_quoted(units: Path) -> None:
    text = (units / "qts-observer.service").read_text()
    assert 'Environment="NOTE=50%% of a b"' in text
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert '"--config"' in exec_start
    assert exec_start.endswith('observer.log"')
    monitor = (units / "qts-monitor.service").read_text()
    assert '"--interfaces" "lo"' in monitor
    assert "SupplementaryGroups=root" in monitor


def test_tmpfiles_recreate_the_run_directory_and_the_pipe(units: Path) -> None:
    text = (units / "qts-observer.conf").read_text()
    assert re.search(r"^d /run/qts_observer 0755 root root -$", text, re.M), text
    assert re.search(r"^p /run/qts_observer/input.fifo 0620 root qts-producers -$", text, re.M)
