"""make sanity: ansible-test sanity on this checkout, offline, as Ansible collections run it,
with every tested ansible-core (tests/ansible-core.toml) in turn.

ansible-test needs the collection under a path ending in ansible_collections/<ns>/<name> (a
real copy: it refuses a symlink) and downloads a pip bootstrap from a host this machine
cannot reach. So, for each release: copy the checkout's files (tracked and untracked, not
ignored) that the collection ships (what `ansible-galaxy collection build` leaves out by
galaxy.yml's build_ignore is left out here too: the checkout's own tests, tools, benchmarks
and Molecule scenarios, which ruff and pytest check; tests/sanity stays, for its ignore
files, and .gitignore) into build/sanity/<release>/ansible_collections/qts/observer as a git work tree of
its own (ansible-test then skips what .gitignore skips, its own tests/output included),
pre-seed the bootstrap (tools/seed_pip_bootstrap.py), and run that release's
`ansible-test sanity --venv` once with every Python of its sanity_pythons on PATH: the
version-dependent tests run on each, the others once. Every test's own requirements come
from the package index.

Usage: python3 tools/sanity.py [--core 2.21 ...] [ansible-test arguments after --]
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from cores import ROOT, Core, CoreError, ensure_venv, find, interpreter_dir, load


def copy_dir(core: Core) -> Path:
    return ROOT / "build" / "sanity" / core.version / "ansible_collections" / "qts" / "observer"


# Kept whatever build_ignore says: ansible-test reads its ignore files from tests/sanity, and
# .gitignore keeps its own output (tests/output) out of what it checks.
SANITY_FILES = "tests/sanity/"
KEPT = frozenset({".gitignore"})


def shipped(name: str, build_ignore: list[str]) -> bool:
    """Whether `ansible-galaxy collection build` puts the file in the tarball: no pattern of
    build_ignore matches its path or a folder above it (as ansible-galaxy matches them)."""
    parts = name.split("/")
    above = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
    return not any(fnmatch.fnmatch(path, pattern) for path in above for pattern in build_ignore)


def checkout_files() -> list[str]:
    """The checkout's files that the collection ships, and its sanity ignore files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    build_ignore = yaml.safe_load((ROOT / "galaxy.yml").read_text()).get("build_ignore") or []
    return [
        name
        for name in listed
        if name
        and (ROOT / name).is_file()
        and (shipped(name, build_ignore) or name.startswith(SANITY_FILES) or name in KEPT)
    ]


def copy_checkout(copy: Path) -> None:
    shutil.rmtree(copy.parents[2], ignore_errors=True)
    for name in checkout_files():
        target = copy / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target, follow_symlinks=False)
    git = ["git", "-c", "user.name=sanity", "-c", "user.email=sanity@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "sanity copy"]):
        subprocess.run(git + command, cwd=copy, check=True, stdout=subprocess.DEVNULL)


def sanity(core: Core, rest: list[str]) -> bool:
    """One release's ansible-test sanity; False (and why, printed) unless it passed."""
    try:
        bin_dir = ensure_venv(core)
    except CoreError as error:
        print("ansible-test %s sanity not run: %s" % (core.version, error), file=sys.stderr)
        return False
    copy = copy_dir(core)
    copy_checkout(copy)
    # ansible-test keeps its test environments under ~/.ansible/test/venv, named by Python and
    # requirements but not by release: two releases at once (make test runs each as a job)
    # would build the same one together and break it. So each release gets a HOME of its own
    # (kept between runs), and pip its usual cache, so that nothing is downloaded twice.
    pip_cache = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")
    home = ROOT / "build" / "sanity-home" / core.version
    home.mkdir(parents=True, exist_ok=True)
    own_home = dict(os.environ, HOME=str(home), PIP_CACHE_DIR=pip_cache)
    seed = [str(bin_dir / "python"), str(ROOT / "tools" / "seed_pip_bootstrap.py")]
    subprocess.run(seed, check=True, env=own_home)
    found: dict[str, str] = {}
    for version in core.sanity_pythons:
        folder = interpreter_dir(version)
        if folder is None:
            # Reported, not hidden: the run says which versions it could not test.
            print("== python%s not found: ansible-test %s sanity not run on it"
                  % (version, core.version))  # fmt: skip
        else:
            found[version] = folder
    if core.python not in found:
        print("ansible-test %s sanity not run: its controller python%s was not found"
              % (core.version, core.python), file=sys.stderr)  # fmt: skip
        return False
    # One run for every Python: the tests that depend on the version (compile, import) run on
    # each one found on PATH, the others (pylint, validate-modules, ...) once, on the
    # controller's. A run per Python would install and run those again each time.
    # pyenv's shims are left out: ansible-test takes a shim of a version not selected for a
    # Python it can use, and fails on it instead of skipping that version.
    rest_path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if "/.pyenv/" not in d]
    path = [str(bin_dir), *dict.fromkeys(found.values()), *rest_path]
    env = dict(own_home, PATH=os.pathsep.join(path))
    what = "ansible-test %s sanity on Python %s" % (core.version, ", ".join(found))
    print("== %s" % what, flush=True)
    done = subprocess.run(
        [str(bin_dir / "ansible-test"), "sanity", "--venv", "--color", "no", *rest],
        cwd=copy, env=env, check=False,
    )  # fmt: skip
    if done.returncode:
        print("%s failed" % what, file=sys.stderr)
        return False
    print("%s: clean" % what, flush=True)
    return True


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--core", action="append", default=[],
                        help="a release of tests/ansible-core.toml (default: every one)")  # fmt: skip
    parser.add_argument("rest", nargs="*", help="more ansible-test arguments (after --)")
    args = parser.parse_args()
    try:
        cores = [find(version) for version in args.core] or load()
    except CoreError as error:
        print("error: %s" % error, file=sys.stderr)
        return 2
    failed = [core.version for core in cores if not sanity(core, args.rest)]
    if failed:
        print("ansible-test sanity failed or not run: ansible-core %s" % ", ".join(failed),
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
