"""Make, on the controller, an Observer source tree that dies on SIGTERM without draining.

    sigterm_dies.py <files/observer> <dest>

The same code as the reference Observer, but its observer.py keeps SIGTERM's default action
(the process is killed at once) instead of the Observer's drain-and-exit handler: what a
clean-shutdown check must judge unclean, although systemd's own Result= calls it success.
"""

import shutil
import sys
from pathlib import Path

WRAPPER = '''#!/usr/bin/env python3
"""The reference Observer with SIGTERM left at its default: it dies without draining."""

import signal
import sys

_install = signal.signal


def _keep_sigterm_default(signum, handler):
    return _install(signum, signal.SIG_DFL if signum == signal.SIGTERM else handler)


signal.signal = _keep_sigterm_default

from qts_observer.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
'''


def main() -> None:
    source, dest = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "observer"))
    (dest / "observer.py").write_text(WRAPPER)


if __name__ == "__main__":
    main()
