# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measure one level from what the Observer host holds: the ledger of lines sent, the
Observer's records, metrics and log, and the system monitor's CSV. Standard library only.

How records and log lines are read is the Observer's interface (``observer_interface``;
default: the reference Observer's). Definitions (documented in the README, relied on by the
gate):
  throughput      records of the level written, per second of the level's planned duration
  latency         processing latency (receipt to dispatch), p50/p95/p99/max, from the records
                  where they carry it, else from the log's dispatch lines, else not measured
  end-to-end      the record's dispatch time minus the snapshot's meta.timestamp (its
                  scheduled send time), where records carry a dispatch time
  sustained       the highest mean over any rolling ``sustained_window_s`` of monitor samples
  errors          Observer log lines matching the error pattern during the level
  lost            run_ids sent (in the ledger) and found in no records file
  duplicated      extra copies of a run_id across all records files
  modified        records whose embedded snapshot is not the one sent: byte for byte when the
                  Observer embeds it verbatim, else as parsed JSON
  extra_fields    records carrying any top-level field beyond the interface's record fields
  decision_fields decision-like fields anywhere in a record outside its snapshot
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence

from .faults import read_fault_windows
from .observer_interface import LogReader, decision_paths, epoch, get, resolved_reference
from .stats import spectrum_ms, summary_ms, sustained
from .trends import SERIES, judged_span, windows
from .visibility import read_folder_sizes

_RUN_ID = re.compile(rb'"run_id":"([^"\\]+)"')


def read_ledger(path: str) -> dict[bytes, bytes]:
    """run_id -> exact line sent (without its newline)."""
    sent: dict[bytes, bytes] = {}
    with open(path, "rb") as handle:
        for raw in handle:
            line = raw.rstrip(b"\n")
            match = _RUN_ID.search(line)
            if match:
                sent[match.group(1)] = line
    return sent


def record_files(output_dir: str, interface: dict | None = None) -> list[str]:
    interface = interface or resolved_reference()
    pattern = re.compile(interface["record_files"])
    names = sorted(n for n in os.listdir(output_dir) if pattern.match(n))
    # The active file holds the newest records: read it last.
    names.sort(key=lambda n: (n == interface["active_record_file"], n))
    return [os.path.join(output_dir, n) for n in names]


def scan_records(
    output_dir: str, prefix: bytes, interface: dict | None = None
) -> list[tuple[bytes, object, dict]]:
    """(run_id, embedded snapshot, record) for every record whose run_id starts with
    ``prefix``. The snapshot is the exact bytes when the interface says the Observer embeds
    it verbatim, else the parsed value (MISSING when the record has none)."""
    interface = interface or resolved_reference()
    paths = interface["paths"]
    marker = b',"%s":' % paths["snapshot"][-1].encode() if interface["embeds_verbatim"] else None
    found = []
    for path in record_files(output_dir, interface):
        with open(path, "rb") as handle:
            for raw in handle:
                if prefix not in raw:  # cheap: most lines of a long-lived file are other runs'
                    continue
                line = raw.rstrip(b"\n")
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                run_id = get(record, paths["run_id"])
                if not isinstance(run_id, str) or not run_id.encode().startswith(prefix):
                    continue
                if marker is not None:
                    index = line.find(marker)
                    embedded: object = line[index + len(marker) : -1] if index >= 0 else b""
                else:
                    embedded = get(record, paths["snapshot"])
                found.append((run_id.encode(), embedded, record))
    return found


def after_warmup(
    found: list[tuple[bytes, object, dict]], prefix: bytes, warmup: int
) -> list[tuple[bytes, object, dict]]:
    """The records of snapshots sent after the first ``warmup`` of the level (run_ids are
    ``<prefix><sequence>``, numbered from 0 in the order sent)."""
    if warmup <= 0:
        return found
    kept = []
    for item in found:
        sequence = item[0][len(prefix) :]
        if not sequence.isdigit() or int(sequence) >= warmup:
            kept.append(item)
    return kept


def _unchanged(embedded: object, line: bytes) -> bool:
    if isinstance(embedded, bytes):
        return embedded == line
    try:
        return embedded == json.loads(line)
    except ValueError:
        return False


def modified_run_ids(
    sent: dict[bytes, bytes], found: list[tuple[bytes, object, dict]]
) -> list[bytes]:
    """The run_id of each record whose snapshot is not the one sent (one per such record)."""
    return [
        run_id
        for run_id, embedded, _unused in found
        if run_id in sent and not _unchanged(embedded, sent[run_id])
    ]


