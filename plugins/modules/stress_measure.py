#!/usr/bin/python
# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: measure one stress level on the Observer host."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stress_measure
short_description: Measure one stress level on the Observer host
version_added: "0.1.0"
description:
  - Reads what the Observer host holds and returns figures, without judging them (the
    M(qts.observer.stress_level) action judges them with the gate).
  - It waits until every run_id of the level's ledger is written (or O(settle_s) passes),
    then returns integrity (sent, written, lost, duplicated, modified,
    fields beyond the PatternRecord metadata), throughput, processing and end-to-end latency
    percentiles, buffer depth, flushes, errors and validation rate from the Observer's own
    records, metrics and log, and system and Observer CPU and memory from the monitor's CSV.
  - The baseline and the recovery (the monitor's CSV over a quiet window) are
    M(qts.observer.stress_window)'s; what the Observer wrote of the whole run after its stop
    is M(qts.observer.stress_reconcile)'s.
  - Sustained CPU and memory are the highest mean over any rolling O(sustained_window_s).
author:
  - QTS (@qts)
options:
  start:
    description: Epoch seconds where the level's measured window starts (its first send after the warm-up).
    type: float
    required: true
  end:
    description: Epoch seconds where the level ended.
    type: float
    required: true
  ledger:
    description: Lines sent during the level (from M(qts.observer.snapshot_load)).
    type: path
    required: true
  rate:
    description: Offered rate of the level, snapshots per second.
    type: float
    required: true
  duration_s:
    description: Planned duration of the level in seconds.
    type: float
    required: true
  run_id_prefix:
    description: Prefix of the level's run_ids (C(stress_<run_tag>L<level>_)).
    type: str
    required: true
  settle_s:
    description: How long to wait for the last records to be written after the level.
    type: float
    default: 10.0
  warmup_s:
    description: >-
      Seconds at the start of the level whose snapshots (the first O(rate) x O(warmup_s)
      sent) are left out of the latency figures: a warm-up, reconciled but not measured.
    type: float
    default: 0.0
  failure:
    description: The load step's failure (for example C(process failure), carried into the figures.
    type: str
  faults:
    description:
      - The level's planned faults on this host, each with when it was applied and ended
        (C(applied_s), C(ended_s)) and when the Observer was back (C(back_at_s)), in seconds
        from the level's start. Each is counted over its window (from the first snapshot in
        flight when it came to the level's recovery) and returned in C(faults); those
        snapshots are left out of the level's own figures, and its throughput is over the
        level's time outside the windows.
    type: list
    elements: dict
    default: []
  late_after_ms:
    description: A fault window's snapshot visible later than this after its intended send time is late.
    type: float
    default: 0.0
  trends:
    description:
      - Cut the level into trend windows (a soak's) and return each trend series' windows in
        C(trend_series); unset, no trend is read.
      - C(window_s) long each, after C(warmup_s) from the level's start (only whole windows).
    type: dict
  config_file:
    description:
      - The Observer's stress configuration, read for the records' rotation and the buffer's
        size (the limits of two trends); another Observer's file gives neither.
    type: path
extends_documentation_fragment:
  - qts.observer.attributes
  - qts.observer.attributes.platform
  - qts.observer.measure.observer_files
  - qts.observer.measure.monitor
  - qts.observer.observer_interface
attributes:
  check_mode:
    support: full
    details: >-
      Reads the host's files; with O(faults) it writes one, C(<ledger>.faults) (the sequences
      of the faults' windows, left out of the run's reconciliation after the stop), in check
      mode too (it is the run's work file, not the host's state).
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Measure level 1
  qts.observer.stress_measure:
    start: "{{ __stress_load.started_at }}"
    end: "{{ __stress_load.finished_at }}"
    ledger: /var/lib/qts_observer/stress/L1.sent.jsonl
    rate: 5
    duration_s: 180
    run_id_prefix: stress_runL1_
    output_dir: /opt/qts_observer/config/observer
    log_file: /var/log/qts_observer/observer.log
    monitor_csv: /var/log/qts_monitor/monitor.csv
  register: __stress_level_metrics
"""

RETURN = r"""
qts_stress_metrics:
  description: The figures; see the README's definitions.
  returned: always
  type: dict
  sample:
    rate: 5
    sent: 900
    written: 900
    lost: 0
    duplicated: 0
    modified: 0
    throughput: 5.0
    latency_ms: {"p50": 9.1, "p95": 19.0, "p99": 19.9, "max": 20.4}
    cpu_pct: {"sustained": 12.3, "peak": 20.1}
    memory_pct: {"sustained": 40.2, "peak": 40.5}
    faults:
      - fault: 1
        type: pause
        applied_s: 60.0
        ended_s: 70.0
        window_s: [59.5, 72.0]
        sent: 625
        lost: 0
        duplicated: 0
        modified: 0
        late: 480
        recovery_s: 2.0
        drain_s: 0.4
    trend_series:
      series:
        rss_mb: [[630.0, 41.2], [690.0, 41.2]]
        p99_ms: [[630.0, 1.9], [690.0, 2.1]]
      context:
        windows: 230
        open_files_limit: 1024
        filesystem_free_mb: 12034.5
        memory_pct: 41.0
        rotation: {"window_ms": 600000, "max_files": 20}
        max_buffer_size: 50000
        back_s: null
"""

import os
import time
from collections import Counter
from types import SimpleNamespace

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.qts.observer.plugins.module_utils.faults import (
    account,
    write_fault_windows,
)
from ansible_collections.qts.observer.plugins.module_utils.measure import (
    after_warmup,
    integrity,
    latencies,
    log_metrics,
    metrics_window,
    modified_run_ids,
    monitor_window,
    per_second,
    read_ledger,
    read_log,
    read_metrics,
    scan_records,
    sent_times_and_latencies,
    trend_series,
)
from ansible_collections.qts.observer.plugins.module_utils.observer_interface import (
    resolved_reference,
)
from ansible_collections.qts.observer.plugins.module_utils.shapes import read_send_times
from ansible_collections.qts.observer.plugins.module_utils.visibility import (
    freshness,
    read_sightings,
)

SETTLE_POLL_S = 0.25


def _sequence(run_id: bytes, prefix: bytes) -> int | None:
    tail = run_id[len(prefix) :]
    return int(tail) if tail.isdigit() else None


def _fault_windows(
    params: dict, sent: dict, found: list, prefix: bytes, *, times: tuple | None, seen: dict
) -> tuple[list[dict], set[int]]:
    """What each planned fault cost (faults.account), and the sequences of its window: judged
    by the fault, left out of the level's own figures. Without the ledger's send times no
    fault is counted (each says so). ``times``: the ledger's send times; ``seen``: its
    sightings."""
    if times is None:
        return [dict(f, counted=False) for f in params["faults"]], set()
    intended, sent_at = times
    copies: Counter = Counter()
    for run_id, _unused, _unused in found:
        sequence = _sequence(run_id, prefix)
        if sequence is not None:
            copies[sequence] += 1
    modified = {_sequence(run_id, prefix) for run_id in modified_run_ids(sent, found)}
    accounts, members, since = [], set(), 0.0
    for fault in sorted(params["faults"], key=lambda f: f["at_s"]):
        timeline = {key: fault.get(key) for key in ("applied_s", "ended_s", "back_at_s")}
        figures = account(fault, timeline, intended=intended, visible=seen or None, copies=copies,
                          modified={m for m in modified if m is not None}, sent=len(sent_at),
                          level_end=params["duration_s"], late_ms=params["late_after_ms"],
                          since=since)  # fmt: skip
        since = (figures.get("window_s") or [since, since])[1]
        members.update(figures.pop("members", []))
        accounts.append(dict(fault, counted=True, **figures))
    write_fault_windows(params["ledger"], members)
    return accounts, members


def _outside(times: tuple | None, seen: dict, members: set[int], settle_end: float) -> dict | None:
    """The level's freshness over the snapshots outside its faults' windows (None: not
    followed)."""
    if times is None or not seen:
        return None
    intended, sent_at = times
    return freshness(
        SimpleNamespace(offsets=intended, bursts=[]), sent_at, seen, mono_start=0.0,
        lateness_ms=[(s - i) * 1000.0 for i, s in zip(intended, sent_at)],
        gave_up=settle_end, leave_out=members,
    )  # fmt: skip


def _level_errors(moments: list[float], accounts: list[dict], level_start: float) -> list[float]:
    """The error moments of the level itself: one logged within a fault's window is the
    fault's (a full disk is logged), counted in its ``errors``."""
    for account_ in accounts:
        window = account_.get("window_s")
        inside = [m for m in moments if window and window[0] <= m - level_start < window[1]]
        account_["errors"] = len(inside)
        moments = [m for m in moments if m not in inside]
    return moments


def _trend_series(params: dict, found: list, prefix: bytes, times: tuple | None,
                  log: dict) -> dict:  # fmt: skip
    """The level's trend windows (measure.trend_series) from its records' latencies and the
    Observer's metrics reports (its metrics file's, else its log's)."""
    interface = params["interface"]
    timed = sent_times_and_latencies(found, prefix, rate=params["rate"], interface=interface,
                                     logged=log["dispatched"],
                                     intended=(times or (None, None))[0])  # fmt: skip
    if interface["metrics_file"]:
        _unused, reports = read_metrics(
            os.path.join(params["output_dir"], interface["metrics_file"]),
            params["start"], params["end"],
        )  # fmt: skip
    else:
        reports = log["reports"]
    return trend_series(params, [(due, value) for due, value, _unused in timed if value is not None],
                        reports)  # fmt: skip


def measure_level(params: dict) -> dict:
    interface = params["interface"]
    sent = read_ledger(params["ledger"])
    prefix = params["run_id_prefix"].encode()
    deadline = time.monotonic() + params["settle_s"]
    while True:
        found = scan_records(params["output_dir"], prefix, interface)
        written = {run_id for run_id, _unused, _unused in found}
        if all(run_id in written for run_id in sent) or time.monotonic() >= deadline:
            break
        time.sleep(SETTLE_POLL_S)
    start, end = params["start"], params["end"]
    settled = end + params["settle_s"]
    # The ledger's send times, read once: the per-second rows, the faults and the freshness.
    times = read_send_times(params["ledger"] + ".times")
    seen = read_sightings(params["ledger"] + ".visible") if params["faults"] else {}
    accounts, members = (
        _fault_windows(params, sent, found, prefix, times=times, seen=seen)
        if params["faults"]
        else ([], set())
    )
    every_record = found
    if members:
        # The faults' windows are judged by the faults: the level's figures are the rest's.
        sent = {k: v for k, v in sent.items() if _sequence(k, prefix) not in members}
        found = [f for f in found if _sequence(f[0], prefix) not in members]
    log = read_log(params["log_file"], interface, start, settled, prefix)
    figures = integrity(sent, found, interface)
    # Every record is reconciled; the warm-up's (the first ones sent) are left out of latency.
    warmup = round(params["rate"] * params["warmup_s"])
    figures.update(latencies(after_warmup(found, prefix, warmup), interface, log["dispatched"]))
    figures["per_second"] = per_second(
        every_record, prefix, rate=params["rate"], start=params["start"],
        duration_s=params["duration_s"], interface=interface, logged=log["dispatched"],
        intended=(times or (None, None))[0],
    )  # fmt: skip
    duration = params["duration_s"]
    figures.update(warmup=warmup, rate=params["rate"], duration_s=duration)
    # Over the level's time outside its faults' windows.
    outside_s = duration - sum(max(min(a["window_s"][1], duration) - max(a["window_s"][0], 0.0), 0.0)
                               for a in accounts if a.get("window_s"))  # fmt: skip
    figures["throughput"] = round(figures["written"] / outside_s, 3) if outside_s > 0 else 0.0
    if params["faults"]:
        figures["faults"] = accounts
        figures["fault_window_s"] = round(duration - outside_s, 3)
        figures["freshness_outside_faults"] = _outside(
            times, seen, members, end - start + params["settle_s"]
        )
    if interface["metrics_file"]:
        observer = metrics_window(
            os.path.join(params["output_dir"], interface["metrics_file"]), start, settled
        )
    else:
        observer = log_metrics(log["reports"])
    figures.update(observer)
    if params["trends"]:
        figures["trend_series"] = _trend_series(params, found, prefix, times, log)
    # Errors are counted over the level itself (the spec's error rate is the level's), from
    # the same read of the log as the rest.
    moments = _level_errors([m for m in log["error_moments"] if m <= end], accounts,
                            start - params["warmup_s"])  # fmt: skip
    figures["errors"] = len(moments)
    figures["error_rate_pct"] = (
        round(100.0 * figures["errors"] / figures["sent"], 4) if figures["sent"] else 0.0
    )
    accepted = figures["written"]
    if observer["rejected"] is None:
        figures["validation_rate_pct"] = None  # the Observer does not report its rejects
    else:
        offered = accepted + observer["rejected"]
        figures["validation_rate_pct"] = round(100.0 * accepted / offered, 3) if offered else 100.0
    figures["failure"] = params["failure"] or None
    figures["started_at"], figures["finished_at"] = start, end
    return figures


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "start": {"type": "float", "required": True},
            "end": {"type": "float", "required": True},
            "monitor_csv": {"type": "path", "required": True},
            "sustained_window_s": {"type": "float", "default": 10.0},
            "ledger": {"type": "path", "required": True},
            "rate": {"type": "float", "required": True},
            "duration_s": {"type": "float", "required": True},
            "run_id_prefix": {"type": "str", "required": True},
            "output_dir": {"type": "path", "required": True},
            "log_file": {"type": "path", "required": True},
            "settle_s": {"type": "float", "default": 10.0},
            "warmup_s": {"type": "float", "default": 0.0},
            "failure": {"type": "str"},
            "interface": {"type": "dict"},
            "faults": {"type": "list", "elements": "dict", "default": []},
            "late_after_ms": {"type": "float", "default": 0.0},
            "trends": {"type": "dict"},
            "config_file": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    params["interface"] = params["interface"] or resolved_reference()
    if params["end"] < params["start"]:
        module.fail_json(msg="end (%s) is before start (%s)" % (params["end"], params["start"]))
    if params["sustained_window_s"] <= 0:
        module.fail_json(msg="sustained_window_s must be greater than 0")
    try:
        figures = measure_level(params)
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (exc.filename, exc.strerror))
    figures.update(
        monitor_window(
            params["monitor_csv"], params["start"], params["end"], params["sustained_window_s"]
        )
    )
    module.exit_json(changed=False, qts_stress_metrics=figures)


if __name__ == "__main__":
    main()
