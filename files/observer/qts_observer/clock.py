"""UTC timestamps in the ISO-8601 form the contract uses (``...Z``)."""

from __future__ import annotations

import time


def utc_stamp(epoch_s: float) -> str:
    """``2026-11-27T16:20:13.123456Z`` (microseconds)."""
    whole = int(epoch_s)
    micros = round((epoch_s - whole) * 1_000_000)
    if micros == 1_000_000:
        whole, micros = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micros:06d}Z"


def utc_stamp_ms(epoch_s: float) -> str:
    """``2026-11-27T16:20:13.123Z`` (milliseconds), for log lines."""
    stamp = utc_stamp(epoch_s)
    return stamp[:23] + "Z"


def file_stamp(epoch_s: float) -> str:
    """``20261127T162013.123456Z``: sorts in time order, safe in a file name."""
    return utc_stamp(epoch_s).replace("-", "").replace(":", "")
