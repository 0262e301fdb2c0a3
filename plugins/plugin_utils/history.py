# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run history: an SQLite database in the artifacts folder (one file, no server).

One row per run, per run and host (with the Observer's identity), and per run, host and level
with every figure and the per-second samples the regression test compares. The schema is
versioned (``PRAGMA user_version``); writers take the database's write lock for the whole
run's rows (``BEGIN IMMEDIATE``) in WAL mode, so runs finishing at once never interleave and
readers never block. Standard library only (sqlite3). ``python -m`` this module lists runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from typing import Any

HISTORY_FILE = "history.sqlite"
# 2: the faults table (stress_faults), one row per run, host and fault.
# 3: the trends table (a soak's trends), one row per run, host, level and series.
SCHEMA_VERSION = 3
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY, started_at TEXT, finished_at TEXT, profile TEXT,
        seed INTEGER, verdict TEXT, collection_version TEXT, levels TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS host_runs (
        run_id TEXT NOT NULL REFERENCES runs(run_id), host TEXT NOT NULL, verdict TEXT,
        code_digest TEXT, config_digest TEXT, PRIMARY KEY (run_id, host))""",
    """CREATE TABLE IF NOT EXISTS levels (
        run_id TEXT NOT NULL, host TEXT NOT NULL, level INTEGER NOT NULL, rate REAL,
        duration_s REAL, verdict TEXT, throughput REAL, p50_ms REAL, p95_ms REAL, p99_ms REAL,
        max_ms REAL, cpu_pct REAL, observer_cpu_pct REAL, memory_pct REAL,
        observer_rss_mb REAL, errors INTEGER,
        sent INTEGER, written INTEGER, lost INTEGER, duplicated INTEGER, modified INTEGER,
        samples TEXT, PRIMARY KEY (run_id, host, level),
        FOREIGN KEY (run_id, host) REFERENCES host_runs(run_id, host))""",
    """CREATE TABLE IF NOT EXISTS faults (
        run_id TEXT NOT NULL, host TEXT NOT NULL, fault INTEGER NOT NULL, level INTEGER,
        type TEXT, name TEXT, verdict TEXT, sent INTEGER, lost INTEGER, duplicated INTEGER,
        modified INTEGER, late INTEGER, back_s REAL, recovery_s REAL, drain_s REAL,
        PRIMARY KEY (run_id, host, fault),
        FOREIGN KEY (run_id, host) REFERENCES host_runs(run_id, host))""",
    """CREATE TABLE IF NOT EXISTS trends (
        run_id TEXT NOT NULL, host TEXT NOT NULL, level INTEGER NOT NULL, series TEXT NOT NULL,
        verdict TEXT, slope_per_h REAL, lower_per_h REAL, upper_per_h REAL, windows INTEGER,
        "limit" REAL, hours_to_limit REAL, tolerance_per_h REAL, unit TEXT,
        PRIMARY KEY (run_id, host, level, series),
        FOREIGN KEY (run_id, host) REFERENCES host_runs(run_id, host))""",
)
TREND_COLUMNS = ("series", "verdict", "slope_per_h", "lower_per_h", "upper_per_h", "windows",
                 "limit", "hours_to_limit", "tolerance_per_h", "unit")  # fmt: skip
FAULT_COLUMNS = ("level", "type", "name", "verdict", "sent", "lost", "duplicated", "modified",
                 "late", "back_s", "recovery_s", "drain_s")  # fmt: skip
LEVEL_COLUMNS = (
    "rate", "duration_s", "verdict", "throughput", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    "cpu_pct", "observer_cpu_pct", "memory_pct", "observer_rss_mb", "errors", "sent", "written", "lost",
    "duplicated", "modified",
)  # fmt: skip


# Built once from constant names: no value of a run is ever part of a statement's text.
_INSERT_LEVEL = "INSERT INTO levels (run_id, host, level, %s, samples) VALUES (%s)" % (  # noqa: S608
    ", ".join(LEVEL_COLUMNS),
    ", ".join("?" * (len(LEVEL_COLUMNS) + 4)),
)


_INSERT_FAULT = "INSERT INTO faults (run_id, host, fault, %s) VALUES (%s)" % (  # noqa: S608
    ", ".join(FAULT_COLUMNS),
    ", ".join("?" * (len(FAULT_COLUMNS) + 3)),
)


_INSERT_TREND = "INSERT INTO trends (run_id, host, level, %s) VALUES (%s)" % (  # noqa: S608
    ", ".join('"%s"' % column for column in TREND_COLUMNS),
    ", ".join("?" * (len(TREND_COLUMNS) + 3)),
)


class HistoryError(Exception):
    """The history cannot be used; the message says why."""


def levels_key(levels: list[Mapping[str, Any]]) -> str:
    """What makes two runs' levels the same: their rates and durations, in order, the shape
    of each that has one other than constant (a burst is not compared with an even load; a
    replay by its capture's path and speed), and the faults of each that has any (their
    types, moments and lengths: a run with a kill is compared with one with the same kill)."""
    return json.dumps(
        [
            [float(lv["rate"]), float(lv["duration_s"])]
            + ([lv["shape"]] if (lv.get("shape") or {}).get("type", "constant") != "constant"
               else [])
            + ([[[f["type"], f["at_s"], f["duration_s"], f.get("quota_pct"), f.get("write_bps")]
                 for f in lv["faults"]]]
               if lv.get("faults") else [])
            for lv in levels
        ],
        sort_keys=True,
    )  # fmt: skip


# How long a writer waits for another (parallel CI jobs share one history).
LOCK_TIMEOUT_S = 60.0


def _write_ahead_log(connection: sqlite3.Connection) -> None:
    """Switch the database to WAL. The switch needs the whole file: SQLite answers "database
    is locked" at once, without waiting, when another process is creating or switching the
    same new database, so it is tried again until the lock timeout."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@contextmanager
def connect(path: str) -> Iterator[sqlite3.Connection]:
    """The database at ``path``, created or checked against this schema's version."""
    try:
        connection = sqlite3.connect(path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
    except sqlite3.Error as exc:
        raise HistoryError("cannot open the run history %s: %s" % (path, exc)) from None
    with closing(connection):
        _write_ahead_log(connection)
        connection.execute("PRAGMA foreign_keys=ON")
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                "the run history %s has schema version %d, newer than this collection's %d"
                % (path, version, SCHEMA_VERSION)
            )
        if version < SCHEMA_VERSION:
            connection.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute("PRAGMA user_version=%d" % SCHEMA_VERSION)
            connection.execute("COMMIT")
        connection.row_factory = sqlite3.Row
        yield connection


def level_samples(level: Mapping[str, Any]) -> dict[str, list[float]]:
    """A reported level's per-second samples: the regression test compares these."""
    per_second = level.get("per_second") or []
    return {
        "p99_ms": [row["p99"] for row in per_second if row.get("p99") is not None],
        "written": [row["written"] for row in per_second if row.get("written") is not None],
        "observer_cpu_pct": list(level.get("observer_cpu_samples") or []),
    }


def level_row(level: Mapping[str, Any]) -> dict[str, Any]:
    """A reported level as a row of ``levels`` (samples as a dict)."""
    latency = level.get("latency_ms") or {}
    return {
        "rate": level.get("rate"),
        "duration_s": level.get("duration_s"),
        "verdict": level.get("verdict"),
        "throughput": level.get("throughput"),
        "p50_ms": latency.get("p50"),
        "p95_ms": latency.get("p95"),
        "p99_ms": latency.get("p99"),
        "max_ms": latency.get("max"),
        "cpu_pct": (level.get("cpu_pct") or {}).get("sustained") if level.get("samples") else None,
        "observer_cpu_pct": (level.get("observer_cpu_pct") or {}).get("sustained")
        if level.get("observer_samples")
        else None,
        "memory_pct": (level.get("memory_pct") or {}).get("sustained")
        if level.get("samples")
        else None,
        "observer_rss_mb": (level.get("observer_rss_mb") or {}).get("peak"),
        "errors": level.get("errors"),
        "sent": level.get("sent"),
        "written": level.get("written"),
        "lost": level.get("lost"),
        "duplicated": level.get("duplicated"),
        "modified": level.get("modified"),
        "samples": level_samples(level),
    }


def record_run(path: str, report: Mapping[str, Any], collection_version: str | None) -> None:
    """Add a reported run (its rows replace an earlier copy of the same run_id)."""
    levels = report.get("levels_planned") or []
    with connect(path) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            run_id = report["run_id"]
            db.execute("DELETE FROM trends WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM faults WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM levels WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM host_runs WHERE run_id = ?", (run_id,))
            db.execute("DELETE FROM runs WHERE run_id = ?", (run_id,))
            db.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, report.get("started_at"), report.get("finished_at"),
                 report.get("profile"), report.get("seed"), report.get("verdict"),
                 collection_version, levels_key(levels)),
            )  # fmt: skip
            for host, entry in (report.get("hosts") or {}).items():
                identity = entry.get("observer_identity") or {}
                db.execute(
                    "INSERT INTO host_runs VALUES (?, ?, ?, ?, ?)",
                    (run_id, host, entry.get("verdict"), identity.get("code_digest"),
                     identity.get("config_digest")),
                )  # fmt: skip
                for level in entry.get("levels") or []:
                    row = level_row(level)
                    db.execute(
                        _INSERT_LEVEL,
                        (run_id, host, level.get("level"), *(row[c] for c in LEVEL_COLUMNS),
                         json.dumps(row["samples"])),
                    )  # fmt: skip
                    for fault in level.get("faults") or []:
                        db.execute(_INSERT_FAULT, (run_id, host, fault.get("fault"),
                                                   *(fault.get(c) for c in FAULT_COLUMNS)))  # fmt: skip
                    for found in level.get("trends") or []:
                        db.execute(_INSERT_TREND, (run_id, host, level.get("level"),
                                                   *(found.get(c) for c in TREND_COLUMNS)))  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def comparable_runs(
    path: str,
    host: str,
    levels: list[Mapping[str, Any]],
    identity: Mapping[str, Any],
    before: str,
    *,
    limit: int = 20,
) -> list[str]:
    """Runs started before ``before`` (a UTC time) on ``host`` with the same levels and the
    same Observer (its code digest), newest first. Its configuration may differ: a slower
    configuration is what a regression check is for."""
    if not os.path.exists(path):
        return []
    with connect(path) as db:
        rows = db.execute(
            "SELECT r.run_id FROM runs r JOIN host_runs h ON h.run_id = r.run_id"
            " WHERE h.host = ? AND r.levels = ? AND h.code_digest IS ?"
            " AND r.started_at < ? ORDER BY r.started_at DESC LIMIT ?",
            (host, levels_key(levels), identity.get("code_digest"), before, limit),
        ).fetchall()  # fmt: skip
    return [row["run_id"] for row in rows]