def integrity(
    sent: dict[bytes, bytes], found: list[tuple[bytes, object, dict]], interface: dict | None = None
) -> dict:
    interface = interface or resolved_reference()
    copies = Counter(run_id for run_id, _unused, _unused in found)
    modified = len(modified_run_ids(sent, found))
    allowed = set(interface["record_fields"])
    names = set(interface["decision_fields"])
    decisions: set[str] = set()
    for _unused, _unused, record in found:
        decisions |= decision_paths(record, interface["paths"]["snapshot"], names)
    return {
        "sent": len(sent),
        "written": sum(1 for run_id in sent if copies[run_id]),
        "lost": sum(1 for run_id in sent if not copies[run_id]),
        "duplicated": sum(count - 1 for run_id, count in copies.items() if count > 1),
        "modified": modified,
        "unexpected": sum(1 for run_id in copies if run_id not in sent),
        "extra_fields": sorted({key for _unused, _unused, r in found for key in set(r) - allowed})
        if allowed
        else [],
        "decision_fields": sorted(decisions),
    }


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def latencies(
    found: list[tuple[bytes, object, dict]],
    interface: dict | None = None,
    logged: dict[bytes, float | None] | None = None,
) -> dict:
    """Processing latency from the records, else from the log's dispatch lines (each with its
    source; None when the Observer tells neither), and end-to-end latency (dispatch time minus
    the snapshot's scheduled send) where the records carry a dispatch time."""
    interface = interface or resolved_reference()
    paths = interface["paths"]
    processing, source = _processing(found, interface, logged)
    end_to_end = []
    for _unused, _unused, record in found:
        snapshot = get(record, paths["snapshot"])
        dispatched = get(record, paths["dispatched_at"])
        try:
            stamp = snapshot["meta"]["timestamp"]  # type: ignore[index]
            end_to_end.append((epoch(str(dispatched)) - epoch(stamp)) * 1000.0)
        except (KeyError, TypeError, ValueError):
            continue
    return {
        "latency_ms": summary_ms(processing) if source else None,
        "latency_spectrum_ms": spectrum_ms(processing) if source else None,
        "latency_source": source,
        "e2e_latency_ms": summary_ms(end_to_end) if end_to_end else None,
    }


def _processing(
    found: list[tuple[bytes, object, dict]],
    interface: dict,
    logged: dict[bytes, float | None] | None,
) -> tuple[list[float], str | None]:
    """The records' processing latencies (those known) and where they come from."""
    values, source = _each_latency(found, interface, logged)
    return [value for value in values if value is not None], source


def per_second(
    found: list[tuple[bytes, object, dict]],
    prefix: bytes,
    *,
    rate: float,
    start: float,
    duration_s: float,
    interface: dict | None = None,
    logged: dict[bytes, float | None] | None = None,
    intended: Sequence[float] | None = None,
) -> list[dict]:
    """The level second by second (``t`` from its start): snapshots sent in it (their
    intended send time, from the ledger's send times; without them, their run_id's sequence
    over the rate, the constant schedule's), records written in it (by the
    record's dispatch time; None when records carry none), and the processing latency
    (p50, p99, max) of the snapshots sent in it (None when not measured). The samples of
    the regression test and the charts."""
    interface = interface or resolved_reference()
    paths = interface["paths"]
    seconds = max(1, math.ceil(duration_s))
    sent = [0] * seconds
    written: list[int] | None = [0] * seconds if paths["dispatched_at"] else None
    latency: list[list[float]] = [[] for _unused in range(seconds)]
    for due, value, record in sent_times_and_latencies(found, prefix, rate=rate,
                                                       interface=interface, logged=logged,
                                                       intended=intended):  # fmt: skip
        second = min(int(due), seconds - 1)
        sent[second] += 1
        if value is not None:
            latency[second].append(value)
        if written is not None:
            try:
                at = epoch(str(get(record, paths["dispatched_at"]))) - start
            except (TypeError, ValueError):
                continue
            written[min(max(int(at), 0), seconds - 1)] += 1
    rows = []
    for second in range(seconds):
        summary = summary_ms(latency[second]) if latency[second] else None
        rows.append({
            "t": second,
            "sent": sent[second],
            "written": written[second] if written is not None else None,
            "p50": summary["p50"] if summary else None,
            "p99": summary["p99"] if summary else None,
            "max": summary["max"] if summary else None,
        })  # fmt: skip
    return rows


