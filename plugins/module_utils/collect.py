# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run's raw data, cut to the run's time span into files that no longer change.

The monitor keeps appending to its CSV and the Observer to its log while a run ends, and a
fetch of a growing file fails its checksum. Each file is read once, up to what it holds at
that moment (a last line still being written is left out), and the lines of the run's span
are written to a copy that nothing else touches; the copies are what gets fetched. Lines
from earlier runs stay on the host. Standard library only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator

from .artifacts import make_private_folder
from .observer_interface import LogReader, epoch, resolved_reference
from .provision_state import file_digest


def _complete_lines(path: str) -> Iterator[bytes]:
    """The file's complete lines up to its size when opened (streamed: logs can be large).

    A line without its newline is still being written: it is left out.
    """
    handle = open(path, "rb")  # noqa: SIM115 (closed by the generator below)

    def lines() -> Iterator[bytes]:
        with handle:
            left = os.fstat(handle.fileno()).st_size
            for line in handle:
                if len(line) > left or not line.endswith(b"\n"):
                    return
                left -= len(line)
                yield line

    return lines()


def _inside(stamp: object, since: float, until: float) -> bool:
    try:
        return since <= epoch(str(stamp)) <= until
    except ValueError:
        return False


def cut_csv(lines: Iterator[bytes], since: float, until: float) -> Iterator[bytes]:
    """The header, then the rows whose Timestamp is in the span."""
    header = next(lines, None)
    if header is None:
        return
    yield header
    for line in lines:
        row = next(csv.reader(io.StringIO(line.decode("utf-8", "replace"))), [])
        if row and _inside(row[0], since, until):
            yield line


def log_cutter(
    interface: dict | None = None,
) -> Callable[[Iterator[bytes], float, float], Iterator[bytes]]:
    """Cuts a log by the interface's stamp: lines stamped in the span; an unstamped line (a
    traceback) goes with the one before."""
    reader = LogReader(interface or resolved_reference())

    def cut(lines: Iterator[bytes], since: float, until: float) -> Iterator[bytes]:
        keep = False
        for line in lines:
            moment = reader.moment(line.decode("utf-8", "replace"))
            if moment is not None:
                keep = since <= moment <= until
            if keep:
                yield line

    return cut


cut_log = log_cutter()


def _cut_json(field: str) -> Callable[[Iterator[bytes], float, float], Iterator[bytes]]:
    def cut(lines: Iterator[bytes], since: float, until: float) -> Iterator[bytes]:
        for line in lines:
            try:
                document = json.loads(line)
            except ValueError:
                continue
            if isinstance(document, dict) and _inside(document.get(field), since, until):
                yield line

    return cut


# How each kind of file is cut, by its key in artifacts.HOST_FILES.
CUTTERS = {
    "monitor_csv": cut_csv,
    "log": cut_log,
    "metrics": _cut_json("timestamp"),
    "rejects": _cut_json("received_at"),
}


def collect(
    sources: dict[str, str],
    names: dict[str, str],
    dest: str,
    since: float,
    until: float,
    *,
    interface: dict | None = None,
) -> dict:
    """Cut each source into ``dest``; what was written and what could not be."""
    make_private_folder(dest)
    cutters = {**CUTTERS, "log": log_cutter(interface)}
    files, problems = {}, []
    for key, source in sources.items():
        target = os.path.join(dest, names[key])
        try:
            lines = _complete_lines(source)
        except FileNotFoundError:
            if key != "rejects":  # no rejects file means nothing was rejected
                problems.append("%s: %s does not exist on the host" % (names[key], source))
            continue
        except OSError as exc:
            problems.append("%s: cannot read %s: %s" % (names[key], source, exc.strerror))
            continue
        kept = size = 0
        with open(target, "wb") as handle:
            for line in cutters[key](lines, since, until):
                handle.write(line)
                kept += 1
                size += len(line)
        files[key] = {
            "source": source,
            "path": target,
            "name": names[key],
            "lines": kept,
            "bytes": size,
        }
    return {"files": files, "problems": problems}


def pack(paths: list[str], archive: str) -> dict:
    """The files at ``paths`` in one gzipped tar at ``archive`` (by their names, in that
    order): one fetch instead of one per file. Written aside, then renamed into place."""
    partial = archive + ".partial"
    members = []
    with tarfile.open(partial, "w:gz") as tar:
        for path in paths:
            tar.add(path, arcname=os.path.basename(path), recursive=False)
            members.append(os.path.basename(path))
    os.chmod(partial, 0o600)
    os.replace(partial, archive)
    # SHA-1: the checksum Ansible's fetch compares (not a secret).
    return {"path": archive, "members": members, "bytes": os.path.getsize(archive),
            "checksum": file_digest(archive, "sha1")}  # fmt: skip
