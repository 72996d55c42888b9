"""The cache: `GET /cache/<key>` and `POST /cache/<key>`, each entry with its own TTL;
`DELETE /cache/<key>` drops one, `POST /cache/flush` drops all, and `GET /cache` (or
`GET /cache/stats`) tells its size and figures. `stats` and `flush` are not keys.

A bounded `cachetools.TLRUCache` whose timer is the shared clock, so entries expire in
simulated time exactly as they would in real time. `eviction` picks another cachetools
cache for which entry goes when `maxsize` entries (or `max_bytes`) are reached: `lru`,
`lfu`, `fifo`, `random` (drawn from the component's seeded generator) or `ttl` (every entry
lives the cache's `ttl` from its write, then the least recently used goes); an entry past
its own TTL is then dropped when next read. Evictions are counted, and so are the misses
on a key evicted before (`evicted_misses`: the database reads evictions cost). Two
patterns can be switched on:

- coalescing: the first caller to miss a key gets a lease (`"lease": true`) and fills
  it; callers missing the same key meanwhile wait for that fill instead of each going to
  the database (`"coalesced": true`). A lease not filled in `lease_timeout` passes on.
- stale-while-revalidate: for `stale_while_revalidate` seconds after expiry an entry is
  still served (`"stale": true`); the first such caller also gets the lease to refresh it.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web
from cachetools import Cache as Store
from cachetools import FIFOCache, LFUCache, LRUCache, RRCache, TLRUCache, TTLCache

from ..model.config import CacheConfig
from .answers import JSONError, json_body
from .context import Context, Station
from .figures import CacheFigures, CacheSize, Labelled
from .middleware import base_app

FIGURES = CacheFigures  # the kind's own figures (`kinds.py`)
MORE_FIGURES = (CacheSize,)  # read now, not counted


@dataclass(frozen=True)
class Entry:
    # The value as compact JSON: what a client sent costs its size in bytes, never the
    # tens of times more that parsed Python objects can cost (a list of empty lists).
    value: bytes
    expires_at: float  # fresh until then; stale (if allowed) for a while after

    def size(self) -> int:
        return len(self.value) + _ENTRY_OVERHEAD


MAX_KEY = 256  # characters in a key

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


def _store(ctx: Context[CacheConfig], figures: CacheFigures) -> Store:
    """The entries, bounded in bytes by cachetools itself (`getsizeof`), in entries by
    `put`; which entry goes when full is the `eviction` policy's."""
    settings = ctx.settings
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
            rng = random.Random(f"{ctx.topology.seed}:{ctx.id}:eviction")
            return RRCache(choice=rng.choice, **bounds)
        case "ttl":
            return _CountingTTLCache(
                figures, ttl=settings.ttl + grace, timer=ctx.clock.now, **bounds
            )
    return _CountingCache(
        figures,
        ttu=lambda _key, entry, _now: entry.expires_at + grace,
        timer=ctx.clock.now,
        **bounds,
    )


RESERVED = frozenset({"stats", "flush"})  # names of the cache's own routes, not keys


def make_app(ctx: Context[CacheConfig]) -> web.Application:
    cache = Cache(ctx)
    app = base_app(ctx, cache)
    # The fixed routes first: aiohttp tries routes in the order they were added.
    app.router.add_get("/cache", cache.stats)
    app.router.add_get("/cache/stats", cache.stats)
    app.router.add_post("/cache/flush", cache.flush)
    app.router.add_get("/cache/{key}", cache.get)
    app.router.add_post("/cache/{key}", cache.put)
    app.router.add_delete("/cache/{key}", cache.delete)
    return app


def _answer(value: bytes | None, **flags: bool) -> web.Response:
    shown = "".join(f', "{k}": true' for k, v in flags.items() if v)
    body = b'{"value": ' + (b"null" if value is None else value) + shown.encode() + b"}"
    return web.Response(body=body, content_type="application/json")


