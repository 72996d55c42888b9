"""Every HTTP request labsim makes, to a component or as the bench client, goes through here.

`HttpClient` keeps its own keep-alive connections per caller (`connections.py`), so each
hop has its own connection pool and one hop can never starve another. It reads each reply whole,
carries the request id along, tells the clock about the exchange (the virtual clock waits
for replies in transit), and turns every way a call can fail into `DownstreamError`,
which names the component that failed.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .clock import Clock
from .connections import MAX_LINE, OwnSockets, Pool
from .pipe import Servers

REQUEST_ID_HEADER = "X-Request-Id"
EXCHANGE_HEADER = "X-Labsim-Exchange"
# The credential the gateways' calls carry under `exposure = "gateways-only"` (`exposure.py`).
INTERNAL_HEADER = "X-Labsim-Internal"

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
# Interim (1xx) answers before the real one: a server sends one or two (100 Continue,
# 103 Early Hints); more is a failed call, not a loop fed forever (issue 21: 1.5 GB).
MAX_INTERIM = 10


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


def refusal(reply: Reply) -> DownstreamError:
    try:
        detail = json.loads(reply.body).get("error")
    except (ValueError, AttributeError):
        detail = None
    message = f"{reply.component} answered {reply.status}" + (f": {detail}" if detail else "")
    if reply.status in (429, 503):  # busy or rate limited: the caller may come back later
        retry = reply.headers.get("Retry-After")
        return DownstreamError(
            reply.component, message, reply.status, {"Retry-After": retry} if retry else {}
        )
    return DownstreamError(reply.component, message)


def _not_http(error: HttpProcessingError) -> str:
    """What was wrong with a reply aiohttp's parser refused, in one line (its own message
    spans several, a caret on the last one)."""
    if isinstance(error.__cause__ or error, LineTooLong):  # aiohttp's protocol wraps it
        return f"its reply has a line longer than {MAX_LINE:,} bytes"
    detail = " ".join(w for w in error.message.split() if w.strip("^"))[:200]
    return f"its reply is not valid HTTP ({detail})"


class _TooLarge(Exception):
    pass


class _NotConnected(Exception):
    """No connection could be made: the request never left (safe to send elsewhere)."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))


async def _read(payload: StreamReader, length: int | None) -> bytes:
    """The whole reply body, at most MAX_REPLY bytes: a server may be anything."""
    if length is not None and length <= MAX_REPLY:
        return await payload.read()  # labsim's own components always say how long
    body = bytearray()
    while chunk := await payload.readany():
        body += chunk
        if len(body) > MAX_REPLY:
            raise _TooLarge
    return bytes(body)


def _head(method: str, url: URL, headers: CIMultiDict[str], body: bytes) -> bytes:
    """The request line and headers, as aiohttp's client would write them.

    A caller's own `Host` wins over the URL's; the body's length is always this one's.
    """
    host = headers.popone("Host", None) or url.host_port_subcomponent or ""
    if "\n" in host or "\r" in host:
        raise ValueError("header 'Host' has a line break")
    headers.popall("Content-Length", None)
    lines = [f"{method} {url.raw_path_qs} HTTP/1.1\r\nHost: {host}\r\n"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"header {name!r} has a line break")
        lines.append(f"{name}: {value}\r\n")
    if body or method in _BODY_METHODS:
        lines.append(f"Content-Length: {len(body)}\r\n")
    lines.append("\r\n")
    # Header bytes a server decoded leniently go back out as the same bytes.
    return "".join(lines).encode("utf-8", "surrogateescape")


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


_MAX_URLS = 4096  # parsed URLs a client keeps


