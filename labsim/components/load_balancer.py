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

from ..core import forwarding
from ..core.http import EXCHANGE_HEADER, DownstreamError, Reply
from ..core.tasks import cancel_all
from ..model.auth import gateway_auth
from ..model.config import LoadBalancerConfig, RetryConfig
from ..model.rate_limit import RateLimiter, client_key
from .answers import JSONError, error_response, read_body, too_many_requests
from .balancing import Backend, make_picker
from .context import Context, Station
from .figures import GatewayUp, Labelled, LoadBalancerFigures
from .middleware import base_app

FIGURES = LoadBalancerFigures  # the kind's own figures (`kinds.py`)

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
        "Expect",  # answered here (100-continue) or refused (417): not the gateway's to see
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


def make_app(ctx: Context[LoadBalancerConfig]) -> web.Application:
    balancer = LoadBalancer(ctx)
    app = base_app(ctx, balancer)
    app.on_startup.append(balancer.start_checks)
    app.on_shutdown.append(balancer.stop_checks)
    app.router.add_route("*", "/{tail:.*}", balancer.proxy)
    return app


class LoadBalancer(Station[LoadBalancerConfig, LoadBalancerFigures]):
    """The load balancer's state: its gateways as it sees them, its budget and limiter."""

    def __init__(self, ctx: Context[LoadBalancerConfig]) -> None:
        super().__init__(ctx, LoadBalancerFigures())
        settings = ctx.settings
        graph = ctx.graph
        ids = [r.id for name in ctx.component.backends for r in graph.replicas(name)]
        weights = settings.weights or (1,) * len(ids)
        self.backends = [Backend(gid, w) for gid, w in zip(ids, weights, strict=True)]
        self._by_id = {b.id: b for b in self.backends}
        self.pick = make_picker(settings.strategy, self.backends, ctx.rng)
        self.budget = RetryBudget(settings.retry)
        self.retrying = settings.retry.attempts > 0
        limit = settings.rate_limit
        self.limiter = RateLimiter(limit.rate, limit.burst, ctx.clock.now) if limit.rate else None
        self.auth = gateway_auth(ctx.topology, token_ttl=0)  # to read who is asking
        # Proof of the client's address, sent only where a gateway reads it: to key its
        # rate limit (one header less per request in the lab as it comes).
        gateways_limit = any(
            getattr(graph.components[name].settings.rate_limit, "rate", 0) > 0
            for name in ctx.component.backends
            if hasattr(graph.components[name].settings, "rate_limit")
        )
        self.forwarder = forwarding.proof(ctx.topology.admin_token) if gateways_limit else None
        self.check_headers = _header_limits(settings)
        hash_on = settings.hash_on
        self.hash_header = hash_on.removeprefix("header:") if hash_on != "client" else None
        # The requests each gateway is answering now, so that a health check that finds
        # it unhealthy can cut them short (and the retry policy send them elsewhere)
        # instead of leaving them to wait out the per-try timeout.
        self.forwarding: dict[str, set[asyncio.Task[object]]] = {b.id: set() for b in self.backends}
        self.cut: set[asyncio.Task[object]] = set()
        self.checker: list[asyncio.Task[None]] = []
        # Until when some backend may be out (ejected), and how many health checks call
        # unhealthy: while neither, a first try takes every backend without looking at
        # each (a search per request cost 1 % of a hop with 50 backends, measured).
        self._out_until = 0.0
        self._unhealthy = 0

    def backend(self, gateway: str) -> Backend | None:
        return self._by_id.get(gateway)

    def details(self) -> dict[str, object]:
        now = self.clock.now()
        return {
            "gateways": {
                b.id: {
                    "available": b.available(now),
                    "healthy": b.healthy,
                    "ejected_for": b.ejected_for(now),
                    "ejections": b.ejections,
                    "in_flight": b.in_flight,
                    "sent": b.sent,
                    "failures": b.failures,
                }
                for b in self.backends
            }
        }

    def more_figures(self) -> list[Labelled]:
        now = self.clock.now()
        each: list[Labelled] = [({"gateway": b.id}, b) for b in self.backends]
        up = [({"gateway": b.id}, GatewayUp(int(b.available(now)))) for b in self.backends]
        return each + up

    async def proxy(self, request: web.Request) -> web.Response:
        self.check_headers(request)
        body = await read_body(request)
        rate_headers = self._rate_limit(request)
        headers = _end_to_end(request.headers)
        headers.popall("Content-Encoding", None)  # aiohttp already decoded the body we send
        forwarding.forward(headers, request.remote, self.forwarder)
        outcome = await self._route(request, headers, body)
        if isinstance(outcome, DownstreamError):
            return error_response(outcome.status, str(outcome), component=outcome.component)
        answer = _relay(outcome)
        if outcome.status < 500:  # the gateway's own 5xx answer passes on unchanged
            answer.headers.update(rate_headers)
        return answer

    def _rate_limit(self, request: web.Request) -> dict[str, str]:
        """The client's rate-limit headers; a 429 once it has used up its share."""
        if self.limiter is None:
            return {}
        verdict = self.limiter.check(client_key(request.headers, request.remote, self.auth))
        if not verdict.allowed:
            self.figures.rate_limited += 1
            raise too_many_requests(verdict.headers, self.ctx.id)
        return verdict.headers

    async def _route(
        self, request: web.Request, headers: CIMultiDict[str], body: bytes
    ) -> Reply | DownstreamError:
        """The first good answer of a gateway; else the last failure, after any retries."""
        if self.hash_header is not None:
            key = request.headers.get(self.hash_header, "")
        else:
            key = request.remote or ""
        now = self.clock.now()
        if self.retrying:
            self.budget.note_request(now)
        tried: list[Backend] = []
        outcome: Reply | DownstreamError | None = None
        while True:
            candidates = self._candidates(now, tried)
            if not candidates:
                if outcome is not None:
                    return outcome
                raise JSONError(503, "no healthy gateway", component=self.ctx.id)
            backend = self.pick(candidates, key)
            tried.append(backend)
            backend.sent += 1
            try:
                outcome = await self._forward(backend, request, headers, body)
            except DownstreamError as e:
                outcome = e
            if isinstance(outcome, Reply) and outcome.status < 500:
                backend.consecutive_failures = 0
                return outcome
            self._failed(backend)
            now = self.clock.now()
            if not self._retry(request, len(tried), outcome, now):
                return outcome

    def _candidates(self, now: float, tried: list[Backend]) -> list[Backend]:
        if not tried and not self._unhealthy and now >= self._out_until:
            return self.backends
        return [b for b in self.backends if b.available(now) and b not in tried]

    def _retry(
        self, request: web.Request, tries: int, outcome: Reply | DownstreamError, now: float
    ) -> bool:
        """Whether a failed request goes to another gateway, within the retry budget."""
        refused = isinstance(outcome, DownstreamError) and outcome.refused
        if tries > self.settings.retry.attempts or not (request.method in _IDEMPOTENT or refused):
            return False
        if not self.budget.try_spend(now):
            self.figures.retry_budget_exhausted += 1
            return False
        self.figures.retries += 1
        return True

    async def _forward(
        self, backend: Backend, request: web.Request, headers: CIMultiDict[str], body: bytes
    ) -> Reply:
        task = asyncio.current_task()
        assert task is not None
        tasks = self.forwarding[backend.id]
        tasks.add(task)
        backend.in_flight += 1
        try:
            return await self.ctx.client.request(
                backend.id,
                request.method,
                self.ctx.url(backend.id, request.path_qs),
                headers=headers,
                data=body,
                check=False,
                within=self.settings.timeout,
            )
        except asyncio.CancelledError:
            if task not in self.cut:
                raise
            self.cut.discard(task)
            task.uncancel()
            message = f"{backend.id} failed its health check while answering"
            raise DownstreamError(backend.id, message, 502) from None
        finally:
            tasks.discard(task)
            backend.in_flight -= 1

    def _failed(self, backend: Backend) -> None:
        """Count a failure; eject the gateway if it failed too often in a row."""
        backend.failures += 1
        backend.consecutive_failures += 1
        outlier = self.settings.outlier
        if not 0 < outlier.consecutive_failures <= backend.consecutive_failures:
            return
        now = self.clock.now()
        ejected = sum(not b.available(now) for b in self.backends)
        if (ejected + 1) * 100 > outlier.max_ejection_percent * len(self.backends):
            return  # ejecting one more would leave too few gateways
        backend.ejections += 1
        backend.consecutive_failures = 0
        backend.ejected_until = now + outlier.base_ejection * backend.ejections
        self._out_until = max(self._out_until, backend.ejected_until)
        self.figures.ejections += 1
        self.ctx.log.info(
            "%s: ejected %s for %gs (ejection %d)",
            self.ctx.id,
            backend.id,
            outlier.base_ejection * backend.ejections,
            backend.ejections,
        )

    async def start_checks(self, app: web.Application) -> None:
        if self.settings.health_check.interval > 0:
            self.checker.append(asyncio.create_task(self._check_health()))

    async def stop_checks(self, app: web.Application) -> None:
        await cancel_all(self.checker)

    async def _check_health(self) -> None:
        while True:
            await self.clock.sleep(self.settings.health_check.interval)
            await asyncio.gather(*(self._probe(b) for b in self.backends))

    async def _probe(self, backend: Backend) -> None:
        check = self.settings.health_check
        try:
            async with self.clock.timeout(check.timeout):
                reply = await self.ctx.client.request(
                    backend.id, "GET", self.ctx.url(backend.id, "/health"), check=False
                )
            ok = reply.status == 200
        except (DownstreamError, TimeoutError):
            ok = False
        if ok == backend.healthy:
            backend.health_streak = 0
            return
        backend.health_streak += 1
        threshold = check.healthy_threshold if ok else check.unhealthy_threshold
        if backend.health_streak < threshold:
            return
        backend.healthy, backend.health_streak = ok, 0
        self._unhealthy += -1 if ok else 1
        if ok:
            self.figures.readmissions += 1
        else:
            self._cut_short(backend)
            self.figures.health_ejections += 1
        self.ctx.log.info(
            "%s: %s is %s", self.ctx.id, backend.id, "healthy again" if ok else "unhealthy"
        )

    def _cut_short(self, backend: Backend) -> None:
        for task in self.forwarding[backend.id]:
            self.cut.add(task)
            task.cancel()
