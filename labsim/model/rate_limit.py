"""Rate limiting on the shared clock, in two forms.

A token bucket per client: each client (a token's subject, else its address) has a
bucket of `burst` tokens that refills at `rate` tokens a second. A request takes one
token; with none left it is refused with 429 and told when to come back (`Retry-After`,
`RateLimit-*` headers). The load balancer and the gateways keep one.

A count per window over every caller (the course's Lab 5): a component instance admits
at most `requests` in any `window` seconds, sliding, not in fixed buckets; the shared
middleware keeps one for any component whose scenario asks for it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cachetools import LRUCache

from .auth import Auth, TokenError, token_from_header

_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first

# Routes that report on a component rather than do its work (with `/status`, exactly):
# never rate limited, never timed.
REPORTING_PREFIXES = ("/health", "/metrics", "/admin/")
STATUS_PATH = "/status"


def reporting(path: str) -> bool:
    """Whether `path` reports on a component rather than does its work."""
    return path.startswith(REPORTING_PREFIXES) or path == STATUS_PATH


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


class SlidingWindow:
    """At most `requests` admitted in any `window` seconds, whoever asks: the log of the
    admitted ones' times, oldest first (the course's Lab 5 `request_timestamps`).

    A request is admitted while fewer than `requests` were admitted in the `window`
    seconds before it; a time leaves the log once `window` seconds have passed since it.
    The log never holds more than `requests` times, and each is added and dropped once:
    O(1) amortized per request. Refusals are counted, never logged.
    """

    def __init__(self, requests: int, window: float, now: Callable[[], float]) -> None:
        self.requests = requests
        self.window = window
        self._now = now
        self._log: deque[float] = deque(maxlen=requests)
        self.refused = 0

    def __len__(self) -> int:
        """The times in the log now (at most `requests`)."""
        return len(self._log)

    def check(self) -> Verdict:
        """Admit one request now, or refuse it with when to come back."""
        now = self._now()
        log = self._log
        while log and now - log[0] >= self.window:
            log.popleft()
        if len(log) < self.requests:
            log.append(now)
            return Verdict(True, {})
        self.refused += 1
        # The oldest time leaves the window first; rounded to the microsecond before the
        # ceiling, so 60 s that float arithmetic made 60.0000000001 say 60.
        wait = max(1, math.ceil(round(log[0] + self.window - now, 6)))
        headers = {
            "Retry-After": str(wait),
            "RateLimit-Limit": str(self.requests),
            "RateLimit-Remaining": "0",
            "RateLimit-Reset": str(wait),
        }
        return Verdict(False, headers)


def covers(paths: Sequence[str], path: str) -> bool:
    """Whether a window limited to `paths` counts a request for `path`: every work route
    when `paths` is empty; else a path given, or one under it (`/cache` covers
    `/cache/my_data`). Reporting routes never."""
    if reporting(path):
        return False
    if not paths:
        return True
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in paths)