def host_run(path: str, run_id: str, host: str) -> dict | None:
    """One run of one host: its identity, levels key and each level's row (samples parsed)."""
    if not os.path.exists(path):
        return None
    with connect(path) as db:
        head = db.execute(
            "SELECT r.run_id, r.levels AS levels_key, h.verdict, h.code_digest, h.config_digest"
            " FROM runs r"
            " JOIN host_runs h ON h.run_id = r.run_id WHERE r.run_id = ? AND h.host = ?",
            (run_id, host),
        ).fetchone()
        if head is None:
            return None
        levels = db.execute(
            "SELECT * FROM levels WHERE run_id = ? AND host = ? ORDER BY level", (run_id, host)
        ).fetchall()
        faults = db.execute(
            "SELECT * FROM faults WHERE run_id = ? AND host = ? ORDER BY fault", (run_id, host)
        ).fetchall()
        trends = db.execute(
            "SELECT * FROM trends WHERE run_id = ? AND host = ? ORDER BY level, series",
            (run_id, host),
        ).fetchall()
    found = dict(head)
    found["levels"] = {
        row["level"]: dict(dict(row), samples=json.loads(row["samples"] or "{}")) for row in levels
    }
    found["faults"] = {row["fault"]: dict(row) for row in faults}
    found["trends"] = {trend_key(dict(row)): dict(row) for row in trends}
    return found


