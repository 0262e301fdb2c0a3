# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the stress side reads an Observer: one home for what it writes and logs.

An interface is a dict (the stress role's ``stress_observer_interface`` merged over
``REFERENCE``, resolved once on the controller by the ``qts.observer.observer_interface``
filter) that every reader shares: the level's measure, the progress lines, the raw-data cut
and the check after the stop. ``REFERENCE`` describes the Observer this collection ships;
a test ties it to that Observer's ``pattern_record.schema.json``.

Record fields are named by JMESPath field paths (``snapshot.meta.run_id``): the filter turns
each into a list of keys (``["snapshot", "meta", "run_id"]``), walked here with the standard
library, since this module runs on the Observer hosts. Log patterns are Python regular
expressions with named groups. Standard library only.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

# Field names that carry a judgment (trading decision logic) in a record of an Observer that
# is meant to be judgment-free: any of them, anywhere outside the embedded snapshot, is a
# contract violation.
DECISION_FIELDS = (
    "action",
    "decision",
    "direction",
    "order",
    "orders",
    "position",
    "prediction",
    "recommendation",
    "score",
    "side",
    "signal",
    "signals",
    "strategy",
    "target_price",
    "trade",
)

REFERENCE = {
    # Record files in the records folder (the Observer's output folder): the active file and
    # the rotated ones beside it, read oldest first, the active one last.
    "record_files": r"^observer(-\d{8}T\d{6}\.\d{6}Z)?\.jsonl$",
    "active_record_file": "observer.jsonl",
    # JMESPath field paths into one record.
    "run_id": "snapshot.meta.run_id",
    "snapshot": "snapshot",
    # The processing latency (receipt to dispatch) in ms, and the dispatch time (ISO-8601):
    # "" when the Observer records none.
    "latency_ms": "processing_latency_ms",
    "dispatched_at": "dispatched_at",
    # True: the snapshot is the record's last field, byte for byte the line sent (compared as
    # bytes). False: the Observer re-serialises it (compared as parsed JSON).
    "embeds_verbatim": True,
    # The record's top-level fields; any other is a contract violation. []: not checked (the
    # decision fields below still are).
    "record_fields": ["seq", "received_at", "dispatched_at", "processing_latency_ms", "snapshot"],
    "decision_fields": list(DECISION_FIELDS),
    # The Observer's own metrics file in the records folder (JSON lines), "" for none.
    "metrics_file": "metrics.jsonl",
    # Log lines: the time stamp at the start (group "stamp", ISO-8601; read as UTC unless it
    # carries an offset), the error lines, one dispatch line per record (group "run_id",
    # optionally "latency_ms"), and the metric lines (group "value").
    "log_stamp": r"^(?P<stamp>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?) ",
    "log_error": r"ERROR|CRITICAL",
    "log_dispatch": r"PatternRecord dispatched run_id=(?P<run_id>[^\s\"]+)"
    r"(?: seq=\d+)?(?: latency_ms=(?P<latency_ms>[\d.]+))?",
    "log_p99": "",
    "log_buffer_depth": "",
}
# The keys holding JMESPath field paths, and those holding regular expressions.
PATH_KEYS = ("run_id", "snapshot", "latency_ms", "dispatched_at")
REGEX_KEYS = (
    "record_files",
    "log_stamp",
    "log_error",
    "log_dispatch",
    "log_p99",
    "log_buffer_depth",
)
# Named groups each pattern must have (when it is set).
REGEX_GROUPS = {
    "log_stamp": ("stamp",),
    "log_dispatch": ("run_id",),
    "log_p99": ("value",),
    "log_buffer_depth": ("value",),
}
MISSING = object()


def reference_paths() -> dict[str, list[str] | None]:
    """The reference's field paths as key lists (plain dotted names: no parser needed)."""
    return {key: REFERENCE[key].split(".") if REFERENCE[key] else None for key in PATH_KEYS}


def resolved_reference() -> dict:
    """The reference interface as the filter resolves it (the default of every reader)."""
    return {**REFERENCE, "paths": reference_paths()}


def get(document: object, keys: list[str] | None) -> object:
    """The value at a key path, or MISSING (also for a path of None: not recorded)."""
    if not keys:
        return MISSING
    for key in keys:
        if not isinstance(document, dict) or key not in document:
            return MISSING
        document = document[key]
    return document


def epoch(stamp: str) -> float:
    """Epoch seconds of an ISO-8601 stamp (``Z``, an offset, or none: UTC; ``,`` or ``.``)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace(",", "."))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


class LogReader:
    """The interface's log patterns, compiled once."""

    def __init__(self, interface: dict) -> None:
        self.stamp = re.compile(interface["log_stamp"])
        self.error = re.compile(interface["log_error"]) if interface["log_error"] else None
        self.dispatch = re.compile(interface["log_dispatch"]) if interface["log_dispatch"] else None
        self.p99 = re.compile(interface["log_p99"]) if interface["log_p99"] else None
        self.depth = (
            re.compile(interface["log_buffer_depth"]) if interface["log_buffer_depth"] else None
        )

    def moment(self, line: str) -> float | None:
        match = self.stamp.match(line)
        if not match:
            return None
        try:
            return epoch(match.group("stamp"))
        except ValueError:
            return None


def decision_paths(record: object, snapshot_keys: list[str] | None, names: set[str]) -> set[str]:
    """Dotted paths of every decision-like field in a record, outside its embedded snapshot
    (a field added inside the snapshot shows as a modified snapshot)."""
    found: set[str] = set()

    def walk(node: object, path: list[str]) -> None:
        if snapshot_keys and path == snapshot_keys:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                if str(key).lower() in names:
                    found.add(".".join([*path, str(key)]))
                walk(value, [*path, str(key)])
        elif isinstance(node, list):
            for value in node:
                walk(value, path)

    walk(record, [])
    return found
