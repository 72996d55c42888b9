"""Every HTTP request labsim makes, to a component or as the bench client, goes through here.

`HttpClient` wraps one keep-alive `aiohttp.ClientSession` per caller, so each hop has its
own connection pool and one hop can never starve another. It reads each reply whole,
carries the request id along, tells the clock about the exchange (the virtual clock waits
for replies in transit), and turns every way a call can fail into `DownstreamError`,
which names the component that failed.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from .clock import Clock

REQUEST_ID_HEADER = "X-Request-Id"
EXCHANGE_HEADER = "X-Labsim-Exchange"

# The request id of the request being served, set by the middleware of each component.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# Connections from one caller to one component. Each hop has its own pool, so the load
# balancer's requests never wait behind the gateways' (one shared pool let a request wait
# 6 s in a prototype). Past this many, requests queue for that hop, first come first
# served; 64 gave a tighter tail than 512 at concurrency 100 (benchmarks/throughput.py).
POOL_SIZE = 64
# Seconds an idle pooled connection is kept: half a labsim server's default head timeout
# (10 s), past which the server closes an idle connection. Inside a cluster, half its own.
KEEPALIVE = 5.0
CONNECT_TIMEOUT = 10.0
MAX_REPLY = 16 * 1024 * 1024  # bytes of one reply body; more is a failed call


class DownstreamError(Exception):
    """A call to another component failed; `component` names it."""

    def __init__(
        self,
        component: str,
        message: str,
        status: int = 502,
        headers: dict[str, str] | None = None,
        *,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.component = component
        self.status = status
        self.headers = headers or {}
        self.refused = refused  # no connection was made: the request never left


@dataclass(frozen=True)
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    component: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            message = f"{self.component} sent a reply that is not JSON"
            raise DownstreamError(self.component, message) from None

    def object(self) -> dict[str, Any]:
        """The reply's JSON object; a DownstreamError naming the component if it is none."""
        answer = self.json()
        if not isinstance(answer, dict):
            message = f"{self.component} sent a reply that is not a JSON object"
            raise DownstreamError(self.component, message)
        return answer


def _refusal(reply: Reply) -> DownstreamError:
    try:
        detail = json.loads(reply.body).get("error")
    except (ValueError, AttributeError):
        detail = None
    message = f"{reply.component} answered {reply.status}" + (f": {detail}" if detail else "")
    if reply.status == 503:
        retry = reply.headers.get("Retry-After")
        return DownstreamError(
            reply.component, message, 503, {"Retry-After": retry} if retry else {}
        )
    return DownstreamError(reply.component, message)


class _TooLarge(Exception):
    pass


async def _read(resp: aiohttp.ClientResponse) -> bytes:
    """The whole reply body, at most MAX_REPLY bytes: a server may be anything."""
    length = resp.content_length
    if length is not None and length <= MAX_REPLY:
        return await resp.read()  # labsim's own components always say how long
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_REPLY:
            raise _TooLarge
    return bytes(body)


class HttpClient:
    """Requests from one caller, on its own connection pool."""

    def __init__(
        self,
        clock: Clock,
        *,
        auto_decompress: bool = True,
        pool_size: int = POOL_SIZE,
        keepalive: float = KEEPALIVE,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._exchanges = exchanges = clock.exchanges
        self._clock = clock
        traces = []
        if exchanges.active:
            # A request queued for a pool connection waits for other work to end, like a
            # request being served: the virtual clock must not wait for it to move.
            trace = aiohttp.TraceConfig()
            trace.on_connection_queued_start.append(self._queued)
            trace.on_connection_queued_end.append(self._dequeued)
            traces.append(trace)
        self._session = aiohttp.ClientSession(
            # A pool per host, not one limit over all: when a connection frees up, aiohttp
            # picks among hosts with waiters at random (unseeded), which would make
            # virtual-clock runs differ.
            # An idle connection is closed before the server's head timeout would close
            # it, so a request never goes out on a connection the server is dropping.
            connector=aiohttp.TCPConnector(
                limit=0, limit_per_host=pool_size, keepalive_timeout=keepalive
            ),
            trace_configs=traces,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
            auto_decompress=auto_decompress,
            skip_auto_headers=("User-Agent",),
        )

    async def request(
        self,
        component: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | CIMultiDict[str] | None = None,
        data: bytes | None = None,
        json_body: Any = None,
        check: bool = True,
        within: float | None = None,
    ) -> Reply:
        """Send one request to `component` at `url` and read the whole reply.

        With `check`, an error status from `component` raises DownstreamError: a 503
        (overloaded, with its `Retry-After`) passes on as 503, anything else becomes 502.
        With `within` (seconds on the clock), no reply in time is a 504 naming `component`.
        """
        if within is None:
            return await self._request(component, method, url, headers, data, json_body, check)
        try:
            async with self._clock.timeout(within):
                return await self._request(component, method, url, headers, data, json_body, check)
        except TimeoutError:
            message = f"{component} did not answer within {within:g}s"
            raise DownstreamError(component, message, 504) from None

    async def _request(
        self,
        component: str,
        method: str,
        url: str,
        headers: dict[str, str] | CIMultiDict[str] | None,
        data: bytes | None,
        json_body: Any,
        check: bool,
    ) -> Reply:
        headers = CIMultiDict(headers or {})
        rid = request_id.get()
        if rid and REQUEST_ID_HEADER not in headers:
            headers[REQUEST_ID_HEADER] = rid
        if json_body is not None:
            data = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        exchange = self._exchanges.open()
        if exchange is not None:
            headers[EXCHANGE_HEADER] = str(exchange)
        failure: DownstreamError | None = None
        try:
            async with self._session.request(
                method, url, headers=headers, data=data, trace_request_ctx=exchange
            ) as resp:
                reply = Reply(resp.status, resp.headers, await _read(resp), component)
        except _TooLarge:
            message = f"{component} sent a reply larger than {MAX_REPLY:,} bytes"
            failure = DownstreamError(component, message)
        except aiohttp.ClientConnectorError as e:
            reason = e.os_error.strerror or str(e.os_error)
            message = f"{component} unreachable: {reason}"
            failure = DownstreamError(component, message, refused=True)
        except (TimeoutError, aiohttp.ClientError) as e:
            reason = str(e) or type(e).__name__
            failure = DownstreamError(component, f"{component} failed: {reason}")
        finally:
            self._exchanges.close(exchange)
        if exchange is not None:
            await self._exchanges.barrier(exchange)  # replies read at one time go on in order
        if failure is not None:
            raise failure
        if check and reply.status >= 400:
            raise _refusal(reply)
        return reply

    async def _queued(self, _session: object, trace: Any, _params: object) -> None:
        self._exchanges.parked(trace.trace_request_ctx)

    async def _dequeued(self, _session: object, trace: Any, _params: object) -> None:
        self._exchanges.moving(trace.trace_request_ctx)

    async def close(self) -> None:
        await self._session.close()
