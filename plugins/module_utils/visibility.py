# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freshness: when each record of a level becomes visible in the Observer's records files.

What a downstream reader sees is when a record *appears*, not what the Observer says about
itself. While a level runs, a follower (a process of its own, forked by the load generator
before it starts sending, so that its reading never delays a send) polls the records files
every ``POLL_S``, reads each to its end and stamps the first sighting of each of the level's
run_ids on the generator's own clock (``time.monotonic``, the clock of the intended send
times). A record's visibility latency is its sighting minus its snapshot's intended send
time: an upper bound of the Observer's receipt-to-dispatch time (late by at most a poll, and
by the generator's own lateness, reported beside it). Standard library only: this runs on the
Observer hosts.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import select
import time
from array import array
from collections.abc import Sequence

from .shapes import Schedule
from .stats import summary_ms

POLL_S = 0.005
# A records file not written for this long before the level is looked at with each listing
# only, not at each poll (a rotated one, most likely), until it grows.
QUIET_FILE_S = 60.0
# The folder is listed this often (a rotation makes a new file); open files are read each poll.
LIST_EVERY_S = 0.1
# How long the follower keeps reading after the last send, at most, for records still coming
# (a backlog drains, a flush is due): the level's settle time, within these bounds.
MIN_SETTLE_S = 2.0
MAX_SETTLE_S = 60.0


class RecordFollower:
    """Reads the records files of ``output_dir`` whose names match ``pattern`` from where they
    end now, and stamps the first sighting of each run_id ``<prefix><sequence>``."""

    def __init__(self, output_dir: str, pattern: str, prefix: str) -> None:
        self.output_dir = output_dir
        self.pattern = re.compile(pattern)
        self.run_id = re.compile(re.escape(prefix.encode()) + rb"(\d+)")
        self.seen: dict[int, float] = {}
        # inode -> [path, offset, partial line]: a file renamed by a rotation is still read to
        # its end under its new name; one that shrank was rewritten and is read again.
        self._files: dict[int, list] = {}
        # inode -> its size at the start, for the files not written lately (a rotated file,
        # or an active one idle before the level): looked at only with each listing, and
        # followed from that size once one grows.
        self._quiet: dict[int, int] = {}
        self._listed = 0.0
        self._list(time.monotonic(), at_end=True)

    def _list(self, now: float, at_end: bool = False) -> None:
        self._listed = now
        try:
            names = [n for n in os.listdir(self.output_dir) if self.pattern.match(n)]
        except OSError:
            return
        found = []
        for name in names:
            path = os.path.join(self.output_dir, name)
            try:
                found.append((path, os.stat(path)))
            except OSError:
                continue
        # The newest file is the active one, however long it has been idle.
        newest = max((info.st_mtime for _unused, info in found), default=0.0)
        for path, info in found:
            known = self._files.get(info.st_ino)
            if known is not None:
                known[0] = path
            elif info.st_ino in self._quiet:
                if info.st_size != self._quiet[info.st_ino]:
                    self._files[info.st_ino] = [path, self._quiet.pop(info.st_ino), b""]
            elif not at_end:
                self._files[info.st_ino] = [path, 0, b""]
            elif info.st_mtime >= min(newest, time.time() - QUIET_FILE_S):
                # A file already there is followed from its end at every poll if it was
                # written lately; the others (the rotated files of a long-lived folder never
                # grow again) at every listing only.
                self._files[info.st_ino] = [path, info.st_size, b""]
            else:
                self._quiet[info.st_ino] = info.st_size

    def poll(self) -> int:
        """Read what was appended since the last poll; the number of new sightings."""
        now = time.monotonic()
        if now - self._listed >= LIST_EVERY_S:
            self._list(now)
        found = 0
        for inode, state in list(self._files.items()):
            path, offset, partial = state
            try:
                # A stat first: most polls find nothing new, and open costs more.
                info = os.stat(path)
                if info.st_ino != inode or info.st_size == offset:
                    continue  # nothing new (or the name is another file's: listed again soon)
                with open(path, "rb") as handle:
                    if os.fstat(handle.fileno()).st_ino != inode:
                        continue
                    size = os.fstat(handle.fileno()).st_size
                    if size < offset:
                        offset, partial = 0, b""
                    handle.seek(offset)
                    data = handle.read(size - offset)
            except OSError:
                self._files.pop(inode, None)
                continue
            stamp = time.monotonic()
            lines = (partial + data).split(b"\n")
            state[1], state[2] = offset + len(data), lines.pop()
            for line in lines:
                match = self.run_id.search(line)
                if match:
                    sequence = int(match.group(1))
                    if sequence not in self.seen:
                        self.seen[sequence] = stamp
                        found += 1
        return found


# The records folder's size (every regular file in it): sampled this often while following.
FOLDER_SAMPLE_S = 1.0
FOLDER_SIZES_HEADER = "epoch_s\tbytes"


class FolderSizes:
    """Samples the size of a folder's regular files into ``path`` (``epoch<TAB>bytes``, a line
    per sample, flushed: a long level keeps what it sampled if stopped), for the trends."""

    def __init__(self, folder: str, path: str) -> None:
        self.folder = folder
        self.handle = open(path, "w")  # noqa: SIM115 (held while following)
        self.handle.write(FOLDER_SIZES_HEADER + "\n")
        self.handle.flush()
        self.due = 0.0

    def sample(self, now: float) -> None:
        if now < self.due:
            return
        self.due = now + FOLDER_SAMPLE_S
        total = 0
        try:
            with os.scandir(self.folder) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        if entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
        except OSError:
            return
        self.handle.write("%.3f\t%d\n" % (time.time(), total))
        self.handle.flush()


