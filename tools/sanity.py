"""make sanity: ansible-test sanity on this checkout, offline, as Ansible collections run it.

ansible-test needs the collection under a path ending in ansible_collections/<ns>/<name> (a
real copy: it refuses a symlink) and downloads a pip bootstrap from a host this machine
cannot reach. So: copy the checkout's files (tracked and untracked, not ignored) into
build/sanity/ansible_collections/qts/observer as a git work tree of its own (ansible-test
then skips what .gitignore skips, its own tests/output included), pre-seed the bootstrap
(tools/seed_pip_bootstrap.py), and run `ansible-test sanity --venv` for each Python given.
Every test's own requirements come from the package index.

Usage: python tools/sanity.py [--python 3.11 ...] [ansible-test arguments after --]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPY = ROOT / "build" / "sanity" / "ansible_collections" / "qts" / "observer"
BIN = Path(sys.executable).parent


def checkout_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    return [name for name in listed if name and (ROOT / name).is_file()]


def copy_checkout() -> None:
    shutil.rmtree(COPY.parents[2], ignore_errors=True)
    for name in checkout_files():
        target = COPY / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=sanity", "-c", "user.email=sanity@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "sanity copy"]):
        subprocess.run(git + command, cwd=COPY, check=True, stdout=subprocess.DEVNULL)


def interpreter_dir(version: str) -> str | None:
    """The folder of a working ``python<version>``: on PATH, else a pyenv install of it (a
    pyenv shim on PATH fails for a version that is not the selected one)."""
    name = "python%s" % version
    found = shutil.which(name)
    if (
        found
        and subprocess.run([found, "-c", ""], capture_output=True, check=False).returncode == 0
    ):
        return os.path.dirname(found)
    for candidate in sorted(Path.home().glob(".pyenv/versions/%s.*/bin/%s" % (version, name))):
        return str(candidate.parent)
    return None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", action="append", default=[])
    parser.add_argument("rest", nargs="*", help="more ansible-test arguments (after --)")
    args = parser.parse_args()
    copy_checkout()
    subprocess.run([sys.executable, str(ROOT / "tools" / "seed_pip_bootstrap.py")], check=True)
    failed, ran = [], []
    for version in args.python or ["%d.%d" % sys.version_info[:2]]:
        folder = interpreter_dir(version)
        if folder is None:
            # Reported, not hidden: the run says which versions it could not test.
            print("== python%s not found: ansible-test sanity not run for it" % version)
            continue
        ran.append(version)
        env = dict(os.environ, PATH=os.pathsep.join([str(BIN), folder, os.environ.get("PATH", "")]))
        print("== ansible-test sanity --python %s" % version, flush=True)
        done = subprocess.run(
            [str(BIN / "ansible-test"), "sanity", "--venv", "--python", version, "--color", "no",
             *args.rest], cwd=COPY, env=env, check=False,
        )  # fmt: skip
        if done.returncode:
            failed.append(version)
    if failed or not ran:
        print("ansible-test sanity failed on Python %s" % (", ".join(failed) or "(none found)"),
              file=sys.stderr)  # fmt: skip
        return 1
    print("ansible-test sanity clean on Python %s" % ", ".join(ran))
    return 0


if __name__ == "__main__":
    sys.exit(main())
