"""The hybrid trigger: when pending snapshots become PatternRecords.

Event trigger: snapshots arriving cause a dispatch, but no more often than every
``min_interval``; a dispatch that is held back happens as soon as the interval has passed,
not when the next snapshot arrives, so no snapshot waits longer than ``min_interval`` plus
its processing. Timer trigger: the Observer ticks at least every ``max_interval`` even when
input is idle (pending work is dispatched, buffers and rotation are looked after).
"""

from __future__ import annotations


class HybridTrigger:
    def __init__(self, enabled: bool, min_interval_s: float, max_interval_s: float) -> None:
        self._min = min_interval_s if enabled else 0.0
        self._max = max_interval_s
        self.last_dispatch = float("-inf")
        self.last_tick = float("-inf")

    def dispatch_due(self, now: float, pending: int) -> bool:
        return pending > 0 and now - self.last_dispatch >= self._min

    def tick_due(self, now: float) -> bool:
        return now - self.last_tick >= self._max

    def next_deadline(self, pending: int) -> float:
        tick = self.last_tick + self._max
        if pending:
            return min(tick, self.last_dispatch + self._min)
        return tick

    def dispatched(self, now: float) -> None:
        self.last_dispatch = now
        self.last_tick = now

    def ticked(self, now: float) -> None:
        self.last_tick = now
