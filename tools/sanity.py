"""make sanity: ansible-test sanity on this checkout, offline, as Ansible collections run it.

ansible-test needs the collection under a path ending in ansible_collections/<ns>/<name> (a
real copy: it refuses a symlink) and downloads a pip bootstrap from a host this machine
cannot reach. So: copy the checkout's files (tracked and untracked, not ignored) into
build/sanity/ansible_collections/qts/observer as a git work tree of its own (ansible-test
then skips what .gitignore skips, its own tests/output included), pre-seed the bootstrap
(tools/seed_pip_bootstrap.py), and run `ansible-test sanity --venv` once with every Python
given on PATH: the version-dependent tests run on each, the others once. Every test's own
requirements come from the package index.

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
    if found:
        # The interpreter's own folder, not a pyenv shim's: the shims' folder holds a shim of
        # every version, which ansible-test would take and fail on.
        real = subprocess.run(
            [found, "-c", "import sys; print(sys.executable)"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if real.returncode == 0 and real.stdout.strip():
            return os.path.dirname(real.stdout.strip())
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
    found: dict[str, str] = {}
    for version in args.python or ["%d.%d" % sys.version_info[:2]]:
        folder = interpreter_dir(version)
        if folder is None:
            # Reported, not hidden: the run says which versions it could not test.
            print("== python%s not found: ansible-test sanity not run on it" % version)
        else:
            found[version] = folder
    if not found:
        print("ansible-test sanity not run: none of the Pythons was found", file=sys.stderr)
        return 1
    # One run for every Python: the tests that depend on the version (compile, import) run on
    # each one found on PATH, the others (pylint, validate-modules, ...) once, on the
    # controller's. Three runs would install and run those three times.
    # pyenv's shims are left out: ansible-test takes a shim of a version not selected for a
    # Python it can use, and fails on it instead of skipping that version.
    rest = [d for d in os.environ.get("PATH", "").split(os.pathsep) if "/.pyenv/" not in d]
    path = [str(BIN), *dict.fromkeys(found.values()), *rest]
    env = dict(os.environ, PATH=os.pathsep.join(path))
    print("== ansible-test sanity on Python %s" % ", ".join(found), flush=True)
    done = subprocess.run(
        [str(BIN / "ansible-test"), "sanity", "--venv", "--color", "no", *args.rest],
        cwd=COPY, env=env, check=False,
    )  # fmt: skip
    if done.returncode:
        print("ansible-test sanity failed (Python %s)" % ", ".join(found), file=sys.stderr)
        return 1
    print("ansible-test sanity clean on Python %s" % ", ".join(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
