"""The load balancer: a reverse proxy in front of the gateways.

Any method, path, query string, headers (less hop-by-hop ones) and body go to the gateway
the strategy picks (`balancing.py`); its status, headers and body come back unchanged. A
gateway that cannot be reached gives a JSON 502 naming it (504 when it does not answer in
time). With the patterns switched on it also checks the gateways' health, ejects those
that keep failing, retries failed GETs on another gateway within a retry budget, and rate
limits each client.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Mapping

from aiohttp import web
from multidict import CIMultiDict

from ..auth import Auth
from ..balancing import Backend, make_picker
from ..config import LoadBalancerConfig, RetryConfig
from ..http import EXCHANGE_HEADER, DownstreamError, Reply
from ..rate_limit import RateLimiter, client_key
from .answers import JSONError, error_response, read_body, too_many_requests
from .context import Context
from .middleware import base_app

# RFC 9110 §7.6.1 hop-by-hop headers, plus those the proxy recomputes itself.
_HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
        EXCHANGE_HEADER,
    )
)
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})


def _end_to_end(headers: Mapping[str, str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP)


def _relay(reply: Reply) -> web.Response:
    """The gateway's answer, as the load balancer's own."""
    return web.Response(status=reply.status, headers=_end_to_end(reply.headers), body=reply.body)


class RetryBudget:
    """Retries may be at most `budget_percent` of recent requests (or `min_retries`)."""

    def __init__(self, config: RetryConfig) -> None:
        self.config = config
        self._seconds: deque[list[float]] = deque()  # [second, requests, retries]

    def _bucket(self, now: float) -> list[float]:
        second = math.floor(now)
        while self._seconds and self._seconds[0][0] <= second - self.config.budget_window:
            self._seconds.popleft()
        if not self._seconds or self._seconds[-1][0] != second:
            self._seconds.append([second, 0, 0])
        return self._seconds[-1]

    def note_request(self, now: float) -> None:
        self._bucket(now)[1] += 1

    def try_spend(self, now: float) -> bool:
        bucket = self._bucket(now)
        requests = sum(b[1] for b in self._seconds)
        retries = sum(b[2] for b in self._seconds)
        allowed = max(self.config.min_retries, self.config.budget_percent / 100 * requests)
        if retries + 1 > allowed:
            return False
        bucket[2] += 1
        return True


def _header_limits(settings: LoadBalancerConfig) -> Callable[[web.Request], None]:
    most, most_bytes = settings.max_headers, settings.max_header_bytes

    def check_headers(request: web.Request) -> None:
        """431 for more headers than the gateways may be sent, counting what we add."""
        raw = request.raw_headers
        if len(raw) > most:
            raise JSONError(431, f"too many request headers ({len(raw)}; at most {most})")
        size = sum(len(name) + len(value) for name, value in raw)
        if size > most_bytes:
            raise JSONError(
                431, f"request headers too large ({size:,} bytes; at most {most_bytes:,})"
            )

    return check_headers


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    settings: LoadBalancerConfig = ctx.settings
    clock, counters = ctx.clock, ctx.counters
    ids = ctx.topology.gateway_ids()
    weights = settings.weights or (1,) * len(ids)
    backends = [Backend(gid, w) for gid, w in zip(ids, weights, strict=True)]
    pick = make_picker(settings.strategy, backends, ctx.rng)
    budget = RetryBudget(settings.retry)
    limit = settings.rate_limit
    limiter = RateLimiter(limit.rate, limit.burst, clock.now) if limit.rate else None
    auth = Auth(ctx.topology.secret, ctx.topology.users)
    retrying = settings.retry.attempts > 0
    check_headers = _header_limits(settings)
    sent_to = {b.id: f"to:{b.id}" for b in backends}
    hash_header = settings.hash_on.removeprefix("header:") if settings.hash_on != "client" else None

    def failed(backend: Backend) -> None:
        counters[f"failures:{backend.id}"] += 1
        backend.consecutive_failures += 1
        outlier = settings.outlier
        if not 0 < outlier.consecutive_failures <= backend.consecutive_failures:
            return
        now = clock.now()
        ejected = sum(not b.available(now) for b in backends)
        if (ejected + 1) * 100 > outlier.max_ejection_percent * len(backends):
            return  # ejecting one more would leave too few gateways
        backend.ejections += 1
        backend.consecutive_failures = 0
        backend.ejected_until = now + outlier.base_ejection * backend.ejections
        counters["ejections"] += 1
        ctx.log.info(
            "%s: ejected %s for %gs (ejection %d)",
            ctx.id,
            backend.id,
            outlier.base_ejection * backend.ejections,
            backend.ejections,
        )

    # The requests each gateway is answering now, so that a health check that finds it
    # unhealthy can cut them short (and the retry policy send them elsewhere) instead of
    # leaving them to wait out the per-try timeout.
    forwarding: dict[str, set[asyncio.Task[object]]] = {b.id: set() for b in backends}
    cut: set[asyncio.Task[object]] = set()

    async def forward(
        backend: Backend, request: web.Request, headers: CIMultiDict[str], body: bytes
    ) -> Reply:
        task = asyncio.current_task()
        assert task is not None
        tasks = forwarding[backend.id]
        tasks.add(task)
        backend.in_flight += 1
        try:
            return await ctx.client.request(
                backend.id,
                request.method,
                ctx.url(backend.id, request.path_qs),
                headers=headers,
                data=body,
                check=False,
                within=settings.timeout,
            )
        except asyncio.CancelledError:
            if task not in cut:
                raise
            cut.discard(task)
            task.uncancel()
            message = f"{backend.id} failed its health check while answering"
            raise DownstreamError(backend.id, message, 502) from None
        finally:
            tasks.discard(task)
            backend.in_flight -= 1

    def cut_short(backend: Backend) -> None:
        for task in forwarding[backend.id]:
            cut.add(task)
            task.cancel()

    async def proxy(request: web.Request) -> web.Response:
        check_headers(request)
        body = await read_body(request)
        rate_headers = {}
        if limiter is not None:
            verdict = limiter.check(client_key(request.headers, request.remote, auth))
            rate_headers = verdict.headers
            if not verdict.allowed:
                counters["rate_limited"] += 1
                raise too_many_requests(verdict.headers, ctx.id)
        headers = _end_to_end(request.headers)
        headers.popall("Content-Encoding", None)  # aiohttp already decoded the body we send
        if request.remote:
            headers.add("X-Forwarded-For", request.remote)
        key = request.headers.get(hash_header, "") if hash_header else (request.remote or "")
        now = clock.now()
        if retrying:
            budget.note_request(now)
        tried: list[Backend] = []
        reply: Reply | None = None
        error: DownstreamError | None = None
        while True:
            candidates = [b for b in backends if b.available(now) and b not in tried]
            if not candidates:
                if tried:
                    break
                raise JSONError(503, "no healthy gateway", component=ctx.id)
            backend = pick(candidates, key)
            tried.append(backend)
            counters[sent_to[backend.id]] += 1
            try:
                reply, error = await forward(backend, request, headers, body), None
            except DownstreamError as e:
                reply, error = None, e
            if reply is not None and reply.status < 500:
                backend.consecutive_failures = 0
                answer = _relay(reply)
                answer.headers.update(rate_headers)
                return answer
            failed(backend)
            now = clock.now()
            retriable = request.method in _IDEMPOTENT or (error is not None and error.refused)
            if len(tried) > settings.retry.attempts or not retriable:
                break
            if not budget.try_spend(now):
                counters["retry_budget_exhausted"] += 1
                break
            counters["retries"] += 1
        if reply is not None:  # the gateway's own 5xx answer passes on unchanged
            return _relay(reply)
        assert error is not None
        return error_response(error.status, str(error), component=error.component)

    async def check_health() -> None:
        check = settings.health_check
        while True:
            await clock.sleep(check.interval)
            await asyncio.gather(*(probe(b) for b in backends))

    async def probe(backend: Backend) -> None:
        check = settings.health_check
        try:
            async with clock.timeout(check.timeout):
                reply = await ctx.client.request(
                    backend.id, "GET", ctx.url(backend.id, "/health"), check=False
                )
            ok = reply.status == 200
        except (DownstreamError, TimeoutError):
            ok = False
        if ok == backend.healthy:
            backend.health_streak = 0
            return
        backend.health_streak += 1
        threshold = check.healthy_threshold if ok else check.unhealthy_threshold
        if backend.health_streak >= threshold:
            backend.healthy, backend.health_streak = ok, 0
            if not ok:
                cut_short(backend)
            counters["readmissions" if ok else "health_ejections"] += 1
            ctx.log.info("%s: %s is %s", ctx.id, backend.id, "healthy again" if ok else "unhealthy")

    def details() -> dict[str, object]:
        now = clock.now()
        return {
            "gateways": {
                b.id: {
                    "available": b.available(now),
                    "healthy": b.healthy,
                    "ejected_for": round(max(0.0, b.ejected_until - now), 6),
                    "ejections": b.ejections,
                    "in_flight": b.in_flight,
                }
                for b in backends
            }
        }

    ctx.details = details
    checker: list[asyncio.Task[None]] = []

    async def start_checks(app: web.Application) -> None:
        if settings.health_check.interval > 0:
            checker.append(asyncio.create_task(check_health()))

    async def stop_checks(app: web.Application) -> None:
        for task in checker:
            task.cancel()
        await asyncio.gather(*checker, return_exceptions=True)

    app.on_startup.append(start_checks)
    app.on_shutdown.append(stop_checks)
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app
