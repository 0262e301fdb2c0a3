"""A healthy level's figures as stress_measure returns them, for the gate and report tests."""

from __future__ import annotations


def healthy_figures(rate: float, duration_s: float) -> dict:
    sent = round(rate * duration_s)
    return {
        "rate": rate,
        "duration_s": duration_s,
        "sent": sent,
        "written": sent,
        "lost": 0,
        "duplicated": 0,
        "modified": 0,
        "extra_fields": [],
        "throughput": float(rate),
        "latency_ms": {"p50": 8.0, "p95": 18.0, "p99": 19.5, "max": 20.5},
        "cpu_pct": {"sustained": 10.0, "peak": 15.0},
        "memory_pct": {"sustained": 40.0, "peak": 41.0},
        "samples": max(2, round(duration_s)),
        "observer_samples": max(2, round(duration_s)),
        "observer_cpu_pct": {"sustained": 1.0, "peak": 2.0},
        "observer_rss_mb": {"peak": 40.0},
        "cpu_count": 2,
        "memory_total_mb": 4000.0,
        "errors": 0,
        "error_rate_pct": 0.0,
        "failure": None,
    }


def with_changes(figures: dict, **changes) -> dict:
    """The figures with ``changes``; ``"latency_ms.p99"`` changes one value of a group."""
    figures = dict(figures)
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            figures[outer] = dict(figures[outer], **{inner: value})
        else:
            figures[key] = value
    return figures
