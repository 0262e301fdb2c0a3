# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The artifacts folder on the controller: one home for its layout and names.

``<artifacts_dir>/<run_id>/`` holds ``report.json``, ``junit.xml`` and one folder per host
with that host's raw data; ``<artifacts_dir>/latest`` points at the newest run that wrote
its report (never at a run still going, or one that left nothing). On each host, the run's
files (ledgers, progress, cut raw data) are in a private work folder
(``make_private_folder``). Standard library only.
"""

from __future__ import annotations

import os
import re
import tempfile
import time

REPORT_FILE = "report.json"
JUNIT_FILE = "junit.xml"
LATEST = "latest"
RUN_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Files each host's folder receives, cut to the run's time span on the host first.
HOST_FILES = {
    "monitor_csv": "system_monitor.csv",
    "log": "observer.log",
    "metrics": "metrics.jsonl",
    "rejects": "rejects.jsonl",
}


def new_run_id() -> str:
    """``20261127T162013Z-ab12``: sorts in time order, unique across concurrent runs."""
    return "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), os.urandom(2).hex())


def run_tag(run_id: str) -> str:
    """The run's tag inside every run_id it sends: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", run_id)[-24:]


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Readers (CI, ``latest``) never see a half-written file."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def make_private_folder(folder: str) -> None:
    """``folder`` and each missing parent, made with mode 0700 whatever the umask (as
    ansible.builtin.file makes a directory with ``mode: "0700"``): the run's files on a host
    are for the user running it only."""
    missing = []
    while folder and not os.path.isdir(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for path in reversed(missing):
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if not os.path.isdir(path):
                raise
            continue  # made meanwhile by another job of the run: its mode is its maker's
        os.chmod(path, 0o700)


def link_latest(artifacts_dir: str, run_id: str) -> None:
    """Point ``latest`` at the run, atomically (a reader sees the old or the new run)."""
    latest = os.path.join(artifacts_dir, LATEST)
    temporary = "%s.%d.tmp" % (latest, os.getpid())
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(run_id, temporary)
    os.replace(temporary, latest)