def trend_key(trend: Mapping[str, Any]) -> str:
    """``L<level>.<series>``: a trend compared with the same level's same series."""
    return "L%s.%s" % (trend.get("level"), trend.get("series"))


def trend(path: str, report: Mapping[str, Any], host: str, runs: int = 10) -> list[dict]:
    """This host's last ``runs`` comparable runs, this one included, oldest first."""
    entry = (report.get("hosts") or {}).get(host) or {}
    found = comparable_runs(path, host, report.get("levels_planned") or [],
                            entry.get("observer_identity") or {}, "9999", limit=runs)  # fmt: skip
    rows = [host_run(path, run_id, host) for run_id in reversed(found)]
    return [row for row in rows if row]


def list_runs(path: str, limit: int = 20) -> list[dict]:
    """The newest runs, each with its hosts' verdicts and each level's key figures."""
    if not os.path.exists(path):
        return []
    with connect(path) as db:
        runs = db.execute(
            "SELECT * FROM runs ORDER BY started_at DESC LIMIT ?", (limit,)
        ).fetchall()  # fmt: skip
        found = []
        for run in runs:
            rows = db.execute(
                "SELECT h.host, h.verdict AS host_verdict, l.level, l.rate, l.throughput,"
                " l.p99_ms, l.cpu_pct, l.lost FROM host_runs h LEFT JOIN levels l"
                " ON l.run_id = h.run_id AND l.host = h.host WHERE h.run_id = ?"
                " ORDER BY h.host, l.level",
                (run["run_id"],),
            ).fetchall()
            faults = db.execute(
                "SELECT host, name, verdict, lost, back_s, recovery_s FROM faults"
                " WHERE run_id = ? ORDER BY host, fault",
                (run["run_id"],),
            ).fetchall()
            trends = db.execute(
                "SELECT host, level, series, verdict, slope_per_h, lower_per_h, upper_per_h,"
                " unit FROM trends WHERE run_id = ? ORDER BY host, level, series",
                (run["run_id"],),
            ).fetchall()
            found.append(dict(dict(run), rows=[dict(r) for r in rows],
                              faults=[dict(f) for f in faults], trends=[dict(t) for t in trends]))  # fmt: skip
    return found


