"""The ansible-core releases the collection is tested on (tests/ansible-core.toml), each in
a virtualenv of its own.

The first release is the one of .venv (requirements.txt pins it with the test tools); every
other one gets .venv-<version> with only that ansible-core, on the controller Python given
for it, found on PATH or else under pyenv (a pyenv shim on PATH fails for a version that is
not the selected one, so the interpreter's real folder is used). A virtualenv is made once
and made again when its pin changes; concurrent callers wait for one another.

Usage:
  python3 tools/cores.py list             the versions, one per line
  python3 tools/cores.py venv 2.21        make .venv-2.21 if needed; print its bin folder
"""

from __future__ import annotations

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
CORES_FILE = ROOT / "tests" / "ansible-core.toml"
MAIN_VENV = ROOT / ".venv"
INSTALL_TIMEOUT_S = 900  # a cold pip cache on a loaded machine


class CoreError(Exception):
    """A release that cannot be set up here; the message says what to do."""


@dataclass(frozen=True)
class Core:
    version: str
    pin: str
    python: str
    sanity_pythons: tuple[str, ...]

    @property
    def requirement(self) -> str:
        return "ansible-core==%s" % self.pin


def load(path: Path = CORES_FILE) -> list[Core]:
    """The releases of tests/ansible-core.toml, oldest first."""
    entries = tomllib.loads(path.read_text())["core"]
    return [Core(e["version"], e["pin"], e["python"], tuple(e["sanity_pythons"])) for e in entries]


def find(version: str, cores: list[Core] | None = None) -> Core:
    cores = cores or load()
    for core in cores:
        if core.version == version:
            return core
    raise CoreError(
        "ansible-core %s is not one of the tested releases (%s, in %s)"
        % (version, ", ".join(c.version for c in cores), CORES_FILE.relative_to(ROOT))
    )


def interpreter_dir(version: str) -> str | None:
    """The folder of a working ``python<version>``: on PATH, else a pyenv install of it."""
    name = "python%s" % version
    found = shutil.which(name)
    if found:
        # The interpreter's own folder, not a pyenv shim's: the shims' folder holds a shim of
        # every version, which fails for any version but the selected one.
        real = subprocess.run(
            [found, "-c", "import sys; print(sys.executable)"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if real.returncode == 0 and real.stdout.strip():
            return os.path.dirname(real.stdout.strip())
    for candidate in sorted(Path.home().glob(".pyenv/versions/%s.*/bin/%s" % (version, name))):
        return str(candidate.parent)
    return None


def venv_dir(core: Core, cores: list[Core] | None = None) -> Path:
    cores = cores or load()
    return MAIN_VENV if core == cores[0] else ROOT / (".venv-%s" % core.version)


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
    )
    if done.returncode:
        raise CoreError("%s failed (exit status %d):\n%s" % (what, done.returncode,
                                                             (done.stderr or done.stdout)[-3000:]))  # fmt: skip


def ensure_venv(core: Core) -> Path:
    """The bin folder of the release's virtualenv, made (or remade for a new pin) if needed."""
    cores = load()
    folder = venv_dir(core, cores)
    if folder == MAIN_VENV:
        if not (folder / "bin" / ".installed").exists():
            raise CoreError("%s is not made yet: run `make venv` first" % folder)
        return folder / "bin"
    stamp = folder / ".installed"
    with open(ROOT / (".venv-%s.lock" % core.version), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text().strip() == core.requirement:
            return folder / "bin"
        python_dir = interpreter_dir(core.python)
        if python_dir is None:
            raise CoreError(
                "ansible-core %s needs python%s on the controller: none on PATH or under "
                "~/.pyenv/versions (install it, or put its folder on PATH)"
                % (core.version, core.python)
            )
        shutil.rmtree(folder, ignore_errors=True)
        python = os.path.join(python_dir, "python%s" % core.python)
        _run([python, "-m", "venv", str(folder)], "python%s -m venv %s" % (core.python, folder))
        pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        _run([*pip, "--upgrade", "pip"], "pip upgrade in %s" % folder)
        _run([*pip, core.requirement], "pip install %s" % core.requirement)
        stamp.write_text(core.requirement + "\n")
    return folder / "bin"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the tested releases, one per line")
    venv = commands.add_parser("venv", help="make the release's virtualenv; print its bin folder")
    venv.add_argument("version", help="a release line of tests/ansible-core.toml, e.g. 2.21")
    args = parser.parse_args()
    try:
        if args.command == "list":
            print("\n".join(core.version for core in load()))
        else:
            print(ensure_venv(find(args.version)))
    except CoreError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
