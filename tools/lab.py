"""A prod-like lab of N Observer hosts on this machine: systemd-nspawn containers booting a
real systemd as PID 1, reached over real SSH.

Each host is a ``systemd-nspawn --boot`` container of a Debian image (12 by default, or 13)
made once with ``debootstrap`` and kept under ``lab/images/`` (rebuilt when its recipe
changes). nspawn gives each host its namespaces, its own hostname, process table, users and
journal, and a private writable layer over the read-only image (``--overlay`` on /etc, /usr,
/var, /opt, /home, /root, /srv; the upper layers live in the lab's folder). The network is
shared: each host's sshd listens on its own loopback address (127.0.0.11, .12, ...). A host
may also run without systemd (``--init sshd``: nspawn's stub init, sshd under it), for the
bundled supervisor's path.

What nspawn does, this tool does not: it builds the image, seeds each host's layer (hostname,
hosts, machine-id, host key, sshd's address, the lab user's key), gives each host a cgroup of
its own (this machine's PID 1 is not systemd, so nspawn runs with ``--register=no
--keep-unit`` in the cgroup made for it; the host's CPU time is read there), starts and stops
the containers, and writes the inventory.

    python3 tools/lab.py up --hosts 3        # make lab-up LAB_HOSTS=3 (replaces any old lab)
    python3 tools/lab.py up --hosts 2 --distro 12,13 --init systemd,sshd
    python3 tools/lab.py status              # make lab-status
    python3 tools/lab.py cpu                 # each host's CPU seconds so far (JSON)
    python3 tools/lab.py limit-cpu --host observer-01 --percent 1   # a starved host
    python3 tools/lab.py stop --host observer-01                    # a host that is down
    python3 tools/lab.py down                # make lab-down: no process, cgroup, listener left
    python3 tools/lab.py image --distro 13   # build (or check) an image only

Needs root, systemd-container (systemd-nspawn), debootstrap, openssh-client (ssh, ssh-keygen)
and network access to a Debian mirror to build an image. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The package tools/qtslab beside this file, however this file is loaded: run as a script,
# imported with tools/ on the path (the tests), or loaded from its path (make bench-scale).
TOOLS_DIR = str(Path(__file__).resolve().parent)
if TOOLS_DIR not in sys.path:
    sys.path.insert(0, TOOLS_DIR)

from qtslab.cgroups import CFS_MIN_QUOTA_US, CFS_PERIOD_US, cpu_seconds  # noqa: E402
from qtslab.cli import main  # noqa: E402
from qtslab.common import HOST_NAME, SSH_TIMEOUT_S  # noqa: E402

# What other code takes from this module: the tests' lab kit and lab tests, make bench-scale.
__all__ = ["CFS_MIN_QUOTA_US", "CFS_PERIOD_US", "HOST_NAME", "SSH_TIMEOUT_S", "cpu_seconds", "main"]

if __name__ == "__main__":
    # The first paragraph above heads --help.
    sys.exit(main(description=__doc__.split("\n\n", maxsplit=1)[0]))
