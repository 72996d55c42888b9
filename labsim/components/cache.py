"""The cache: `GET /cache/<key>` and `POST /cache/<key>`, each entry with its own TTL.

A bounded `cachetools.TLRUCache` whose timer is the shared clock, so entries expire in
simulated time exactly as they would in real time. Two patterns can be switched on:

- coalescing: the first caller to miss a key gets a lease (`"lease": true`) and fills
  it; callers missing the same key meanwhile wait for that fill instead of each going to
  the database (`"coalesced": true`). A lease not filled in `lease_timeout` passes on.
- stale-while-revalidate: for `stale_while_revalidate` seconds after expiry an entry is
  still served (`"stale": true`); the first such caller also gets the lease to refresh it.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from cachetools import TLRUCache

from ..config import CacheConfig
from .answers import JSONError, json_body
from .context import Context
from .middleware import base_app


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


class _CountingCache(TLRUCache):
    """A TLRUCache that counts the entries it drops because they expired."""

    def __init__(self, counters: Counter[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._counters = counters

    def expire(self, time: float | None = None) -> list[tuple[str, Entry]]:
        expired = super().expire(time)
        if expired:
            self._counters["expirations"] += len(expired)
        return expired


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    settings: CacheConfig = ctx.settings
    clock, counters = ctx.clock, ctx.counters
    grace = settings.stale_while_revalidate
    # Bounded in bytes by cachetools itself (`getsizeof`), and in entries below.
    store = _CountingCache(
        counters,
        maxsize=settings.max_bytes,
        getsizeof=Entry.size,
        ttu=lambda _key, entry, _now: entry.expires_at + grace,
        timer=clock.now,
    )
    ctx.details = lambda: {"size": len(store), "bytes": store.currsize}
    leases: dict[str, asyncio.Event] = {}  # key -> set when the lease holder fills it

    def answer(value: bytes | None, **flags: bool) -> web.Response:
        shown = "".join(f', "{k}": true' for k, v in flags.items() if v)
        body = b'{"value": ' + (b"null" if value is None else value) + shown.encode() + b"}"
        return web.Response(body=body, content_type="application/json")

    def take_lease(key: str) -> bool:
        if key in leases:
            return False
        leases[key] = asyncio.Event()
        return True

    async def get(request: web.Request) -> web.Response:
        key = request.match_info["key"]
        entry = store.get(key)
        if entry is not None and clock.now() < entry.expires_at:
            counters["hits"] += 1
            return answer(entry.value)
        if entry is not None:  # stale, within the grace period
            counters["stale"] += 1
            return answer(entry.value, stale=True, lease=take_lease(key))
        counters["misses"] += 1
        if not settings.coalesce:
            return answer(None)
        while not take_lease(key):
            filled = leases[key]
            try:
                async with clock.timeout(settings.lease_timeout):
                    await filled.wait()
            except TimeoutError:
                # The holder never filled it: the lease passes on, once, to one waiter.
                if leases.get(key) is filled:
                    del leases[key]
                continue
            entry = store.get(key)
            if entry is not None:
                counters["coalesced"] += 1
                return answer(entry.value, coalesced=True)
        return answer(None, lease=True)

    async def put(request: web.Request) -> web.Response:
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
        value = json.dumps(body["value"], separators=(",", ":")).encode()
        entry = Entry(value, clock.now() + ttl)
        if entry.size() > settings.max_bytes:
            raise JSONError(413, f"value too large for the cache ({len(value):,} bytes)")
        if key not in store:
            while len(store) >= settings.maxsize:
                store.popitem()  # the least recently used goes, as when bytes run out
        store[key] = entry
        counters["sets"] += 1
        filled = leases.pop(key, None)
        if filled is not None:
            filled.set()
        return web.json_response({"status": "ok", "expires_in": ttl})

    app.router.add_get("/cache/{key}", get)
    app.router.add_post("/cache/{key}", put)
    return app
