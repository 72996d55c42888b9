"""A run's requests counted per interval of its clock, in bounded memory.

Each request is filed in the interval of the time it was sent (an open load's: when it
was due), with its latency and whether it failed. By send time, not answer time, a stall
shows in every request sent during it (coordinated omission): filed by answer time, the
requests of a one-second stall would all land in the interval where it ended.

Unless a step is given, the interval starts at 2**-10 s and doubles (each pair of
neighbours merged) whenever the run reaches `limit` intervals, so a run of any length
keeps between limit/2 and limit of them, each a power of two seconds (exact in binary, so
a fault at t = 1 s starts an interval). A given step is kept while the run fits in
MAX_INTERVALS of it; a longer run doubles it too. An interval's served latencies are kept
to three significant digits, at most a few thousand distinct values whatever it holds:
its p50 and p99 are the nearest-rank ones within 0.5 %. Plain data, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .metrics import Histogram

AUTO_STEP = 2.0**-10  # seconds: the first interval of a run that chooses its own
AUTO_LIMIT = 100
MAX_INTERVALS = 1000  # with a step given: then it doubles
DIGITS = 3


@dataclass
class Interval:
    answered: int = 0  # served or failed: a request cut in flight is neither
    failed: int = 0
    served: Histogram = field(default_factory=lambda: Histogram(digits=DIGITS))

    def merge(self, other: Interval) -> None:
        self.answered += other.answered
        self.failed += other.failed
        self.served.merge(other.served)


@dataclass
class PerInterval:
    step: float = AUTO_STEP
    limit: int = AUTO_LIMIT
    intervals: list[Interval] = field(default_factory=list)

    @classmethod
    def every(cls, step: float) -> PerInterval:
        """Intervals of `step` seconds; 0: chosen from the run's length."""
        return cls(step, MAX_INTERVALS) if step > 0 else cls()

    def add(self, t: float, latency: float, failed: bool) -> None:
        """One answered request sent `t` seconds from the start."""
        index = self._index(t)
        while index >= self.limit:
            self._coarsen()
            index = self._index(t)
        while len(self.intervals) <= index:
            self.intervals.append(Interval())
        interval = self.intervals[index]
        interval.answered += 1
        if failed:
            interval.failed += 1
        else:
            interval.served.add(latency)

    def widths(self, end: float) -> list[float]:
        """Each interval's seconds, the last one's cut at `end` (the run's end): a run that
        ends a little into its last interval had no time to send more in it."""
        widths = [self.step] * len(self.intervals)
        if widths:
            last = (len(widths) - 1) * self.step
            widths[-1] = min(self.step, max(end - last, 0.0)) or self.step
        return widths

    def _index(self, t: float) -> int:
        # The epsilon: a request sent on a boundary (0.3 s in steps of 0.1 s, whose
        # quotient is 2.9999999999999996) goes to the interval it starts.
        return max(0, math.floor(t / self.step + 1e-9))

    def _coarsen(self) -> None:
        merged = []
        for i in range(0, len(self.intervals), 2):
            pair = self.intervals[i : i + 2]
            for other in pair[1:]:
                pair[0].merge(other)
            merged.append(pair[0])
        self.intervals = merged
        self.step *= 2
