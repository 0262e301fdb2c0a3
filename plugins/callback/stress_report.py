# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Callback: every metric of each stress level as it is judged, and live output in CI logs.

The tasks decide and report (``stress_verdict`` writes report.json and junit.xml and prints
the verdict); this callback only adds lines to the console. Ansible gives callbacks no
supported way to fail a play, so nothing here may ever be the gate.
"""

from __future__ import annotations

DOCUMENTATION = r"""
---
name: stress_report
type: aggregate
short_description: Print every metric of each qts.observer stress level as it is judged
version_added: "0.1.0"
description:
  - Adds to the console of a stress run (C(playbooks/stress.yml)); the run's verdict,
    report.json, junit.xml and its progress lines do not depend on it.
  - After each level is judged, prints one C([level]) line per host with every figure the
    level measured (throughput, sent, written, lost, duplicated, modified, processing and
    end-to-end latency percentiles, the generator's lateness and achieved rate, system and
    Observer CPU and memory, buffer and queue depth, flushes, rotations, errors, validation
    rate) and its verdict.
  - Makes the console line-buffered, so that progress lines reach a CI log (a pipe) as they
    happen rather than in bursts when a buffer fills.
  - Stays silent in plays that judge no level.
author:
  - QTS (@qts)
requirements:
  - enable in configuration (C(callbacks_enabled = qts.observer.stress_report))
options:
  show_levels:
    description: Print the C([level]) line of each judged level.
    type: bool
    default: true
    env:
      - name: QTS_STRESS_REPORT_SHOW_LEVELS
    ini:
      - section: callback_stress_report
        key: show_levels
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = qts.observer.stress_report
# [callback_stress_report]
# show_levels = true
"""

import functools
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ansible.plugins.callback import CallbackBase
from ansible_collections.qts.observer.plugins.plugin_utils.report import dig, fmt

if TYPE_CHECKING:
    from ansible.executor.task_result import CallbackTaskResult

LEVEL_KEY = "qts_stress_level"


def _guarded(method: Callable[..., None]) -> Callable[..., None]:
    """Turn any exception of a hook into a warning: a callback crash must not hide the play."""

    @functools.wraps(method)
    def wrapper(self: CallbackModule, *args: Any, **kwargs: Any) -> None:
        try:
            method(self, *args, **kwargs)
        except Exception as exc:
            self._display.warning(
                "qts.observer.stress_report: %s failed (%s: %s)"
                % (method.__name__, type(exc).__name__, exc)
            )

    return wrapper


def _percentiles(figures: Any) -> str:
    return "/".join(fmt(dig(figures, k), "%.1f") for k in ("p50", "p95", "p99", "max"))


def level_line(host: str, level: Mapping[str, Any]) -> str:
    """Every figure of one judged level, on one line."""
    cores = level.get("cpu_count") or 0
    observer_cpu = dig(level, "observer_cpu_pct", "sustained")
    share = observer_cpu / cores if isinstance(observer_cpu, (int, float)) and cores else None
    parts = [
        "throughput %s/s of %s/s"
        % (fmt(level.get("throughput"), "%.3f"), fmt(level.get("rate"), "%g")),
        "sent %s written %s lost %s duplicated %s modified %s"
        % tuple(
            fmt(level.get(k), "%d") for k in ("sent", "written", "lost", "duplicated", "modified")
        ),
        "latency p50/p95/p99/max %s ms (from %s)"
        % (_percentiles(level.get("latency_ms")), level.get("latency_source") or "nowhere"),
        "end-to-end %s ms" % _percentiles(level.get("e2e_latency_ms")),
        "visible %s ms (%s of %s records seen, drained %s ms after the last send)"
        % (
            _percentiles(dig(level, "freshness", "visibility_ms")),
            fmt(dig(level, "freshness", "visible"), "%d"),
            fmt(dig(level, "freshness", "sent"), "%d"),
            fmt(dig(level, "freshness", "drain_ms"), "%.0f"),
        ),
        "send lateness %s ms, achieved %s/s"
        % (_percentiles(level.get("send_lateness_ms")), fmt(level.get("achieved_rate"), "%.2f")),
        "offered/delivered peak per 10 ms %s/%s"
        % (
            fmt(dig(level, "delivery", "offered", "10ms", "peak"), "%d"),
            fmt(dig(level, "delivery", "delivered", "10ms", "peak"), "%d"),
        ),
        "CPU %s %% (peak %s), Observer %s %% of the machine"
        % (
            fmt(dig(level, "cpu_pct", "sustained"), "%.1f"),
            fmt(dig(level, "cpu_pct", "peak"), "%.1f"),
            fmt(share, "%.1f"),
        ),
        "memory %s %% (peak %s), Observer RSS %s MB"
        % (
            fmt(dig(level, "memory_pct", "sustained"), "%.1f"),
            fmt(dig(level, "memory_pct", "peak"), "%.1f"),
            fmt(dig(level, "observer_rss_mb", "peak"), "%.1f"),
        ),
        "buffer depth max %s, queue depth max %s, flushes %s, rotations %s"
        % tuple(
            fmt(level.get(k), "%d")
            for k in ("buffer_depth_max", "queue_depth_max", "flushes", "rotations")
        ),
        "errors %s (%s %%), validation %s %%"
        % (
            fmt(level.get("errors"), "%d"),
            fmt(level.get("error_rate_pct"), "%.3f"),
            fmt(level.get("validation_rate_pct"), "%.1f"),
        ),
    ]
    return "[level] %s L%s %s: %s" % (
        host,
        level.get("level"),
        level.get("verdict"),
        "; ".join(parts),
    )


def _payloads(result: Mapping[str, Any], key: str) -> Iterator[dict]:
    if isinstance(result.get(key), dict):
        yield result[key]
    for item in result.get("results") or []:
        if isinstance(item, dict) and isinstance(item.get(key), dict):
            yield item[key]


class CallbackModule(CallbackBase):
    """Every metric of each judged level, and a line-buffered console."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "qts.observer.stress_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._show_levels = True
        # Ansible's Display writes without flushing; into a pipe (CI logs) progress would
        # come out in bursts long after the fact. Progress is only worth anything current.
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)

    def set_options(self, task_keys=None, var_options=None, direct=None) -> None:
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self._show_levels = bool(self.get_option("show_levels"))

    @_guarded
    def v2_runner_on_ok(self, result: CallbackTaskResult) -> None:
        if not self._show_levels:
            return
        for level in _payloads(result.result, LEVEL_KEY):
            self._display.display(level_line(result.host.get_name(), level))
