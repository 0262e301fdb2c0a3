# Copyright: qts.observer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""report.html: the run in one self-contained file (no network, no script), on the controller.

The charts are drawn by matplotlib as inline SVG (its text escaped by matplotlib), the page by
Jinja2 with autoescaping: every name, message and figure that comes from a host is escaped.
The data are report.json's and the raw data fetched into the run's folder (the monitor's CSV,
the Observer's metrics file). Without matplotlib on the controller the page says so in place
of each chart and keeps every table.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from ansible_collections.qts.observer.plugins.module_utils.observer_interface import epoch
from ansible_collections.qts.observer.plugins.module_utils.shapes import (
    read_send_times,
    window_of,
)
from ansible_collections.qts.observer.plugins.module_utils.stats import percentile
from ansible_collections.qts.observer.plugins.module_utils.visibility import read_sightings
from jinja2 import Environment

HTML_FILE = "report.html"
MONITOR_FILE = "system_monitor.csv"
METRICS_FILE = "metrics.jsonl"
SPECTRUM_KEYS = ("p50", "p75", "p90", "p95", "p99", "p99.9", "max")

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qts.observer stress run {{ report.run_id }}: {{ report.verdict }}</title>
<style>
body{font-family:sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;vertical-align:top}
td.n{text-align:right}.PASS{color:#060}.FAIL{color:#a00;font-weight:bold}
.NOT{color:#a60}.verdict{font-size:1.6em}.chart{margin:.5em 0}
.chart svg{max-width:100%;height:auto}.missing{color:#a60;font-style:italic}
</style></head><body>
<h1>Stress run {{ report.run_id }}</h1>
<p class="verdict" id="verdict">Verdict: <span class="{{ report.verdict.split()[0] }}">{{ report.verdict }}</span></p>
{% if report.reasons %}<ul>{% for reason in report.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>{% endif %}
<h2>Identity</h2>
<table>
<tr><th>collection</th><td>qts.observer {{ identity.collection_version or "unknown" }}</td></tr>
<tr><th>profile, seed</th><td>{{ report.profile }}, {{ report.seed }}</td></tr>
<tr><th>started, finished</th><td>{{ report.started_at }} to {{ report.finished_at }}</td></tr>
<tr><th>hosts</th><td>{{ report.hosts | list | join(", ") }}</td></tr>
{% for host, entry in report.hosts.items() %}<tr><th>Observer on {{ host }}</th>\
<td>code {{ (entry.observer_identity or {}).code_digest or "not recorded" }};
configuration {{ (entry.observer_identity or {}).config_digest or "not recorded" }}</td></tr>{% endfor %}
</table>
<h2>Hosts and levels</h2>
<table id="levels"><tr><th>host</th><th>level</th><th>rate</th><th>throughput</th><th>p99</th><th>CPU</th><th>memory</th><th>lost</th>\
<th>verdict</th><th>breaches (measured, limit)</th></tr>
{% for host, entry in report.hosts.items() %}{% for level in entry.levels %}<tr><td>{{ host }}</td><td>L{{ level.level }}</td>
<td class="n">{{ level.rate }}/s</td><td class="n">{{ fmt(level.throughput, "%.3f/s") }}</td>
<td class="n">{{ fmt((level.latency_ms or {}).p99, "%.1f ms") }}</td><td class="n">{{ fmt((level.cpu_pct or {}).sustained, "%.1f %%") }}</td>
<td class="n">{{ fmt((level.memory_pct or {}).sustained, "%.1f %%") }}</td><td class="n">{{ level.lost }}</td>
<td class="{{ (level.verdict or '').split()[0] }}">{{ level.verdict }}</td>
<td>{% for breach in level.breaches or [] %}{{ breach.message }} ({{ breach.measured }}, {{ breach.limit }})<br>{% endfor %}
{% for item in level.not_measured or [] %}NOT MEASURED {{ item.criterion }}: {{ item.reason }}<br>{% endfor %}</td></tr>
{% endfor %}{% if not entry.levels %}<tr><td>{{ host }}</td><td colspan="8">no level judged</td><td class="{{ entry.verdict.split()[0] }}\
">{{ entry.verdict }}{% if entry.message %}: {{ entry.message }}{% endif %}</td></tr>{% endif %}{% endfor %}
</table>
{% for host, entry in report.hosts.items() %}
<section class="host" id="host-{{ loop.index }}"><h2>{{ host }}: <span class="{{ entry.verdict.split()[0] }}">{{ entry.verdict }}</span></h2>
{% if entry.message %}<p>{{ entry.message }}</p>{% endif %}
<h3>Run-wide criteria</h3>
<table><tr><th>criterion</th><th>verdict</th><th>evidence</th></tr>
{% for c in entry.criteria %}<tr><td>{{ c.name }}</td><td class="{{ (c.verdict or '').split()[0] }}">{{ c.verdict }}</td>\
<td>{{ c.evidence }}</td></tr>{% endfor %}
</table>
{% set faults = entry.levels | map(attribute="faults", default=[]) | sum(start=[]) %}\
{% if faults %}<h3>Faults</h3>
<table id="faults-{{ loop.index }}"><tr><th>fault</th><th>applied</th><th>back</th><th>sent</th><th>lost</th>\
<th>allowed</th><th>dup</th><th>mod</th><th>late</th><th>recovery</th><th>drain</th><th>verdict</th></tr>
{% for f in faults %}<tr><td>{{ f.name }}</td><td class="n">{{ fmt(f.applied_s, "%.1f s") }}</td>\
<td class="n">{{ fmt(f.back_s, "%.2f s") }}</td><td class="n">{{ fmt(f.sent, "%d") }}</td>\
<td class="n">{{ fmt(f.lost, "%d") }}</td><td class="n">{{ fmt(f.allowed_lost, "%d") }}</td>\
<td class="n">{{ fmt(f.duplicated, "%d") }}</td><td class="n">{{ fmt(f.modified, "%d") }}</td>\
<td class="n">{{ fmt(f.late, "%d") }}</td><td class="n">{{ fmt(f.recovery_s, "%.2f s") }}</td>\
<td class="n">{{ fmt(f.drain_s, "%.2f s") }}</td><td class="{{ (f.verdict or '').split()[0] }}">{{ f.verdict }}\
{% for b in f.breaches or [] %}: {{ b.message }}{% endfor %}\
{% for u in f.not_measured or [] %}: NOT MEASURED {{ u.reason }}{% endfor %}</td></tr>{% endfor %}</table>{% endif %}
{% set soak = entry.levels | map(attribute="trends", default=[]) | sum(start=[]) %}\
{% if soak %}<h3>Trends</h3>
<table id="trends-{{ loop.index }}"><tr><th>series</th><th>slope per hour</th><th>95 % interval</th><th>windows</th>\
<th>limit</th><th>reaches it in</th><th>verdict</th></tr>
{% for t in soak %}<tr><td>{{ t.what }}</td><td class="n">{{ fmt(t.slope_per_h, "%+.3g") }} {{ t.unit }}</td>\
<td class="n">{{ fmt(t.lower_per_h, "%.3g") }} to {{ fmt(t.upper_per_h, "%.3g") }}</td><td class="n">{{ fmt(t.windows, "%d") }}</td>\
<td class="n">{{ fmt(t.limit, "%.6g") }} {{ t.unit }}</td><td class="n">{{ fmt(t.hours_to_limit, "%.1f h") }}</td>\
<td class="{{ (t.verdict or '').split()[0] }}">{{ t.verdict }}: {{ t.message }}</td></tr>{% endfor %}</table>{% endif %}
{% if entry.regression %}<h3>Against the baseline</h3>
<p>{{ entry.regression.summary }}{% if entry.regression.baseline %} (baseline {{ entry.regression.baseline }}){% endif %}</p>
{% if entry.regression.checks %}<table><tr><th>level</th><th>metric</th><th>baseline</th><th>this run</th><th>change</th><th>p</th>\
<th>verdict</th></tr>
{% for c in entry.regression.checks %}<tr><td>L{{ c.level }}</td><td>{{ c.metric }}</td><td class="n">{{ fmt(c.baseline, "%.3g") }}</td>\
<td class="n">{{ fmt(c.current, "%.3g") }}</td>
<td class="n">{{ fmt(c.change_pct, "%+.1f %%") }}</td><td class="n">{{ fmt(c.p_value, "%.2g") }}</td><td class="{{ c.verdict.split()[0] }}\
">{{ c.verdict }}</td></tr>{% endfor %}</table>{% endif %}{% endif %}
{% for chart in charts[host] %}<figure class="chart" data-chart="{{ chart.name }}">{% if chart.svg %}{{ chart.svg | safe }}{% else %}\
<p class="missing">{{ chart.title }}: {{ chart.missing }}</p>{% endif %}</figure>
{% endfor %}</section>{% endfor %}
</body></html>
"""


def fmt(value: Any, pattern: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return pattern % value


def _monitor(path: str) -> list[dict]:
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append(
                    {
                        "t": epoch(row["Timestamp"]),
                        **{k: float(v) for k, v in row.items() if k != "Timestamp" and v},
                    }
                )
            except (KeyError, ValueError):
                continue  # fmt: skip
    return rows


def _peaks(moments: Sequence[float], seconds: int) -> list[int]:
    """Per second, the most moments in any of its 10 ms windows."""
    counts: dict[int, int] = {}
    for moment in moments:
        window = window_of(moment, 0.010)
        counts[window] = counts.get(window, 0) + 1
    peaks = [0] * seconds
    for window, count in counts.items():
        second = min(window // 100, seconds - 1)
        peaks[second] = max(peaks[second], count)
    return peaks


def _metrics(path: str) -> list[dict]:
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, "rb") as handle:
        for line in handle:
            try:
                document = json.loads(line)
                rows.append({"t": epoch(document["timestamp"]),
                             "buffer": document.get("buffer_depth"),
                             "queue": document.get("queue_depth")})  # fmt: skip
            except (ValueError, KeyError, TypeError):
                continue
    return rows


class Charts:
    """One host's charts, as inline SVG; ``missing`` says why a chart has none."""

    def __init__(self, report: Mapping[str, Any], run_dir: str, host: str, entry: Mapping) -> None:
        self.report, self.host, self.entry = report, host, entry
        self.levels = [lv for lv in entry.get("levels") or [] if lv.get("started_at")]
        self.monitor = _monitor(os.path.join(run_dir, host, MONITOR_FILE))
        self.metrics = _metrics(os.path.join(run_dir, host, METRICS_FILE))
        starts = [lv["started_at"] for lv in self.levels] + [r["t"] for r in self.monitor[:1]]
        ends = [lv["finished_at"] for lv in self.levels] + [r["t"] for r in self.monitor[-1:]]
        self.t0 = min(starts) if starts else 0.0
        # Every chart of the host over the same span, so that the shaded levels line up.
        self.span = (0.0, self.minutes(max(ends))) if ends else None
        self.since = datetime.fromtimestamp(self.t0, timezone.utc).strftime("%H:%M:%S UTC")
        self.limits = report.get("limits") or {}
        self.run_dir = run_dir

    def minutes(self, moment: float) -> float:
        return (moment - self.t0) / 60.0

    def _figure(self, title: str, height: float = 3.2):
        from matplotlib.figure import Figure  # noqa: PLC0415 (optional on the controller)

        # Fixed margins, in inches, wide enough for the tick labels and a second axis on the
        # right: a layout engine measures every label of the chart first, which doubled the
        # cost of drawing it (about 0.1 CPU-s a chart, six or more a host, every run).
        figure = Figure(figsize=(10, height))
        figure.subplots_adjust(left=0.8 / 10, right=1 - 0.75 / 10, bottom=0.55 / height,
                               top=1 - 0.35 / height)  # fmt: skip
        axes = figure.add_subplot()
        # Where matplotlib would put it (nothing sits above the axes), without it measuring
        # every label of the chart to find out (0.1 CPU-s of the 1 a report's charts cost).
        axes.set_title(title, fontsize=10, y=1.0)
        axes.grid(alpha=0.3)
        return figure, axes

    def _shade(self, axes) -> None:
        for level in self.levels:
            left, right = self.minutes(level["started_at"]), self.minutes(level["finished_at"])
            axes.axvspan(left, right, color="#4a90d9", alpha=0.08)
            axes.text(left, 1.0, " L%s %g/s" % (level.get("level"), level.get("rate") or 0),
                      transform=axes.get_xaxis_transform(), fontsize=7, va="top")  # fmt: skip
            for fault in level.get("faults") or []:
                self._mark_fault(axes, level, fault)
        axes.set_xlabel("minutes since %s" % self.since)
        if self.span:
            axes.set_xlim(*self.span)

    def _mark_fault(self, axes, level: Mapping, fault: Mapping) -> None:
        """A planned fault on a chart: red from when it was applied to when it ended (a line
        for a kill), named by its number and type, and its window to recovery hatched."""
        if fault.get("applied_s") is None:
            return
        start = level["started_at"]
        applied = self.minutes(start + fault["applied_s"])
        ended = self.minutes(start + (fault.get("ended_s") or fault["applied_s"]))
        axes.axvspan(applied, max(ended, applied + 1e-3), color="#d0021b", alpha=0.25)
        window = fault.get("window_s")
        if window:
            axes.axvspan(self.minutes(start + window[0]), self.minutes(start + window[1]),
                         fill=False, hatch="//", edgecolor="#d0021b", alpha=0.3, linewidth=0)  # fmt: skip
        axes.text(applied, 0.92, " F%s %s" % (fault.get("fault"), fault.get("type")),
                  transform=axes.get_xaxis_transform(), fontsize=7, va="top", color="#d0021b")  # fmt: skip

    @staticmethod
    def svg(figure) -> str:
        buffer = io.StringIO()
        # No metadata block (creator, date, licence URIs): smaller, and the same twice.
        figure.savefig(buffer, format="svg",
                       metadata={"Creator": None, "Date": None, "Format": None, "Type": None})  # fmt: skip
        text = buffer.getvalue()
        return text[text.index("<svg") :]

    def _per_second(self, key: str) -> tuple[list[float], list[float]]:
        """(minutes, values) of one per-second figure over the levels, broken between
        levels (a NaN) so that no line is drawn across a cooldown."""
        xs: list[float] = []
        ys: list[float] = []
        for level in self.levels:
            for row in level.get("per_second") or []:
                xs.append(self.minutes(level["started_at"] + row["t"]))
                value = row.get(key)
                ys.append(math.nan if value is None else float(value))
            xs.append(math.nan)
            ys.append(math.nan)
        return xs, ys

    @staticmethod
    def _has(values: list[float]) -> bool:
        return any(not math.isnan(v) for v in values)

    def throughput(self) -> str | None:
        xs, offered = self._per_second("sent")
        if not self._has(offered):
            return None
        figure, axes = self._figure("%s: offered and achieved throughput (snapshots/s)" % self.host)
        axes.plot(xs, offered, label="offered", drawstyle="steps-post")
        _unused, achieved = self._per_second("written")
        if self._has(achieved):
            axes.plot(xs, achieved, label="achieved (written)", drawstyle="steps-post")
        self._shade(axes)
        axes.legend(fontsize=8, loc="upper left")
        return self.svg(figure)

    def latency(self) -> str | None:
        xs, p99 = self._per_second("p99")
        if not self._has(p99):
            return None
        figure, axes = self._figure("%s: processing latency (ms)" % self.host)
        for key in ("p50", "p99", "max"):
            _unused, values = self._per_second(key)
            axes.plot(xs, [max(v, 1e-3) for v in values], label=key, linewidth=1)
        for level in self.levels:
            limit = (level.get("thresholds") or {}).get("max_latency_ms")
            if limit:
                axes.hlines(limit, self.minutes(level["started_at"]),
                            self.minutes(level["finished_at"]), colors="#a00",
                            linestyles="dashed", label=None)  # fmt: skip
        axes.set_yscale("log")
        self._shade(axes)
        axes.legend(fontsize=8, loc="upper left", title="dashed: level limit", title_fontsize=7)
        return self.svg(figure)

    def _arrivals(self) -> list[dict]:
        """Per level and second: the peak count of snapshots offered (due) and delivered (written
        into the pipe) in a 10 ms window, and the p99 visibility latency of the snapshots due in
        that second, from the ledger's send times and sightings fetched with it."""
        found = []
        for level in self.levels:
            ledger = os.path.join(self.run_dir, self.host, "L%s.sent.jsonl" % level.get("level"))
            times = read_send_times(ledger + ".times")
            if not times or not times[0]:
                continue
            intended, sent = times
            seen = read_sightings(ledger + ".visible")
            seconds = int(max(intended[-1], sent[-1])) + 1
            offered, delivered = _peaks(intended, seconds), _peaks(sent, seconds)
            late: list[list[float]] = [[] for _unused in range(seconds)]
            for sequence, moment in seen.items():
                if sequence < len(intended):
                    late[int(intended[sequence])].append(1000.0 * (moment - intended[sequence]))
            found.append({
                "level": level, "offered": offered, "delivered": delivered,
                "visible_p99": [percentile(sorted(v), 0.99) if v else math.nan for v in late],
            })  # fmt: skip
        return found

    def arrivals(self) -> str | None:
        series = self._arrivals()
        if not series:
            return None
        figure, axes = self._figure(
            "%s: arrivals (peak per 10 ms in each second) and visibility latency" % self.host
        )
        visible = axes.twinx()
        for number, item in enumerate(series):
            start = item["level"]["started_at"]
            xs = [self.minutes(start + t) for t in range(len(item["offered"]))]
            first = number == 0
            axes.plot(xs, item["offered"], color="#4a90d9", drawstyle="steps-post",
                      label="offered" if first else None)  # fmt: skip
            axes.plot(xs, item["delivered"], color="#f5a623", drawstyle="steps-post",
                      linestyle="dashed", label="delivered" if first else None)  # fmt: skip
            visible.plot(xs, [max(v, 1e-3) for v in item["visible_p99"]], color="#7b0000",
                         linewidth=1, label="visible p99 (ms)" if first else None)  # fmt: skip
            for burst in (item["level"].get("delivery") or {}).get("bursts") or []:
                axes.axvline(self.minutes(start + burst["due_at_s"]), color="#999",
                             linestyle="dotted", linewidth=0.8)  # fmt: skip
        axes.set_ylabel("snapshots per 10 ms")
        visible.set_ylabel("visibility latency p99 (ms)")
        visible.set_yscale("log")
        self._shade(axes)
        lines = axes.get_legend_handles_labels()
        twin = visible.get_legend_handles_labels()
        axes.legend(lines[0] + twin[0], lines[1] + twin[1], fontsize=7, loc="upper left",
                    title="dotted: a burst due", title_fontsize=7)  # fmt: skip
        return self.svg(figure)

    def resources(self, which: str) -> str | None:
        if not self.monitor:
            return None
        cores = max(1, int(self.levels[0].get("cpu_count") or 1)) if self.levels else 1
        figure, axes = self._figure("%s: %s (%% of the machine)" % (self.host, which))
        xs = [self.minutes(r["t"]) for r in self.monitor]
        if which == "CPU":
            series = (("system", "CPU%", 1.0), ("Observer", "Observer_CPU%", cores))
            warn, limit, fail = ("warn_cpu_pct", "max_cpu_pct", "fail_cpu_pct")
        else:
            series = (("system", "Memory%", 1.0),)
            warn, limit, fail = ("warn_memory_pct", "max_memory_pct", "fail_memory_pct")
        for label, key, divisor in series:
            axes.plot(xs, [r.get(key, math.nan) / divisor for r in self.monitor], label=label)
        if warn in self.limits and limit in self.limits:
            axes.axhspan(self.limits[warn], self.limits[limit], color="#f5a623", alpha=0.15,
                         label="early warning")  # fmt: skip
        for name, color in ((limit, "#d0021b"), (fail, "#7b0000")):
            if name in self.limits:
                axes.axhline(self.limits[name], color=color, linestyle="dashed",
                             label="%s %g %%" % (name, self.limits[name]))  # fmt: skip
        if which == "memory":
            rss = axes.twinx()
            rss.plot(xs, [r.get("Observer_Memory_MB", math.nan) for r in self.monitor],
                     color="#7ed321", label="Observer RSS (MB)")  # fmt: skip
            rss.set_ylabel("Observer RSS (MB)")
            peak = max((r.get("Observer_Memory_MB", 0.0) for r in self.monitor), default=0.0)
            rss.set_ylim(0, max(peak * 1.2, 1.0))
        axes.set_ylim(0, 105)
        self._shade(axes)
        axes.legend(fontsize=7, loc="upper left")
        return self.svg(figure)

    def depth(self) -> str | None:
        if not self.metrics:
            return None
        figure, axes = self._figure("%s: buffer and queue depth (records)" % self.host)
        xs = [self.minutes(r["t"]) for r in self.metrics]
        for key, label in (("buffer", "buffer depth"), ("queue", "event queue depth")):
            axes.plot(xs, [r[key] if r[key] is not None else math.nan for r in self.metrics],
                      label=label)  # fmt: skip
        self._shade(axes)
        axes.legend(fontsize=8, loc="upper left")
        return self.svg(figure)

    def spectrum(self) -> str | None:
        levels = [lv for lv in self.levels if lv.get("latency_spectrum_ms")]
        if not levels:
            return None
        figure, axes = self._figure("%s: latency percentile spectrum per level (ms)" % self.host)
        positions = list(range(len(SPECTRUM_KEYS)))
        for level in levels:
            spectrum = level["latency_spectrum_ms"]
            axes.plot(positions, [max(spectrum.get(k, math.nan), 1e-3) for k in SPECTRUM_KEYS],
                      marker="o", label="L%s %g/s" % (level.get("level"), level["rate"]))  # fmt: skip
        axes.set_xticks(positions, SPECTRUM_KEYS)
        axes.set_yscale("log")
        axes.set_xlabel("percentile")
        axes.legend(fontsize=8, loc="upper left")
        return self.svg(figure)

    def capacity(self) -> str | None:
        result = ((self.entry.get("capacity") or {}).get("result")) or {}
        curve = result.get("curve") or []
        if not curve:
            return None
        figure, axes = self._figure("%s: capacity curve (%s)" % (self.host, result.get("summary")))
        offered = [p["rate"] for p in curve]
        axes.plot(offered, offered, color="#999", linestyle="dotted", label="offered")
        axes.plot(offered, [p["throughput"] for p in curve], marker="o", label="throughput")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("offered rate (snapshots/s)")
        latency = axes.twinx()
        latency.plot(offered, [(p.get("latency_ms") or {}).get("p99", math.nan) for p in curve],
                     color="#d0021b", marker="x", label="p99 latency (ms)")  # fmt: skip
        latency.set_ylabel("p99 latency (ms)")
        best = result.get("highest_sustainable_rate")
        if best:
            axes.axvline(best, color="#060", linestyle="dashed",
                         label="highest sustainable %g/s" % best)  # fmt: skip
        axes.legend(fontsize=8, loc="upper left")
        return self.svg(figure)


def _soak_chart(charts: Charts, level: Mapping, trend: Mapping) -> str | None:
    """A soak's series: each window's value, the Theil-Sen line fitted through them and the
    band of its slope's 95 % interval (through the windows' median point), the warm-up left
    out; the limit when it is in sight."""
    points = trend.get("points") or []
    if not points:
        return None
    figure, axes = charts._figure("%s L%s: %s (%s), one value per window" % (
        charts.host, level.get("level"), trend.get("what"), trend.get("unit")))  # fmt: skip
    start = level["started_at"]
    xs = [charts.minutes(start + t) for t, _unused in points]
    axes.plot(
        xs, [v for _unused, v in points], marker=".", linestyle="none", label="window minimum"
    )
    if trend.get("slope_per_h") is not None:
        moments = [t for t, _unused in points]
        middle = sorted(moments)[len(moments) // 2]
        centre = trend["intercept"] + trend["slope_per_h"] / 3600.0 * middle
        ends = (moments[0], moments[-1])
        minutes = [charts.minutes(start + t) for t in ends]

        def line(key: str) -> list[float]:
            return [centre + trend[key] / 3600.0 * (t - middle) for t in ends]

        axes.plot(minutes, line("slope_per_h"), color="#d0021b",
                  label="Theil-Sen %+.3g/h" % trend["slope_per_h"])  # fmt: skip
        axes.fill_between(minutes, line("lower_per_h"), line("upper_per_h"), color="#d0021b", alpha=0.15,
                          label="95 %% interval %.3g to %.3g/h" % (trend["lower_per_h"], trend["upper_per_h"]))  # fmt: skip
        limit = trend.get("limit")
        values = [v for _unused, v in points]
        if limit is not None and limit <= max(values) * 2:
            axes.axhline(limit, color="#a60", linestyle="dashed", label="limit %.4g" % limit)
    axes.set_xlabel("minutes since %s" % charts.since)
    axes.legend(fontsize=7, loc="upper left")
    return Charts.svg(figure)


def _trend_chart(charts: Charts, trend: list[dict]) -> str | None:
    """Each level's p99 and throughput over this host's last comparable runs."""
    if len(trend) < 2:
        return None
    figure, axes = charts._figure("%s: trend over the last %d comparable runs" % (
        charts.host, len(trend)))  # fmt: skip
    numbers = sorted({n for run in trend for n in run["levels"]})
    for number in numbers:
        axes.plot(range(len(trend)),
                  [run["levels"].get(number, {}).get("p99_ms") or math.nan for run in trend],
                  marker="o", label="L%s p99 (ms)" % number)  # fmt: skip
    axes.set_xticks(range(len(trend)), [run["run_id"][-9:] for run in trend], fontsize=7)
    axes.set_xlabel("run (oldest first)")
    axes.legend(fontsize=7, loc="upper left")
    return Charts.svg(figure)


def host_charts(report: Mapping, run_dir: str, host: str, entry: Mapping,
                trend: list[dict]) -> list[dict]:  # fmt: skip
    """Every chart of one host: name, title, SVG (or why there is none)."""
    charts = Charts(report, run_dir, host, entry)
    wanted = [
        ("throughput", "Offered and achieved throughput", charts.throughput),
        ("latency", "Processing latency", charts.latency),
        ("arrivals", "Arrivals and visibility", charts.arrivals),
        ("cpu", "CPU", lambda: charts.resources("CPU")),
        ("memory", "Memory", lambda: charts.resources("memory")),
        ("depth", "Buffer and queue depth", charts.depth),
        ("spectrum", "Latency percentile spectrum", charts.spectrum),
        ("capacity", "Capacity curve", charts.capacity),
        ("trend", "Trend", lambda: _trend_chart(charts, trend)),
    ]
    try:
        import matplotlib  # noqa: F401, PLC0415

        drawable = True
    except ImportError:
        drawable = False
    for level in charts.levels:
        for series in level.get("trends") or []:
            wanted.append(("soak-L%s-%s" % (level.get("level"), series.get("series")),
                           "Trend of %s" % series.get("what"),
                           lambda level=level, series=series: _soak_chart(charts, level, series)))  # fmt: skip
    found = []
    for name, title, draw in wanted:
        if name == "capacity" and not (entry.get("capacity") or {}).get("result"):
            continue
        if name == "trend" and len(trend) < 2:
            continue
        svg = draw() if drawable else None
        missing = ("not drawn: matplotlib is not installed on the controller" if not drawable
                   else "no data: not measured on this host")  # fmt: skip
        found.append({"name": name, "title": title, "svg": svg, "missing": missing})
    return found


def render(report: Mapping[str, Any], run_dir: str, *, collection_version: str | None = None,
           trends: Mapping[str, list[dict]] | None = None) -> str:  # fmt: skip
    """The page for ``report`` (report.json's content), its raw data read from ``run_dir``."""
    charts = {
        host: host_charts(report, run_dir, host, entry, (trends or {}).get(host) or [])
        for host, entry in (report.get("hosts") or {}).items()
    }
    environment = Environment(autoescape=True)  # every value from a host is escaped
    template = environment.from_string(_PAGE)
    return template.render(report=report, charts=charts, fmt=fmt,
                           identity={"collection_version": collection_version})  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Write report.html again from a run's folder (its report.json and raw data)."""
    import argparse  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from ansible_collections.qts.observer.plugins.plugin_utils.history import (  # noqa: PLC0415
        HISTORY_FILE,
        trend,
    )
    from ansible_collections.qts.observer.plugins.plugin_utils.report import (  # noqa: PLC0415
        collection_version,
    )

    parser = argparse.ArgumentParser(description="Write a run's report.html from its folder.")
    parser.add_argument("run_dir", help="the run's folder (artifacts/<run_id> or artifacts/latest)")
    args = parser.parse_args(argv)
    try:
        with open(os.path.join(args.run_dir, "report.json")) as handle:
            report = json.load(handle)
    except (OSError, ValueError) as exc:
        print("error: cannot read %s/report.json: %s" % (args.run_dir, exc), file=sys.stderr)
        return 2
    history = os.path.join(os.path.dirname(os.path.realpath(args.run_dir)), HISTORY_FILE)
    trends = {}
    if os.path.exists(history):
        trends = {host: trend(history, report, host) for host in report.get("hosts") or {}}
    page = render(report, args.run_dir, collection_version=collection_version(), trends=trends)
    target = os.path.join(args.run_dir, HTML_FILE)
    with open(target + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(target + ".tmp", target)
    print("%s (%d bytes)" % (target, len(page.encode("utf-8"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
