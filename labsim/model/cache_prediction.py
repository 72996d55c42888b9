"""The hit ratio theory expects of a scenario's cache (`cache_theory.py`), or why none.

Theory's model is one cache, its capacity `maxsize` entries, read by independent requests
for keys of fixed popularity (the load's `keys`), each miss filled before the next read
(a closed load of one client), no entry expiring during the run, and a cold start. The
expected hit ratio is over the run's `/data` reads, from an empty cache. For `lfu` only a
bound: cachetools' LFU forgets the counts of the keys it evicts, and so keeps fewer of
the most popular keys than a perfect LFU (the top C keys' share) would. Plain functions
of the scenario, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import cache_theory
from .config import CacheConfig
from .keys import probabilities
from .load import plan
from .scenario import Scenario


@dataclass(frozen=True)
class CacheTheory:
    """The hit ratio expected over the run (from cold)."""

    hit_ratio: float | None
    reason: str | None  # why there is none, where there is none


def _none(reason: str) -> CacheTheory:
    return CacheTheory(None, reason)


def cache_settings(scenario: Scenario) -> CacheConfig | None:
    """The settings of the scenario's one cache; None when it has none, or several."""
    graph = scenario.topology.graph()
    caches = graph.of_kind("cache")
    if len(caches) != 1 or not graph.reads_cache():
        return None
    settings = graph.component_of(caches[0]).settings
    return settings if isinstance(settings, CacheConfig) else None


def predict_hit_ratio(scenario: Scenario, simulated_s: float | None = None) -> CacheTheory:
    """Theory's hit ratio for the scenario's `/data` reads; `simulated_s`, the run's time
    on its clock, tells whether entries could expire (then no theory)."""
    load = scenario.load
    if not load.keys.on:
        return _none("the load reads one key (give load.keys)")
    if load.flows:
        return _none("theory models the mix's /data reads, not a load of flows")
    cache = cache_settings(scenario)
    if cache is None:
        return _none("theory models one cache replica read by /data")
    reads = dict(plan(load.requests, load.mix)).get("data", 0)
    if load.open or load.concurrency != 1 or not reads:
        return _none(
            "theory fills each miss before the next read: a closed load of 1 client reading /data"
        )
    if simulated_s is not None and simulated_s >= cache.ttl:
        return _none(f"entries may expire: the run lasted {simulated_s:g} s, ttl {cache.ttl:g} s")
    policy = cache.eviction or "lru"  # the default: least recently used goes
    p = probabilities(load.keys)
    capacity = min(cache.maxsize, len(p))
    if policy == "lfu":
        bound = cache_theory.lfu_hit_ratio(p, capacity)
        return _none(
            "cachetools' LFU forgets a key's count when it evicts it, which no formula "
            f"here models; a perfect LFU's hit ratio, the top {capacity} keys' share, "
            f"{bound:.3f}, bounds it"
        )
    expected = cache_theory.from_cold(policy, p, capacity, reads)
    return CacheTheory(round(expected, 4), None)
