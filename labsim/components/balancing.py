"""How the load balancer picks a gateway: the strategies, over plain per-gateway state.

Pure logic, no I/O: a strategy sees the gateways that may take traffic now and returns
one. Randomness comes from the load balancer's seeded RNG, so picks repeat run to run.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..model.config import STRATEGIES as STRATEGIES
from .figures import counter

_RING_POINTS = 160  # virtual nodes per gateway on the hash ring (as ketama uses)


@dataclass
class Backend:
    """One gateway as the load balancer sees it."""

    id: str
    weight: int = 1
    in_flight: int = 0
    current_weight: int = 0  # smooth weighted round robin's running score
    healthy: bool = True  # the active health check's verdict
    ejected_until: float = 0.0  # passive outlier ejection, on the clock
    ejections: int = 0
    consecutive_failures: int = 0
    health_streak: int = 0  # consecutive check results agreeing with a pending change
    # The load balancer's figures for this gateway, in `/metrics` by a `gateway` label.
    sent: int = counter("Requests sent to the gateway, retries included.", name="requests")
    failures: int = counter("Requests to the gateway that failed or answered 5xx.")

    def available(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until

    def ejected_for(self, now: float) -> float:
        """Seconds until its passive ejection ends (0 when not ejected)."""
        return round(max(0.0, self.ejected_until - now), 6)


Picker = Callable[[Sequence[Backend], str], Backend]


def make_picker(strategy: str, backends: Sequence[Backend], rng: random.Random) -> Picker:
    """A function (available backends, hash key) -> the backend to use."""
    if strategy == "round_robin":
        turn = [0]
        order = {b.id: i for i, b in enumerate(backends)}

        def round_robin(candidates: Sequence[Backend], _key: str) -> Backend:
            # The next backend at or after the turn, skipping unavailable ones.
            n = len(backends)
            start = turn[0]
            if len(candidates) == n:  # all available: the turn's own, without a search
                best = backends[start]
            else:
                best = min(candidates, key=lambda b: (order[b.id] - start) % n)
            turn[0] = (order[best.id] + 1) % n
            return best

        return round_robin
    if strategy == "weighted":
        return _smooth_weighted
    if strategy == "random":
        return lambda candidates, _key: candidates[rng.randrange(len(candidates))]
    if strategy == "least_connections":
        return lambda candidates, _key: min(candidates, key=lambda b: b.in_flight)
    if strategy == "power_of_two":

        def power_of_two(candidates: Sequence[Backend], _key: str) -> Backend:
            if len(candidates) == 1:
                return candidates[0]
            a, b = rng.sample(range(len(candidates)), 2)
            first, second = candidates[a], candidates[b]
            return first if first.in_flight <= second.in_flight else second

        return power_of_two
    if strategy == "consistent_hash":
        return _ring([b.id for b in backends])
    raise ValueError(f"unknown strategy {strategy!r}")


def _smooth_weighted(candidates: Sequence[Backend], _key: str) -> Backend:
    # nginx's smooth weighted round robin: weights 5,1,1 give a a b a c a a, not a a a a a b c.
    total = 0
    best = None
    for b in candidates:
        b.current_weight += b.weight
        total += b.weight
        if best is None or b.current_weight > best.current_weight:
            best = b
    assert best is not None
    best.current_weight -= total
    return best


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _ring(ids: Sequence[str]) -> Picker:
    ring = sorted((_point(f"{gid}#{i}"), gid) for gid in ids for i in range(_RING_POINTS))
    points = [p for p, _ in ring]

    def consistent_hash(candidates: Sequence[Backend], key: str) -> Backend:
        # Walk clockwise from the key's point to the first available backend, so a key
        # moves only when its own backend goes away.
        by_id = {b.id: b for b in candidates}
        start = bisect.bisect(points, _point(key))
        for i in range(len(ring)):
            backend = by_id.get(ring[(start + i) % len(ring)][1])
            if backend is not None:
                return backend
        return candidates[0]

    return consistent_hash
