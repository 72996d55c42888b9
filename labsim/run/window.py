"""The latencies of the last few seconds, in bounded memory: what a live load's p50 and
p99 are of. Plain data; the caller says what time it is."""

from __future__ import annotations

import math
from collections import deque


def quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (0 to 1) of `values` by nearest rank: the smallest value with at
    least q of them at or below it. None without values."""
    if not values:
        return None
    ranked = sorted(values)
    return ranked[max(0, math.ceil(q * len(ranked)) - 1)]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class Window:
    """(when, latency) of the answers of the last `span` seconds; at most `keep` of them,
    the oldest forgotten first."""

    def __init__(self, span: float, keep: int) -> None:
        self.span = span
        self.seen: deque[tuple[float, float]] = deque(maxlen=keep)

    def add(self, now: float, latency: float) -> None:
        self.seen.append((now, latency))

    def latencies(self, now: float) -> list[float]:
        """The latencies of the last `span` seconds before `now`."""
        while self.seen and self.seen[0][0] < now - self.span:
            self.seen.popleft()
        return [latency for _, latency in self.seen]
