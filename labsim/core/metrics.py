"""Bounded latency histograms: exact-ish ones for the bench's report, fixed buckets for
each component's `/metrics`.

Memory stays flat however long a run lasts: a histogram keeps one counter per distinct
value rounded to four significant digits (relative error under 0.05 %), and the exact
count, sum, min and max, so means and extremes are exact.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_DIGITS = 4


def _bucket(us: int, digits: int = _DIGITS) -> int:
    """`us` rounded to `digits` significant digits (integers below 10**digits stay exact)."""
    if us < 10**digits:
        return us
    scale = 10 ** (int(math.log10(us)) + 1 - digits)
    return round(us / scale) * scale


@dataclass
class Histogram:
    """Latencies in seconds, stored as microsecond buckets of `digits` significant digits."""

    count: int = 0
    total_us: int = 0
    min_us: int | None = None
    max_us: int | None = None
    buckets: Counter[int] = field(default_factory=Counter)
    # Fewer digits, fewer buckets: a histogram per interval of a run keeps three (0.5 %).
    digits: int = _DIGITS

    def add(self, seconds: float) -> None:
        us = max(0, round(seconds * 1_000_000))
        self.count += 1
        self.total_us += us
        self.min_us = us if self.min_us is None else min(self.min_us, us)
        self.max_us = us if self.max_us is None else max(self.max_us, us)
        self.buckets[_bucket(us, self.digits)] += 1

    def merge(self, other: Histogram) -> None:
        """Add every latency of `other` (kept to as many digits as this one's or fewer)."""
        self.count += other.count
        self.total_us += other.total_us
        if other.min_us is not None and other.max_us is not None:
            self.min_us = (
                min(self.min_us, other.min_us) if self.min_us is not None else other.min_us
            )
            self.max_us = (
                max(self.max_us, other.max_us) if self.max_us is not None else other.max_us
            )
        self.buckets.update(other.buckets)

    def percentile(self, q: float) -> float | None:
        """The nearest-rank q-th percentile in milliseconds (None when empty)."""
        top = self.max_us
        if top is None:  # nothing added yet
            return None
        if q >= 100:
            return top / 1000
        rank = max(1, math.ceil(q / 100 * self.count))
        seen = 0
        for value in sorted(self.buckets):
            seen += self.buckets[value]
            if seen >= rank:
                return min(value, top) / 1000
        return top / 1000

    def mean_ms(self) -> float | None:
        return self.total_us / self.count / 1000 if self.count else None

    def summary(self) -> dict[str, float | int | None]:
        return {
            "count": self.count,
            "mean_ms": _round(self.mean_ms()),
            "min_ms": _round(self.min_us / 1000 if self.min_us is not None else None),
            "p50_ms": _round(self.percentile(50)),
            "p90_ms": _round(self.percentile(90)),
            "p99_ms": _round(self.percentile(99)),
            "max_ms": _round(self.max_us / 1000 if self.max_us is not None else None),
        }


def distribution(histograms: dict[str, Histogram], bins: int = 24) -> dict[str, Any]:
    """Counts of each histogram's latencies in `bins` shared bins, log-spaced in ms.

    Shared bins put every series on one axis; log spacing keeps a 3 ms cache hit and a
    2 s database miss apart on it. A series with one value throughout lands in one bin.
    """
    filled = {name: h for name, h in histograms.items() if h.count}
    if not filled:
        return {"edges_ms": [], "series": {}}
    # Every filled histogram has its min and max: `or 0` only tells the type checker so.
    low = max(1, min(h.min_us or 0 for h in filled.values()))
    high = max(low + 1, max(h.max_us or 0 for h in filled.values()))
    ratio = (high / low) ** (1 / bins)
    edges = [low * ratio**i for i in range(bins)] + [high]
    series = {}
    for name, h in filled.items():
        counts = [0] * bins
        for us, n in h.buckets.items():
            counts[min(bins - 1, max(0, bisect.bisect_right(edges, us) - 1))] += n
        series[name] = counts
    return {"edges_ms": [round(e / 1000, 3) for e in edges], "series": series}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class Buckets:
    """Durations counted in fixed buckets (Prometheus `le` semantics), with sum and count."""

    bounds: tuple[float, ...]
    counts: list[int] = field(init=False)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last one: above every bound

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.count += 1

    def cumulative(self) -> list[int]:
        """Counts of durations at or below each bound, then the total count."""
        out, running = [], 0
        for n in self.counts:
            running += n
            out.append(running)
        return out