class Cache(Station[CacheConfig, CacheFigures]):
    """The cache's entries, its leases, its figures."""

    def __init__(self, ctx: Context[CacheConfig]) -> None:
        super().__init__(ctx, CacheFigures())
        self.store = _store(ctx, self.figures)
        self.evicted: LRUCache[str, None] = LRUCache(MAX_EVICTED_KEYS)
        self.leases: dict[str, asyncio.Event] = {}  # key -> set when the holder fills it

    def size(self) -> CacheSize:
        return CacheSize(size=len(self.store), bytes=int(self.store.currsize))

    def details(self) -> dict[str, Any]:
        return asdict(self.size())

    def more_figures(self) -> list[Labelled]:
        return [({}, self.size())]

    def _take_lease(self, key: str) -> bool:
        if key in self.leases:
            return False
        self.leases[key] = asyncio.Event()
        return True

    def _lookup(self, key: str) -> Entry | None:
        """The entry of `key`, unless past its TTL and grace: then dropped (the default
        store and `ttl` drop those themselves), a miss."""
        entry: Entry | None = self.store.get(key)
        lazy = self.settings.eviction not in ("", "ttl")
        if (
            lazy
            and entry is not None
            and self.clock.now() >= (entry.expires_at + self.settings.stale_while_revalidate)
        ):
            del self.store[key]
            self.figures.expirations += 1
            return None
        return entry

    def _evict(self) -> None:
        key, entry = self.store.popitem()
        if self.clock.now() >= entry.expires_at + self.settings.stale_while_revalidate:
            self.figures.expirations += 1  # it would have missed anyway: no eviction's cost
            return
        self.figures.evictions += 1
        self.evicted[key] = None

    async def get(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        entry = self._lookup(key)
        if entry is not None and self.clock.now() < entry.expires_at:
            self.figures.hits += 1
            return _answer(entry.value)
        if entry is not None:  # stale, within the grace period
            self.figures.stale += 1
            return _answer(entry.value, stale=True, lease=self._take_lease(key))
        self.figures.misses += 1
        if key in self.evicted:  # it was cached, and would be still but for an eviction
            del self.evicted[key]
            self.figures.evicted_misses += 1
        if not self.settings.coalesce:
            return _answer(None)
        return await self._wait_for_fill(key)

    async def _wait_for_fill(self, key: str) -> web.Response:
        """A miss, coalesced: the value another caller fills meanwhile, or the lease."""
        while not self._take_lease(key):
            filled = self.leases[key]
            try:
                async with self.clock.timeout(self.settings.lease_timeout):
                    await filled.wait()
            except TimeoutError:
                # The holder never filled it: the lease passes on, once, to one waiter.
                if self.leases.get(key) is filled:
                    del self.leases[key]
                continue
            entry = self.store.get(key)
            if entry is not None:
                self.figures.coalesced += 1
                return _answer(entry.value, coalesced=True)
        return _answer(None, lease=True)

    async def stats(self, request: web.Request) -> web.Response:
        figures, settings = self.figures, self.settings
        return web.json_response(
            {
                "entries": len(self.store),
                "bytes": int(self.store.currsize),
                "hits": figures.hits,
                "misses": figures.misses,
                "evictions": figures.evictions,
                "ttl": settings.ttl,
                "max_entries": settings.maxsize,
                "eviction": settings.eviction or "default",
                "max_bytes": settings.max_bytes,
            }
        )

    async def delete(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        if self.store.pop(key, None) is None:
            raise JSONError(404, f"no cache entry {key[:MAX_KEY]!r}")
        self.figures.deletions += 1
        return web.Response(status=204)

    async def flush(self, request: web.Request) -> web.Response:
        # As open as any other write to the cache: a caller that may write may also drop
        # entries one by one. Who may call the cache at all is the exposure rule's job.
        flushed = len(self.store)
        self.store.clear()
        self.figures.deletions += flushed
        return web.json_response({"status": "ok", "flushed": flushed})

    async def put(self, request: web.Request) -> web.Response:
        settings = self.settings
        body = await json_body(request)
        if not isinstance(body, dict) or "value" not in body:
            raise JSONError(400, 'body must be a JSON object with a "value" key')
        ttl = body.get("ttl", settings.ttl)
        number = isinstance(ttl, int | float) and not isinstance(ttl, bool)
        if not number or not 0 < ttl <= settings.max_ttl:  # also refuses NaN
            raise JSONError(400, f"ttl must be seconds, above 0 and at most {settings.max_ttl:g}")
        key = request.match_info["key"]
        if len(key) > MAX_KEY:
            raise JSONError(400, f"cache key longer than {MAX_KEY} characters")
        if key in RESERVED:
            raise JSONError(400, f"{key!r} is not a key: /cache/{key} is the cache's own route")
        value = json.dumps(body["value"], separators=(",", ":")).encode()
        entry = Entry(value, self.clock.now() + ttl)
        if entry.size() > settings.max_bytes:
            raise JSONError(413, f"value too large for the cache ({len(value):,} bytes)")
        # By the policy, counted here (cachetools would drop them unseen for bytes). A
        # replaced entry's bytes count as freed, so a larger value makes room the same way;
        # it is read without touching it (a policy's `get` counts a use, as LFU's does).
        replaced = key in self.store
        freed = Store.__getitem__(self.store, key).size() if replaced else 0
        while not replaced and len(self.store) >= settings.maxsize:
            self._evict()
        while self.store and self.store.currsize - freed + entry.size() > self.store.maxsize:
            self._evict()
            if key not in self.store:  # the victim was the entry being replaced
                freed = 0
        self.store[key] = entry
        self.evicted.pop(key, None)
        self.figures.sets += 1
        filled = self.leases.pop(key, None)
        if filled is not None:
            filled.set()
        return web.json_response({"status": "ok", "expires_in": ttl})