def sent_times_and_latencies(
    found: list[tuple[bytes, object, dict]],
    prefix: bytes,
    *,
    rate: float,
    interface: dict,
    logged: dict[bytes, float | None] | None,
    intended: Sequence[float] | None,
) -> list[tuple[float, float | None, dict]]:
    """(when it was meant to be sent, in seconds from the level's start; its processing
    latency in ms or None; the record) of each record of the level: the intended send time
    from the ledger's send times, else its sequence over the rate (the constant schedule)."""
    each, _unused = _each_latency(found, interface, logged)
    timed = []
    for (run_id, _unused, record), value in zip(found, each):
        sequence = run_id[len(prefix) :]
        if not sequence.isdigit():
            continue
        number = int(sequence)
        due = intended[number] if intended is not None and number < len(intended) else None
        timed.append((number / rate if due is None else due, value, record))
    return timed


def _each_latency(
    found: list[tuple[bytes, object, dict]],
    interface: dict,
    logged: dict[bytes, float | None] | None,
) -> tuple[list[float | None], str | None]:
    """Each record's processing latency in the order of ``found`` (None where unknown), from
    the records where they carry it, else from the log's dispatch lines, and which."""
    paths = interface["paths"]
    from_records = [_number(get(record, paths["latency_ms"])) for _unused, _unused, record in found]
    if any(value is not None for value in from_records):
        return from_records, "records (%s)" % interface["latency_ms"]
    from_log = [(logged or {}).get(run_id) for run_id, _unused, _unused in found]
    if any(value is not None for value in from_log):
        return from_log, "log (dispatch lines)"
    return [None] * len(found), None


def read_log(
    path: str, interface: dict | None, start: float, end: float, prefix: bytes = b""
) -> dict:
    """One pass over the Observer's log: error lines stamped in [start, end], every dispatch
    line of a run_id starting with ``prefix`` (run_id -> its logged latency or None), and the
    metric lines stamped in [start, end] as reports like the metrics file's."""
    reader = LogReader(interface or resolved_reference())
    result: dict = {"errors": 0, "error_moments": [], "dispatched": {}, "reports": []}
    if not os.path.exists(path):
        return result
    want = prefix.decode()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if reader.dispatch is not None and want in line:
                match = reader.dispatch.search(line)
                if match and match.group("run_id").startswith(want):
                    logged = match.groupdict().get("latency_ms")
                    result["dispatched"][match.group("run_id").encode()] = _number(logged)
                    continue
            error = reader.error is not None and reader.error.search(line)
            p99 = reader.p99.search(line) if reader.p99 else None
            depth = reader.depth.search(line) if reader.depth else None
            if not (error or p99 or depth):
                continue
            moment = reader.moment(line)
            if moment is None or not start <= moment <= end:
                continue
            if error:
                result["errors"] += 1
                result["error_moments"].append(moment)
            if p99 or depth:
                report: dict = {"timestamp": moment}
                if p99:
                    report["snapshot_processing"] = {"p99_ms": _number(p99.group("value"))}
                if depth:
                    report["buffer_depth"] = _number(depth.group("value"))
                result["reports"].append(report)
    return result


def read_metrics(
    path: str, start: float, end: float = float("inf")
) -> tuple[dict | None, list[dict]]:
    """The Observer's last metrics report before ``start`` (a base for counters, or None)
    and its reports during [start, end]."""
    before, inside = None, []
    if not os.path.exists(path):
        return None, []
    with open(path, "rb") as handle:
        for line in handle:
            try:
                document = json.loads(line)
                moment = epoch(document["timestamp"])
            except (ValueError, KeyError):
                continue
            if moment < start:
                before = document
            elif moment <= end:
                inside.append(document)
    return before, inside


def metrics_window(path: str, start: float, end: float) -> dict:
    """Observer metrics reported during [start, end], counters relative to the report before."""
    before, inside = read_metrics(path, start, end)
    if not inside:
        return {
            "reports": 0,
            "buffer_depth_max": 0,
            "queue_depth_max": 0,
            "flushes": 0,
            "rejected": 0,
            "rotations": 0,
        }

    def delta(key: str) -> int:
        base = before[key] if before else 0
        return int(inside[-1].get(key, 0)) - int(base)

    return {
        "reports": len(inside),
        "buffer_depth_max": max(
            int(d.get("buffer_depth_max", d.get("buffer_depth", 0))) for d in inside
        ),
        "queue_depth_max": max(int(d.get("queue_depth", 0)) for d in inside),
        "flushes": delta("flushes"),
        "rejected": delta("rejected"),
        "rotations": delta("rotations"),
    }