def read_folder_sizes(path: str) -> list[tuple[float, float]]:
    """(epoch, bytes) of each sample of a folder's size; empty without the file."""
    sizes = []
    try:
        with open(path) as handle:
            if handle.readline().rstrip("\n") != FOLDER_SIZES_HEADER:
                return []
            for line in handle:
                moment, _sep, size = line.partition("\t")
                with contextlib.suppress(ValueError):
                    sizes.append((float(moment), float(size)))
    except OSError:
        return []
    return sizes


def follow(
    follower: RecordFollower, control_fd: int, settle_s: float, sizes: FolderSizes | None = None
) -> None:
    """Poll until told how many snapshots were sent (a line on ``control_fd``) and every one
    of them was seen, or ``settle_s`` after being told (or after the sender went away
    without a word); with ``sizes``, sample the folder's size meanwhile."""
    sent: int | None = None
    told = False
    deadline = math.inf
    while True:
        follower.poll()
        if sizes is not None:
            sizes.sample(time.monotonic())
        if sent is not None and len(follower.seen) >= sent:
            return
        now = time.monotonic()
        if now >= deadline:
            return
        if told:
            time.sleep(POLL_S)
        elif select.select([control_fd], [], [], POLL_S)[0]:
            told = True
            text = os.read(control_fd, 64).strip()
            sent = int(text) if text.isdigit() else None
            deadline = now + min(max(settle_s, MIN_SETTLE_S), MAX_SETTLE_S)


SIGHTINGS_HEADER = "sequence\tvisible_s"


def write_sightings(path: str, seen: dict[int, float], since: float = 0.0) -> None:
    """``sequence<TAB>seconds`` per record seen (its sighting minus ``since``), with a header,
    atomically (the sender reads the follower's; the ledger keeps the sender's, from the
    level's start)."""
    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "w") as handle:
        handle.write(SIGHTINGS_HEADER + "\n")
        for sequence in sorted(seen):
            handle.write("%d\t%.6f\n" % (sequence, seen[sequence] - since))
    os.replace(temporary, path)


def read_sightings(path: str) -> dict[int, float]:
    """A sightings file's ``sequence -> seconds``; empty when there is none or it is not one."""
    seen: dict[int, float] = {}
    try:
        with open(path) as handle:
            if handle.readline().rstrip("\n") != SIGHTINGS_HEADER:
                return {}
            for line in handle:
                sequence, _sep, stamp = line.partition("\t")
                seen[int(sequence)] = float(stamp)
    except (OSError, ValueError):
        return {}
    return seen


def freshness(
    plan: Schedule,
    sent_offsets: Sequence[float],
    seen: dict[int, float],
    *,
    mono_start: float,
    lateness_ms: Sequence[float],
    gave_up: float,
    leave_out: set[int] | frozenset[int] = frozenset(),
) -> dict:
    """The level's freshness from the sightings (monotonic seconds) of its records.

    ``visibility_ms``: from each snapshot's intended send time to its record's sighting.
    ``observer_visibility_ms``: from the moment the generator was ready to send it (intended
    time plus the generator's own lateness, ``lateness_ms``) to its sighting: what the
    Observer took, the generator's delays left out; judged. A record never seen counts as
    seen when the follower gave up (``gave_up``, monotonic): at least that late, so that the
    slowest records are never left out of the percentiles (``unseen`` says how many). Per
    burst, the time until the whole burst was visible, and the backlog's drain time after
    the last send. ``leave_out``: sequences not counted (a planned fault's, judged apart)."""
    sent = len(sent_offsets)
    visible = array("d")
    latencies = []
    observer = []
    for sequence in range(sent):
        if sequence in leave_out:
            continue
        stamp = seen.get(sequence, gave_up)
        at = stamp - mono_start
        if sequence in seen:
            visible.append(at)
        late = (at - plan.offsets[sequence]) * 1000.0
        latencies.append(late)
        observer.append(late - (lateness_ms[sequence] if sequence < len(lateness_ms) else 0.0))
    figures: dict = {
        "sent": len(latencies),
        "visible": len(visible),
        "unseen": len(latencies) - len(visible),
        "visibility_ms": summary_ms(latencies) if visible else None,
        "observer_visibility_ms": summary_ms(observer) if visible else None,
        "poll_ms": POLL_S * 1000.0,
        "drain_ms": round((max(visible) - sent_offsets[-1]) * 1000.0, 3)
        if visible and sent
        else None,
    }
    bursts = []
    for number, (start, members) in enumerate(plan.bursts):
        done = [i for i in members if i < sent]
        if not done or any(i not in seen for i in done):
            continue
        last_visible = max(seen[i] for i in done) - mono_start
        last_sent = max(sent_offsets[i] for i in done)
        bursts.append(
            {
                "burst": number + 1,
                "visible_ms": round((last_visible - start) * 1000.0, 3),
                "drain_ms": round((last_visible - last_sent) * 1000.0, 3),
            }
        )
    figures["bursts"] = bursts
    return figures
