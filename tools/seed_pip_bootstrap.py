"""Pre-seed ansible-test's pip bootstrap, which it downloads from a host this machine cannot
reach (ci-files.testing.ansible.com): a stand-in for get-pip.py that takes pip from the
interpreter's own ensurepip, then installs the pip version ansible-test asks for from PyPI
(which is reachable). An existing bootstrap (a real one, or an earlier stand-in) is kept.

Usage: python tools/seed_pip_bootstrap.py   (the virtualenv's Python, with ansible-test)
"""

from __future__ import annotations

import os
import sys

from ansible_test._internal.python_requirements import get_venv_packages

STAND_IN = """\
# Stand-in for get-pip.py written by qts.observer's tools/seed_pip_bootstrap.py: pip from
# ensurepip, then the pip that ansible-test asked for, from the package index.
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"],
                      stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
"""


class _Any:
    version = ""


def main() -> int:
    version = get_venv_packages(_Any())["pip"]  # type: ignore[arg-type]
    path = os.path.expanduser("~/.ansible/test/cache/get_pip_%s.py" % version.replace(".", "_"))
    if os.path.exists(path):
        print("ansible-test's pip %s bootstrap is there: %s" % (version, path))
        return 0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as handle:
        handle.write(STAND_IN)
    os.replace(path + ".tmp", path)
    print("seeded ansible-test's pip %s bootstrap: %s" % (version, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