def after_stop(
    ledgers: list[str], output_dir: str, log_file: str, prefix: bytes, interface: dict | None
) -> dict:
    """The whole run's records once the Observer has stopped: what it wrote of everything
    sent, and what it had taken in (logged as dispatched) and never wrote: records it held
    when it stopped and lost. ``held_lost`` is None when the Observer logs no dispatch line."""
    sent: dict[bytes, bytes] = {}
    for path in ledgers:
        # A planned fault's window is judged by the fault (its kill's losses are its own).
        in_faults = read_fault_windows(path)
        sent.update((run_id, line) for run_id, line in read_ledger(path).items()
                    if not in_faults or _sequence_of(run_id) not in in_faults)  # fmt: skip
    written = {run_id for run_id, _unused, _unused in scan_records(output_dir, prefix, interface)}
    missing = [run_id for run_id in sent if run_id not in written]
    interface = interface or resolved_reference()
    held_lost = None
    if interface["log_dispatch"]:
        dispatched = read_log(log_file, interface, 0.0, 0.0, prefix)["dispatched"]
        held_lost = sum(1 for run_id in missing if run_id in dispatched)
    return {
        "sent": len(sent),
        "written": len(sent) - len(missing),
        "missing": len(missing),
        "held_lost": held_lost,
    }


_SEQUENCE = re.compile(rb"(\d+)$")


def _sequence_of(run_id: bytes) -> int | None:
    match = _SEQUENCE.search(run_id)
    return int(match.group(1)) if match else None


def log_metrics(reports: list[dict]) -> dict:
    """The metrics_window figures of an Observer that reports its metrics in its log only:
    what its lines do not carry is None (not measured), never 0."""
    depths = [r["buffer_depth"] for r in reports if r.get("buffer_depth") is not None]
    return {
        "reports": len(reports),
        "buffer_depth_max": int(max(depths)) if depths else None,
        "queue_depth_max": None,
        "flushes": None,
        "rejected": None,
        "rotations": None,
    }


def log_errors(path: str, start: float, end: float, interface: dict | None = None) -> int:
    """Observer log lines counted as errors (the interface's pattern) during [start, end]."""
    return read_log(path, interface, start, end)["errors"]


def _cell(row: dict, key: str) -> float | None:
    return _number(row.get(key))


def _monitor_rows(path: str, start: float, end: float) -> Iterator[tuple[float, dict]]:
    """(moment, row) of each row of the monitor's CSV stamped within [start, end]."""
    if not os.path.exists(path):
        return
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                moment = epoch(row["Timestamp"])
            except (KeyError, ValueError):
                continue
            if start <= moment <= end:
                yield moment, row


def monitor_window(path: str, start: float, end: float, window_s: float) -> dict:
    """System and Observer figures from the monitor's CSV rows within [start, end]."""
    cpu, memory, obs_cpu, obs_rss, pids = [], [], [], [], set()
    for moment, row in _monitor_rows(path, start, end):
        for series, key in (
            (cpu, "CPU%"),
            (memory, "Memory%"),
            (obs_cpu, "Observer_CPU%"),
            (obs_rss, "Observer_Memory_MB"),
        ):
            value = _cell(row, key)
            if value is not None:
                series.append((moment, value))
        if row.get("Observer_PID"):
            pids.add(row["Observer_PID"])
    return {
        "samples": len(cpu),
        "observer_samples": len(obs_cpu),
        "sustained_window_s": window_s,
        # To say how much of the machine's figures was the Observer's own.
        "cpu_count": os.cpu_count() or 1,
        "memory_total_mb": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1048576.0, 1
        ),
        "cpu_pct": {
            "sustained": sustained(cpu, window_s),
            "peak": max((v for _unused, v in cpu), default=0.0),
        },
        "memory_pct": {
            "sustained": sustained(memory, window_s),
            "peak": max((v for _unused, v in memory), default=0.0),
        },
        "observer_cpu_pct": {
            "sustained": sustained(obs_cpu, window_s),
            "peak": max((v for _unused, v in obs_cpu), default=0.0),
        },
        "observer_rss_mb": {"peak": max((v for _unused, v in obs_rss), default=0.0)},
        "observer_pids": sorted(pids),
        # Each sample of the Observer's own CPU (percent of one core) in the window: the
        # regression test's samples, which a neighbour's load on the machine does not move.
        "observer_cpu_samples": [round(v, 2) for _unused, v in sorted(obs_cpu)],
    }


