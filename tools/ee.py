"""The smoke profile run inside an execution-environment-style container, as AWX runs a job.

    python3 tools/ee.py image      build the image (cached by what goes into it)
    python3 tools/ee.py smoke      run the smoke profile from it against two lab hosts

No registry is reachable here, so the image is built from the lab's Debian 13 root filesystem
(debootstrap, `make lab-images`): `podman import` makes it a base image, and
examples/ee/local/Containerfile adds what an EE built from examples/ee/ holds (ansible-core,
ansible-runner, the collection's Python needs and the collection from its tarball).

`smoke` boots two lab hosts (one booting systemd, one without it), and runs the AWX wrapper
playbook (examples/awx/stress.yml) through ansible-runner, AWX's engine, with process
isolation in podman: the job's private data folder is mounted at /runner, the report goes to
stress_artifacts_dir under it, so report.json and junit.xml come back to this machine, and
the set_stats verdict is read from the job's artifacts. Exit status 0 when the job passed and
its report is here.

podman runs with a containers.conf of its own (CONTAINERS_CONF): runc, cgroupfs, a file
events logger and no default ulimits, which a machine without systemd as PID 1 needs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

from cores import ROOT, load

WORK = ROOT / "build" / "ee"
CONTAINERS_CONF = WORK / "containers.conf"
CONTAINERFILE = ROOT / "examples" / "ee" / "local" / "Containerfile"
BASE_DISTRO = "13"
BASE_ROOTFS = ROOT / "lab" / "images" / f"debian-{BASE_DISTRO}" / "rootfs"
BASE_RECIPE = BASE_ROOTFS.parent / "recipe.json"
IMAGE = "localhost/qts-observer-ee"
# The lab of the smoke: its own name and addresses, clear of the test suite's labs.
LAB_NAME = "ee-smoke"
LAB_ADDR = "127.0.0.252"
LAB_PORT = "2252"
LAB_HOSTS = "2"
LAB_INIT = "systemd,sshd"
RUN_TIMEOUT_S = 1800  # catches a hang only: the run takes 2 to 4 minutes
PODMAN_SETTINGS = """\
# Written by tools/ee.py for podman on a machine without systemd as PID 1.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class EEError(Exception):
    """What stops the run; the message says what to do."""


def _podman_env() -> dict[str, str]:
    CONTAINERS_CONF.parent.mkdir(parents=True, exist_ok=True)
    CONTAINERS_CONF.write_text(PODMAN_SETTINGS)
    return dict(os.environ, CONTAINERS_CONF=str(CONTAINERS_CONF))