def _cell(value: Any, pattern: str) -> str:
    return "-" if value is None else pattern % value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="List the stress runs of a run history.")
    parser.add_argument("--db", default=os.path.join("artifacts", HISTORY_FILE))
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args(argv)
    if not os.path.exists(args.db):
        print("no run history at %s (a stress run writes it)" % args.db, file=sys.stderr)
        return 1
    try:
        runs = list_runs(args.db, args.limit)
    except (HistoryError, sqlite3.Error) as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    for run in runs:
        print("%s  %-7s %-8s seed %s  collection %s" % (
            run["run_id"], run["verdict"], run["profile"], run["seed"],
            run["collection_version"] or "?"))  # fmt: skip
        for row in run["rows"]:
            if row["level"] is None:
                print("    %-20s %s (no level)" % (row["host"], row["host_verdict"]))
                continue
            print("    %-20s L%-2d %8s  throughput %s  p99 %s  CPU %s  lost %s  %s" % (
                row["host"], row["level"], _cell(row["rate"], "%g/s"),
                _cell(row["throughput"], "%.2f/s"), _cell(row["p99_ms"], "%.1f ms"),
                _cell(row["cpu_pct"], "%.1f %%"), _cell(row["lost"], "%d"),
                row["host_verdict"]))  # fmt: skip
        for fault in run["faults"]:
            print("    %-20s %s  lost %s  back %s  recovery %s  %s" % (
                fault["host"], fault["name"], _cell(fault["lost"], "%d"),
                _cell(fault["back_s"], "%.2f s"), _cell(fault["recovery_s"], "%.2f s"),
                fault["verdict"]))  # fmt: skip
        for found in run["trends"]:
            print("    %-20s L%-2d trend %-12s %s %s/h (%s to %s)  %s" % (
                found["host"], found["level"], found["series"],
                _cell(found["slope_per_h"], "%+.3g"), found["unit"] or "",
                _cell(found["lower_per_h"], "%.3g"), _cell(found["upper_per_h"], "%.3g"),
                found["verdict"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