class HttpClient:
    """Requests from one caller, on its own pool of connections to each host.

    aiohttp's own protocol parses the replies; the requests are written here, because
    aiohttp's full client costs about as much per request as a component's whole
    answer (benchmarks/README.md), and labsim's hops need none of its extra features.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        auto_decompress: bool = True,
        pool_size: int = POOL_SIZE,
        keepalive: float = KEEPALIVE,
        connect_timeout: float = CONNECT_TIMEOUT,
        servers: Servers | None = None,
        headers: Mapping[str, str] | None = None,
        own: OwnSockets | None = None,
    ) -> None:
        """`servers`: the servers in this process, reached over in-memory pipes (`pipe.py`);
        `headers`: sent with every request (a caller's own with the same name win);
        `own`: where its TCP connections are listed for the servers of its process."""
        self._exchanges = clock.exchanges
        self._clock = clock
        self._pools: dict[tuple[str, str, int], Pool] = {}
        # Parsed URLs by text: a hop calls the same few again and again, and yarl's own
        # cache (128) is too small for a topology of hundreds of replicas.
        self._urls: dict[str, URL] = {}
        self._settings = (pool_size, keepalive, connect_timeout, auto_decompress)
        self._servers = servers
        self._tls: ssl.SSLContext | None = None
        self._headers = dict(headers or {})
        self._own = own

    def _pool(self, url: URL) -> Pool:
        key = (url.scheme, url.host or "", url.port or 0)
        pool = self._pools.get(key)
        if pool is None:
            if key[0] not in ("http", "https") or not url.host:
                raise ValueError(f"not an http:// or https:// URL: {url}")
            size, keepalive, connect_timeout, decompress = self._settings
            address = (url.host, url.port or 0)
            local = self._servers.get(address) if self._servers and key[0] == "http" else None
            # Its connections listed only if they go to a server in this process.
            own = self._own if self._own and address in self._own.served else None
            tls = None
            if key[0] == "https":
                tls = self._tls = self._tls or ssl.create_default_context()
            pool = Pool(
                address,
                size,
                keepalive,
                connect_timeout,
                auto_decompress=decompress,
                server=local,
                tls=tls,
                own=own,
            )
            self._pools[key] = pool
        return pool

    def _url(self, text: str) -> URL:
        url = self._urls.get(text)
        if url is None:
            if len(self._urls) >= _MAX_URLS:  # a client that names ever new URLs (?key=)
                self._urls.clear()
            url = self._urls[text] = URL(text)
        return url

    async def request(
        self,
        component: str,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
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
        headers: Mapping[str, str] | None,
        data: bytes | None,
        json_body: Any,
        check: bool,
    ) -> Reply:
        sent = CIMultiDict(headers) if headers else CIMultiDict()  # repeated names kept
        for name, value in self._headers.items():
            sent.setdefault(name, value)
        rid = request_id.get()
        if rid and REQUEST_ID_HEADER not in sent:
            sent[REQUEST_ID_HEADER] = rid
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        exchange = self._exchanges.open()
        if exchange is not None:
            sent[EXCHANGE_HEADER] = str(exchange)
        failure: DownstreamError | None = None
        try:
            reply = await self._exchange(
                component, method, self._url(url), sent, data or b"", exchange
            )
        except _TooLarge:
            message = f"{component} sent a reply larger than {MAX_REPLY:,} bytes"
            failure = DownstreamError(component, message)
        except _NotConnected as e:
            failure = DownstreamError(component, f"{component} unreachable: {e}", refused=True)
        except OSError as e:  # the connection broke after the request went out
            failure = DownstreamError(component, f"{component} failed: {e.strerror or e}")
        except HttpProcessingError as e:
            failure = DownstreamError(component, f"{component} failed: {_not_http(e)}")
        except (TimeoutError, ValueError, aiohttp.ClientError) as e:
            reason = " ".join((str(e) or type(e).__name__).split())
            failure = DownstreamError(component, f"{component} failed: {reason}")
        finally:
            self._exchanges.close(exchange)
        if exchange is not None:
            await self._exchanges.barrier(exchange)  # replies read at one time go on in order
        if failure is not None:
            raise failure
        if check and reply.status >= 400:
            raise refusal(reply)
        return reply

    async def _exchange(
        self,
        component: str,
        method: str,
        url: URL,
        headers: CIMultiDict[str],
        body: bytes,
        exchange: int | None,
    ) -> Reply:
        pool = self._pool(url)
        head = _head(method, url, headers, body)
        try:
            if exchange is not None and pool.must_wait():
                # Queued for a connection, it waits for other work to end, like a request
                # being served: the virtual clock must not wait for it to move.
                self._exchanges.parked(exchange)
                try:
                    protocol = await pool.acquire()
                finally:
                    self._exchanges.moving(exchange)
            else:
                protocol = await pool.acquire()
        except OSError as e:
            raise _NotConnected(e) from None
        reusable = False
        try:
            if method == "HEAD":
                pool.expect_no_body(protocol)
            transport = protocol.transport
            if transport is None:
                raise aiohttp.ServerDisconnectedError()
            transport.write(head + body)
            message, payload = await protocol.read()
            interim = 0
            while message.code < 200:  # an interim answer (100 Continue): the real one follows
                if message.code == 101:
                    raise ValueError(
                        "answered 101 Switching Protocols, which labsim does not speak"
                    )
                interim += 1
                if interim > MAX_INTERIM:
                    raise ValueError(f"sent more than {MAX_INTERIM} interim (1xx) answers")
                message, payload = await protocol.read()
            # A compressed reply's length says nothing of the bytes it unpacks to.
            length = None if message.compression else message.headers.get("Content-Length")
            answer = await _read(payload, int(length) if length and length.isdigit() else None)
            reusable = method != "HEAD" and not message.should_close
        finally:
            pool.release(protocol, reusable=reusable)
        return Reply(message.code, message.headers, answer, component)

    async def close(self) -> None:
        """Close every idle connection; one still in use closes when its reply is read."""
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
