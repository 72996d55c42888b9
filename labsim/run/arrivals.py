"""When an open-model load sends its requests: arrival times at a rate, seeded.

The rate is piecewise linear in time: it starts at `rate` and each stage ramps it to the
stage's `rate` over the stage's `duration` (k6's ramping arrival rate); without stages it
stays at `rate` for `duration`. Arrivals are where the cumulative intensity
Λ(t) = ∫ rate dt crosses 1, 2, 3, ... (`constant`: evenly spaced at a steady rate) or the
running sum of Exp(1) draws (`poisson`: a Poisson process, exponential gaps at a steady
rate). Plain arithmetic, no I/O, no clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence

from ..model.scenario import Stage


def segments(rate: float, duration: float | None, stages: Sequence[Stage]) -> list[Stage]:
    """The load's rate as (duration, end rate) ramps starting from `rate`."""
    if stages:
        return list(stages)
    return [Stage(math.inf if duration is None else duration, rate)]


def arrival_times(
    rate: float,
    duration: float | None,
    stages: Sequence[Stage],
    arrivals: str,
    rng: random.Random,
) -> Iterator[float]:
    """Seconds from the start at which requests arrive, in order, until the load ends."""
    step = (lambda: rng.expovariate(1.0)) if arrivals == "poisson" else (lambda: 1.0)
    target = step()  # the next arrival's cumulative intensity
    start, start_rate, before = 0.0, rate, 0.0  # segment start, its rate, Λ at its start
    for stage in segments(rate, duration, stages):
        slope = 0.0 if math.isinf(stage.duration) else (stage.rate - start_rate) / stage.duration
        total = _intensity(start_rate, slope, stage.duration)
        while target - before <= total:
            yield start + _time_of(start_rate, slope, target - before)
            target += step()
        start, start_rate, before = start + stage.duration, stage.rate, before + total


def _intensity(rate: float, slope: float, t: float) -> float:
    """∫₀ᵗ (rate + slope·s) ds."""
    if math.isinf(t):
        return math.inf if rate > 0 else 0.0
    return rate * t + slope * t * t / 2


def _time_of(rate: float, slope: float, area: float) -> float:
    """The t at which ∫₀ᵗ (rate + slope·s) ds reaches `area` (area within the segment)."""
    if slope == 0:
        return area / rate
    # slope/2·t² + rate·t - area = 0, the root in the segment (rate + slope·t ≥ 0 there)
    return (-rate + math.sqrt(max(0.0, rate * rate + 2 * slope * area))) / slope


def expected_arrivals(rate: float, duration: float | None, stages: Sequence[Stage]) -> float:
    """How many requests the load offers on average: Λ at its end."""
    total, start_rate = 0.0, rate
    for stage in segments(rate, duration, stages):
        slope = 0.0 if math.isinf(stage.duration) else (stage.rate - start_rate) / stage.duration
        total += _intensity(start_rate, slope, stage.duration)
        start_rate = stage.rate
    return total