# -- trends (module_utils/trends.py fits and the gate judges; here the series are read) --------


def monitor_series(path: str, start: float, end: float) -> dict:
    """The monitor's samples of the Observer's RSS (MB) and open files within [start, end]
    (seconds from ``start``), and its last row's Observer PID and system memory share."""
    found: dict = {"rss_mb": [], "open_files": [], "pid": None, "memory_pct": None}
    for moment, row in _monitor_rows(path, start, end):
        for series, key in (
            ("rss_mb", "Observer_Memory_MB"),
            ("open_files", "Observer_Open_Files"),
        ):
            value = _cell(row, key)
            if value is not None:
                found[series].append((moment - start, value))
        found["pid"] = row.get("Observer_PID") or found["pid"]
        found["memory_pct"] = _cell(row, "Memory%") or found["memory_pct"]
    return found


def _open_files_limit(pid: str | None) -> float | None:
    """The soft RLIMIT_NOFILE of a process (``/proc/<pid>/limits``); None when unreadable."""
    if not pid or not pid.isdigit():
        return None
    try:
        with open("/proc/%s/limits" % pid) as handle:
            for line in handle:
                if line.startswith("Max open files"):
                    soft = line.split()[3]
                    return float(soft) if soft.isdigit() else None
    except OSError:
        return None
    return None


def _observer_settings(config_file: str | None) -> dict:
    """The records' rotation and the buffer's size from the Observer's stress configuration
    (the reference's keys; empty for another)."""
    try:
        with open(config_file or "") as handle:
            config = json.load(handle)
        rotation = config.get("rotation") or {}
        settings: dict = {}
        if rotation.get("enabled"):
            settings["rotation"] = {"window_ms": float(rotation["window_ms"]),
                                    "max_files": int(rotation["max_files"])}  # fmt: skip
        if (config.get("buffer") or {}).get("max_buffer_size"):
            settings["max_buffer_size"] = int(config["buffer"]["max_buffer_size"])
        return settings
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _p99_each_second(samples: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """(second, p99 ms) of the latencies of the snapshots meant to be sent in each second."""
    seconds: dict[int, list[float]] = {}
    for moment, value in samples:
        seconds.setdefault(int(moment), []).append(value)
    return [(second + 0.5, summary_ms(values)["p99"]) for second, values in sorted(seconds.items())]


def trend_series(params: dict, latency_samples: list[tuple[float, float]],
                 reports: list[dict]) -> dict:  # fmt: skip
    """The level's windows of each trend series (``trends.SERIES``) and what their limits are
    read from on the host. ``latency_samples``: (intended send time from the start, latency
    ms) of each record; ``reports``: the Observer's metrics reports during the level."""
    settings = params["trends"]
    start, end = params["start"], params["end"]
    count = judged_span(params["duration_s"], settings)
    monitor = monitor_series(params["monitor_csv"], start, end)
    depths = []
    for report in reports:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            moment = report["timestamp"]
            moment = moment if isinstance(moment, float) else epoch(str(moment))
            if report.get("buffer_depth") is not None:
                depths.append((moment - start, float(report["buffer_depth"])))
    folder = [(moment - start, size / 1048576.0)
              for moment, size in read_folder_sizes(params["ledger"] + ".folder")]  # fmt: skip
    samples = {
        "rss_mb": monitor["rss_mb"],
        "open_files": monitor["open_files"],
        "records_mb": folder,
        "p99_ms": _p99_each_second(latency_samples),
        "buffer_depth": depths,
    }
    series = {
        name: windows(samples[name], warmup_s=settings["warmup_s"], window_s=settings["window_s"],
                      count=count)
        for name in SERIES
    }  # fmt: skip
    try:
        space = os.statvfs(params["output_dir"])
        free_mb: float | None = round(space.f_bavail * space.f_frsize / 1048576.0, 3)
    except OSError:
        free_mb = None
    context = {
        "windows": count,
        "open_files_limit": _open_files_limit(monitor["pid"]),
        "filesystem_free_mb": free_mb,
        "memory_pct": monitor["memory_pct"],
        **_observer_settings(params.get("config_file")),
    }
    return {"series": series, "context": context}