def _run(argv: list[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    print(f"== {what}", flush=True)
    done = subprocess.run(argv, check=False, **kwargs)
    if done.returncode:
        raise EEError(f"{what} failed (exit {done.returncode}): {' '.join(argv)}")
    return done


def _has_image(name: str, env: dict[str, str]) -> bool:
    found = subprocess.run(
        ["podman", "image", "exists", name], env=env, check=False, capture_output=True
    )
    return found.returncode == 0


def _pins() -> tuple[str, str]:
    """The newest tested ansible-core (its Python is Debian 13's) and .venv's ansible-runner."""
    core = load()[-1].pin
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.startswith("ansible-runner=="):
            return core, line.split("==", 1)[1].strip()
    raise EEError("requirements.txt pins no ansible-runner")


def _tarball(context: Path) -> Path:
    built = WORK / "tarball"
    shutil.rmtree(built, ignore_errors=True)
    galaxy = ROOT / ".venv" / "bin" / "ansible-galaxy"
    _run([str(galaxy), "collection", "build", str(ROOT), "--output-path", str(built)],
         "build the collection's tarball")  # fmt: skip
    (tarball,) = built.glob("qts-observer-*.tar.gz")
    return Path(shutil.copy2(tarball, context / "qts-observer.tar.gz"))


def _tarball_content(tarball: Path) -> bytes:
    """What the tarball holds, without its build time: its FILES.json (every file's checksum)
    and MANIFEST.json (the version), so that an unchanged collection reuses its image."""
    with tarfile.open(tarball) as archive:
        return b"".join(
            archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.name in ("FILES.json", "MANIFEST.json")
        )


def _remove_older(name: str, env: dict[str, str]) -> None:
    """Drop this image's earlier builds: each is 380 MB."""
    listed = subprocess.run(
        ["podman", "images", "--format", "{{.Repository}}:{{.Tag}}", IMAGE],
        env=env, check=False, capture_output=True, text=True,
    )  # fmt: skip
    older = [line for line in listed.stdout.split() if line != name]
    if older:
        subprocess.run(["podman", "rmi", *older], env=env, check=False, capture_output=True)


def image(env: dict[str, str]) -> str:
    """Build the image unless one of the same inputs exists; its name."""
    if not BASE_RECIPE.is_file():
        raise EEError(f"no lab image at {BASE_ROOTFS.parent}: run `make lab-images` first")
    if shutil.which("podman") is None:
        raise EEError("podman not found: apt-get install podman runc")
    base = f"{IMAGE}-base:{hashlib.sha256(BASE_RECIPE.read_bytes()).hexdigest()[:12]}"
    if not _has_image(base, env):
        # The root filesystem as a tar stream into podman import (no file in between).
        tar = subprocess.Popen(["tar", "-C", str(BASE_ROOTFS), "-c", "."], stdout=subprocess.PIPE)
        try:
            _run(["podman", "import", "--quiet", "-", base],
                 f"import the lab's Debian {BASE_DISTRO} root as {base}", stdin=tar.stdout, env=env)  # fmt: skip
        finally:
            assert tar.stdout is not None
            tar.stdout.close()
            if tar.wait():
                raise EEError(f"tar of {BASE_ROOTFS} failed (exit {tar.returncode})")
    context = WORK / "context"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copy2(ROOT / "meta" / "ee-requirements.txt", context)
    tarball = _tarball(context)
    core, runner = _pins()
    inputs = hashlib.sha256()
    for part in (CONTAINERFILE.read_bytes(), base.encode(), _tarball_content(tarball),
                 (context / "ee-requirements.txt").read_bytes(), core.encode(), runner.encode()):  # fmt: skip
        inputs.update(part)
    name = f"{IMAGE}:{inputs.hexdigest()[:12]}"
    if _has_image(name, env):
        print(f"== image {name}: up to date", flush=True)
        return name
    _run(["podman", "build", "--quiet", "--network", "host", "--file", str(CONTAINERFILE),
          "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"ANSIBLE_CORE={core}",
          "--build-arg", f"ANSIBLE_RUNNER={runner}", "--tag", name, str(context)],
         f"build {name} (ansible-core {core}, ansible-runner {runner})", env=env)  # fmt: skip
    _remove_older(name, env)
    return name


def _lab(*args: str) -> None:
    lab = [sys.executable, str(ROOT / "tools" / "lab.py")]
    _run([*lab, *args, "--name", LAB_NAME], f"lab {args[0]} ({LAB_NAME})")


def _job_folder(inventory: Path) -> Path:
    """ansible-runner's private data folder: the AWX project, the lab's inventory, the
    smoke's variables; the reports go to /runner/reports, this folder's reports/."""
    data = WORK / "job"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(ROOT / "examples" / "awx", data / "project")
    shutil.rmtree(data / "project" / "collections")  # the image holds the collection
    shutil.copytree(inventory, data / "inventory")
    (data / "env").mkdir()
    extra = {**json.loads((ROOT / "examples" / "lab-levels.json").read_text()),
             "stress_profile": "smoke", "stress_artifacts_dir": "/runner/reports"}  # fmt: skip
    (data / "env" / "extravars").write_text(json.dumps(extra))
    return data


def _stats(artifacts: Path) -> dict:
    for path in sorted(artifacts.glob("*/job_events/*.json")):
        event = json.loads(path.read_text())
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data", {}).get("qts_stress", {})
    raise EEError(f"the job left no playbook_on_stats event under {artifacts}")


def smoke(name: str, env: dict[str, str]) -> int:
    lab_dir = ROOT / "lab" / LAB_NAME
    try:
        _lab("up", "--hosts", LAB_HOSTS, "--init", LAB_INIT, "--base-addr", LAB_ADDR,
             "--port", LAB_PORT)  # fmt: skip
        data = _job_folder(lab_dir / "inventory")
        ssh = lab_dir / "ssh"  # the key and known_hosts the inventory names, at the same path
        runner = [
            str(ROOT / ".venv" / "bin" / "ansible-runner"), "run", str(data),
            "--playbook", "stress.yml", "--ident", "smoke",
            "--process-isolation", "--process-isolation-executable", "podman",
            "--container-image", name,
            "--container-volume-mount", f"{ssh}:{ssh}:ro",
            # The lab hosts listen on loopback addresses of this machine.
            "--container-option=--network=host",
        ]  # fmt: skip
        print(f"== run the smoke profile in {name} against {LAB_HOSTS} lab hosts", flush=True)
        done = subprocess.run(runner, env=env, check=False, timeout=RUN_TIMEOUT_S)
        verdict = _stats(data / "artifacts")
        run_dir = data / "reports" / str(verdict.get("run_id"))
        if not (run_dir / "report.json").is_file() or not (run_dir / "junit.xml").is_file():
            raise EEError(f"the job's report.json and junit.xml did not come back to {run_dir}")
        report = json.loads((run_dir / "report.json").read_text())
        print(f"== the job's report on this machine: {run_dir}/report.json, junit.xml")
        print(f"== ansible-runner exit {done.returncode}; set_stats qts_stress: "
              f"{json.dumps(verdict, sort_keys=True)}")  # fmt: skip
        print(f"== report.json: verdict {report['verdict']}, ansible-core "
              f"{report['controller']['ansible_core']} on Python {report['controller']['python']}, "
              + ", ".join(f"{h} {e['verdict']}" for h, e in sorted(report["hosts"].items())))  # fmt: skip
        ok = done.returncode == 0 and report["verdict"] == verdict.get("verdict") == "PASS"
        return 0 if ok else 1
    finally:
        _lab("down")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("what", choices=["image", "smoke"])
    args = parser.parse_args()
    try:
        env = _podman_env()
        name = image(env)
        return smoke(name, env) if args.what == "smoke" else 0
    except (EEError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
