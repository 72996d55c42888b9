"""A cache's entries: where they are kept, which one goes when the cache is full, and the
figures of it (expirations, evictions and the misses they cost). Plain Python on a clock
the caller gives: the cache component serves them over HTTP, the model engine
(`run/model_engine.py`) keeps them the same way, operation for operation."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import Cache as Store
from cachetools import FIFOCache, LFUCache, LRUCache, RRCache, TLRUCache, TTLCache

from ..model.config import CacheConfig
from .figures import CacheFigures


@dataclass(frozen=True)
class Entry:
    # The value as compact JSON: what a client sent costs its size in bytes, never the
    # tens of times more that parsed Python objects can cost (a list of empty lists).
    value: bytes
    expires_at: float  # fresh until then; stale (if allowed) for a while after

    def size(self) -> int:
        return len(self.value) + _ENTRY_OVERHEAD


# Bytes an entry costs besides its value (the entry, its key, the cache's bookkeeping).
_ENTRY_OVERHEAD = 256


class _CountsExpired:
    """Mixed into a cache that drops entries past their time (TLRU, TTL): counts them."""

    def __init__(self, figures: CacheFigures, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._figures = figures

    def expire(self, time: float | None = None) -> list[tuple[str, Entry]]:
        expired: list[tuple[str, Entry]] = super().expire(time)  # type: ignore[misc]
        if expired:
            self._figures.expirations += len(expired)
        return expired


class _CountingCache(_CountsExpired, TLRUCache):
    """The default store: each entry with its own TTL."""


class _CountingTTLCache(_CountsExpired, TTLCache):
    """Eviction "ttl": the cache's own TTL for every entry, least recently used first."""


# Keys remembered as evicted, to count the misses evictions cost: past this, the oldest
# are forgotten (a client naming endless keys cannot grow it).
MAX_EVICTED_KEYS = 100_000


def _store(
    settings: CacheConfig, figures: CacheFigures, now: Callable[[], float], name: str
) -> Store:
    """The entries, bounded in bytes by cachetools itself (`getsizeof`), in entries by
    `put`; which entry goes when full is the `eviction` policy's."""
    grace = settings.stale_while_revalidate
    bounds: dict[str, Any] = {"maxsize": settings.max_bytes, "getsizeof": Entry.size}
    match settings.eviction:
        case "lru":
            return LRUCache(**bounds)
        case "lfu":
            return LFUCache(**bounds)
        case "fifo":
            return FIFOCache(**bounds)
        case "random":
            # Its own generator: the policy's draws leave the latencies' as they were.
            rng = random.Random(f"{name}:eviction")
            return RRCache(choice=rng.choice, **bounds)
        case "ttl":
            return _CountingTTLCache(figures, ttl=settings.ttl + grace, timer=now, **bounds)
    return _CountingCache(
        figures,
        ttu=lambda _key, entry, _now: entry.expires_at + grace,
        timer=now,
        **bounds,
    )


class Entries:
    """The entries of one cache replica, `name` (its seed and id: random eviction's own
    generator), on the clock `now`."""

    def __init__(
        self, settings: CacheConfig, figures: CacheFigures, now: Callable[[], float], name: str
    ) -> None:
        self.settings, self.figures, self.now = settings, figures, now
        self.store = _store(settings, figures, now, name)
        self.evicted: LRUCache[str, None] = LRUCache(MAX_EVICTED_KEYS)

    def lookup(self, key: str) -> Entry | None:
        """The entry of `key`, unless past its TTL and grace: then dropped (the default
        store and `ttl` drop those themselves), a miss."""
        entry: Entry | None = self.store.get(key)
        lazy = self.settings.eviction not in ("", "ttl")
        if (
            lazy
            and entry is not None
            and self.now() >= (entry.expires_at + self.settings.stale_while_revalidate)
        ):
            del self.store[key]
            self.figures.expirations += 1
            return None
        return entry

    def missed(self, key: str) -> None:
        """A miss on `key`: counted, and as an eviction's cost if one dropped it."""
        self.figures.misses += 1
        if key in self.evicted:  # it was cached, and would be still but for an eviction
            del self.evicted[key]
            self.figures.evicted_misses += 1

    def put(self, key: str, entry: Entry) -> None:
        """Keep `entry` under `key`, evicting by the policy first to make room: counted
        here (cachetools would drop them unseen for bytes). A replaced entry's bytes count
        as freed, so a larger value makes room the same way; it is read without touching
        it (a policy's `get` counts a use, as LFU's does)."""
        replaced = key in self.store
        freed = Store.__getitem__(self.store, key).size() if replaced else 0
        while not replaced and len(self.store) >= self.settings.maxsize:
            self._evict()
        while self.store and self.store.currsize - freed + entry.size() > self.store.maxsize:
            self._evict()
            if key not in self.store:  # the victim was the entry being replaced
                freed = 0
        self.store[key] = entry
        self.evicted.pop(key, None)
        self.figures.sets += 1

    def _evict(self) -> None:
        key, entry = self.store.popitem()
        if self.now() >= entry.expires_at + self.settings.stale_while_revalidate:
            self.figures.expirations += 1  # it would have missed anyway: no eviction's cost
            return
        self.figures.evictions += 1
        self.evicted[key] = None
