"""Pre-seed ansible-test's pip bootstrap, which it downloads from a host this machine cannot
reach (ci-files.testing.ansible.com): a stand-in for get-pip.py that installs the pip version
ansible-test asks for from that version's wheel, taken once from the package index (which is
reachable) into ansible-test's cache, and run from the wheel itself, as get-pip.py runs the
pip it embeds. An existing real bootstrap is kept; an earlier stand-in is replaced.

ansible-test makes a virtual environment without pip for each sanity test that has
requirements (eleven per release here) and bootstraps pip into each: one install from a local
wheel, where pip from ensurepip followed by the asked-for pip from the index was two installs,
an uninstall and a download every time.

Usage: python tools/seed_pip_bootstrap.py   (the virtualenv's Python, with ansible-test)
"""

from __future__ import annotations

import os
import subprocess
import sys

from ansible_test._internal.python_requirements import get_venv_packages

MARK = "# Stand-in for get-pip.py written by qts.observer's tools/seed_pip_bootstrap.py"

STAND_IN = (
    MARK
    + """: the pip that
# ansible-test asked for, installed from its wheel in this folder, run from that wheel.
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
wheel = os.path.join(here, %(wheel)r)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call(
    [sys.executable, os.path.join(wheel, "pip"), "install", "--no-index", "--find-links", here]
    + args
)
"""
)


class _Any:
    version = ""


def _wheel(version: str, folder: str) -> str:
    """The file name of pip's wheel of this version in the folder, fetched if missing."""
    name = "pip-%s-py3-none-any.whl" % version
    if not os.path.exists(os.path.join(folder, name)):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", folder, "pip==%s" % version],
            check=True,
        )  # fmt: skip
    return name


def main() -> int:
    version = get_venv_packages(_Any())["pip"]  # type: ignore[arg-type]
    path = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
    folder = os.path.dirname(path)
    if os.path.exists(path):
        with open(path) as handle:
            if not handle.read().startswith(MARK):
                print("ansible-test's pip %s bootstrap is there: %s" % (version, path))
                return 0
    os.makedirs(folder, exist_ok=True)
    text = STAND_IN % {"wheel": _wheel(version, folder)}
    with open(path + ".tmp", "w") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    print("seeded ansible-test's pip %s bootstrap: %s" % (version, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
