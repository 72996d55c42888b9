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
from dataclasses import asdict
from typing import Any

from aiohttp import web

from ..model.config import CacheConfig
from .answers import JSONError, json_body
from .cache_entries import Entries, Entry
from .context import Context, Station
from .figures import CacheFigures, CacheSize, Labelled
from .middleware import base_app

FIGURES = CacheFigures  # the kind's own figures (`kinds.py`)
MORE_FIGURES = (CacheSize,)  # read now, not counted


MAX_KEY = 256  # characters in a key

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
        name = f"{ctx.topology.seed}:{ctx.id}"
        self.entries = Entries(ctx.settings, self.figures, ctx.clock.now, name)
        self.store = self.entries.store
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

    async def get(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        entry = self.entries.lookup(key)
        if entry is not None and self.clock.now() < entry.expires_at:
            self.figures.hits += 1
            return _answer(entry.value)
        if entry is not None:  # stale, within the grace period
            self.figures.stale += 1
            return _answer(entry.value, stale=True, lease=self._take_lease(key))
        self.entries.missed(key)
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
        self.entries.put(key, entry)
        filled = self.leases.pop(key, None)
        if filled is not None:
            filled.set()
        return web.json_response({"status": "ok", "expires_in": ttl})
