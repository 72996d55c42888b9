"""A cache's hit ratio in theory, under independent requests with fixed popularities
(the independent reference model): what `sweep` draws beside the measured one.

- LRU: Che's approximation. A key stays cached for the characteristic time T after its
  last read, T solving sum_i (1 - exp(-p_i T)) = C (the cache holds C keys); a read hits
  when its key was read within T: hit ratio = sum_i p_i (1 - exp(-p_i T)).
- FIFO and random replacement (the same under this model): the approximation of Martina,
  Garetto and Leonardi (2014): sum_i p_i T / (1 + p_i T) = C, hit ratio =
  sum_i p_i * p_i T / (1 + p_i T).
- LFU with fixed popularities: the C most popular keys stay, hit ratio = their share.

A run starts from an empty cache: `from_cold` gives the hit ratio expected over a run's
first `requests` reads. Until the cache is full (time T of the LRU equation, when C keys
are expected to have been read), nothing is evicted and a read hits when its key was read
before, which gives T - C hits in all; after that the steady state holds.

Plain functions of the popularities (`keys.probabilities`), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

# Policies `hit_ratio` answers for: a theory (lru, fifo, random; ttl as lru, its entries
# never expiring), or a bound (lfu: a perfect LFU's share).
POLICIES = ("lru", "fifo", "random", "lfu", "ttl")


def _lru_occupancy(x: float) -> float:
    return -math.expm1(-x)  # 1 - exp(-x), exact for small x


def _lru_slope(x: float) -> float:
    return math.exp(-x)


def _fifo_occupancy(x: float) -> float:
    return x / (1 + x)


def _fifo_slope(x: float) -> float:
    return 1 / (1 + x) ** 2


Occupancy = Callable[[float], float]
_SLOPES: dict[Occupancy, Occupancy] = {_lru_occupancy: _lru_slope, _fifo_occupancy: _fifo_slope}
# x with occupancy(x) = share, for 0 < share < 1.
_INVERSES: dict[Occupancy, Occupancy] = {
    _lru_occupancy: lambda share: -math.log1p(-share),
    _fifo_occupancy: lambda share: share / (1 - share),
}


def characteristic_time(
    probabilities: Sequence[float], capacity: int, occupancy: Occupancy = _lru_occupancy
) -> float:
    """T with sum_i occupancy(p_i T) = capacity; needs capacity below the keys with p_i > 0.
    Newton's method kept inside a bracket that bisection narrows (the sum rises with T),
    to a relative 1e-12."""
    keys = sum(1 for p in probabilities if p > 0)
    if not 0 < capacity < keys:
        raise ValueError(f"capacity must be from 1 to {keys - 1} (got {capacity})")
    slope = _SLOPES[occupancy]

    def excess(t: float) -> float:
        return sum(occupancy(p * t) for p in probabilities) - capacity

    # Every key is at least as occupied as the least popular one: once that one's share
    # reaches capacity / keys the sum reaches capacity. An upper end without a search
    # (doubling from 1 summed every key dozens of times for a steep Zipf).
    least = min(p for p in probabilities if p > 0)
    low, high = 0.0, _INVERSES[occupancy](capacity / keys) / least
    t = high
    for _ in range(200):
        value = excess(t)
        if value < 0:
            low = t
        else:
            high = t
        rises = sum(p * slope(p * t) for p in probabilities)
        step = t - value / rises if rises > 0 else -1.0
        t = step if low < step < high else (low + high) / 2
        if high - low <= 1e-12 * high or abs(value) <= 1e-12 * capacity:
            break
    return t


def lru_hit_ratio(probabilities: Sequence[float], capacity: int) -> float:
    """Che's approximation of an LRU cache's hit ratio."""
    if capacity >= len(probabilities):
        return 1.0
    t = characteristic_time(probabilities, capacity)
    return sum(p * _lru_occupancy(p * t) for p in probabilities)


def fifo_hit_ratio(probabilities: Sequence[float], capacity: int) -> float:
    """FIFO's (and random replacement's) hit ratio, by the same method."""
    if capacity >= len(probabilities):
        return 1.0
    t = characteristic_time(probabilities, capacity, _fifo_occupancy)
    return sum(p * _fifo_occupancy(p * t) for p in probabilities)


def lfu_hit_ratio(probabilities: Sequence[float], capacity: int) -> float:
    """LFU with fixed popularities: the share of the `capacity` most popular keys."""
    return min(1.0, sum(sorted(probabilities, reverse=True)[:capacity]))


def hit_ratio(policy: str, probabilities: Sequence[float], capacity: int) -> float:
    """The steady state's hit ratio of `policy` ("ttl": LRU, its entries never expiring)."""
    if policy in ("lru", "ttl"):
        return lru_hit_ratio(probabilities, capacity)
    if policy in ("fifo", "random"):
        return fifo_hit_ratio(probabilities, capacity)
    if policy == "lfu":
        return lfu_hit_ratio(probabilities, capacity)
    raise ValueError(f"no theory for eviction policy {policy!r} (known: {', '.join(POLICIES)})")


def distinct(probabilities: Sequence[float], requests: float) -> float:
    """The keys expected to be read at least once in `requests` reads."""
    return sum(_lru_occupancy(p * requests) for p in probabilities)


def from_cold(policy: str, probabilities: Sequence[float], capacity: int, requests: int) -> float:
    """The hit ratio expected over the first `requests` reads of an empty cache."""
    if requests <= 0:
        raise ValueError("requests must be above 0")
    if capacity >= len(probabilities):  # nothing is ever evicted
        return (requests - distinct(probabilities, requests)) / requests
    full = characteristic_time(probabilities, capacity)
    if requests <= full:
        return (requests - distinct(probabilities, requests)) / requests
    steady = hit_ratio(policy, probabilities, capacity)
    return ((full - capacity) + (requests - full) * steady) / requests
