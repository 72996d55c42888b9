"""Token-bucket rate limiting per client, on the shared clock.

Each client (a token's subject, else its address) has a bucket of `burst` tokens that
refills at `rate` tokens a second. A request takes one token; with none left it is
refused with 429 and told when to come back (`Retry-After`, `RateLimit-*` headers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cachetools import LRUCache

from .auth import Auth, TokenError, token_from_header

_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """Buckets for many clients; `check(client)` takes a token or refuses."""

    def __init__(self, rate: float, burst: int, now: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._now = now
        self._buckets: LRUCache[str, _Bucket] = LRUCache(maxsize=_CLIENTS)

    def check(self, client: str) -> Verdict:
        now = self._now()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        # Seconds until one token is back (0 when one is there already) and until full.
        next_token = 0 if bucket.tokens >= 1 else math.ceil((1 - bucket.tokens) / self.rate)
        full = math.ceil((self.burst - bucket.tokens) / self.rate)
        headers = {
            "RateLimit-Limit": str(self.burst),
            "RateLimit-Remaining": str(int(bucket.tokens)),
            "RateLimit-Reset": str(full),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, next_token))
        return Verdict(allowed, headers)


def client_key(headers: Mapping[str, str], remote: str | None, auth: Auth) -> str:
    """Who is asking: the subject of a valid token, else the client's address."""
    token = token_from_header(headers.get("Authorization"))
    if token:
        try:
            claims = auth.verify(token)
        except TokenError:
            claims = {}
        user = claims.get("sub") or claims.get("username")  # the guide's tokens need no `sub`
        if isinstance(user, str):
            return "user:" + user
    return "address:" + (remote or "unknown")
