"""How labsim serves one aiohttp application on one port, safely for any client.

`serve_app` binds an app (a component's or the dashboard's) with the limits every server
needs against slow or hostile clients:

- a connection must deliver a complete request head within `head_timeout` of opening or
  of its last answer, or it is closed (aiohttp's keep-alive timer, which also runs from
  the moment a connection opens);
- at most `max_connections` at once: past that, the connection that has waited longest
  for a request head is closed, so idle and half-sent connections give way to the ones
  that are being served, and file descriptors stay available for the topology's own hops;
- a malformed request is answered by aiohttp with a 400 and logged as one line, never a
  traceback;
- an `Expect` header other than `100-continue` gets a JSON 417 (aiohttp would answer it
  in plain text before any middleware runs, and with a 500 if it is not UTF-8).

It touches only the app it is given, its runner and its sockets.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestHandler

from .config import LimitsConfig

# Seconds a stopping server waits for requests still in flight (wall time).
SHUTDOWN_GRACE = 0.25

log = logging.getLogger("labsim")


class ClusterError(Exception):
    """A component could not start; the message names it and its port."""


class _OneLine(logging.Filter):
    """aiohttp's "Error handling request" records, as one line at INFO, no traceback.

    A malformed request is the client's mistake: it gets its 400 and the log gets a line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            detail = " ".join(str(error).split())[:200]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {detail}"
            record.args = None
            record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return log.isEnabledFor(logging.INFO)


_protocol_log = logging.getLogger("labsim.protocol")
_protocol_log.addFilter(_OneLine())


class ConnectionLimit:
    """At most `limit` connections to one server; the longest waiting for a head goes first.

    Connections are kept in the order they began to wait for their next request head
    (dicts keep insertion order), so the one to close is always the first.
    """

    def __init__(self, limit: int, name: str) -> None:
        self._limit = limit
        self._name = name
        self._open: dict[RequestHandler, Any] = {}  # handler -> its transport
        self._waiting: dict[RequestHandler, None] = {}  # those not serving a request now
        self.closed = 0  # connections closed to stay within the limit

    def watch(self, server: web.Server) -> None:
        """Follow `server`'s connections (the hooks aiohttp's handlers call on it)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: RequestHandler, transport: Any) -> None:
            made(handler, transport)
            self._open[handler] = transport
            self._waiting[handler] = None
            if len(self._open) > self._limit:
                self._close_longest_waiting()

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            self._open.pop(handler, None)
            self._waiting.pop(handler, None)
            lost(handler, exc)

        # aiohttp's handlers call these on the server instance: wrap them there.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _close_longest_waiting(self) -> None:
        if not self._waiting:
            return  # all are being served: nothing to close
        handler = next(iter(self._waiting))
        del self._waiting[handler]
        transport = self._open.pop(handler)
        transport.close()
        self.closed += 1
        if self.closed == 1 or self.closed % 1000 == 0:
            log.warning(
                "%s: %d connection(s) closed to stay within %d (the idle or half-sent ones first)",
                self._name,
                self.closed,
                self._limit,
            )

    def busy(self, handler: RequestHandler) -> None:
        """`handler`'s connection is serving a request: it is not waiting for a head."""
        self._waiting.pop(handler, None)

    def idle(self, handler: RequestHandler) -> None:
        """It has answered: it waits for its next head, at the back of the line."""
        if handler in self._open:
            self._waiting[handler] = None


def _guard(server: web.Server, connections: ConnectionLimit) -> None:
    """Wrap every request of `server`: its connection is busy meanwhile, and an unknown
    `Expect` gets a JSON 417 before aiohttp's own expect handler answers in plain text
    (or with a 500, if the header is not UTF-8), ahead of every middleware."""
    inner = server.request_handler

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get(hdrs.EXPECT)
        if expect is not None and expect.lower() != "100-continue":
            shown = expect.encode("utf-8", "backslashreplace").decode("ascii", "replace")[:100]
            return web.json_response(
                {"error": f"unknown Expect: {shown} (only 100-continue)"}, status=417
            )
        protocol = request.protocol
        connections.busy(protocol)
        try:
            return await inner(request)
        finally:
            connections.idle(protocol)

    server.request_handler = handle  # each connection's handler reads it when made


async def serve_app(
    app: web.Application, name: str, host: str, port: int, limits: LimitsConfig
) -> tuple[web.AppRunner, str]:
    """Serve `app` on `host`:`port` (0: a free port) within `limits`; its runner and URL.

    A port that cannot be bound raises ClusterError naming `name`, nothing left listening.
    """
    connections = ConnectionLimit(limits.max_connections, name)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_GRACE,
        keepalive_timeout=limits.head_timeout,
        logger=_protocol_log,
    )
    await runner.setup()
    assert runner.server is not None
    connections.watch(runner.server)
    _guard(runner.server, connections)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as e:
        await runner.cleanup()
        raise ClusterError(_bind_problem(name, host, port, e)) from None
    except OverflowError:  # a port past 65535 that came in some way other than a scenario
        await runner.cleanup()
        raise ClusterError(f"cannot start {name}: port {port} is not a port number") from None
    return runner, f"http://{url_host(host)}:{runner.addresses[0][1]}"


def url_host(host: str) -> str:
    """`host` as a URL writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


def _bind_problem(component_id: str, host: str, port: int, e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return f"cannot start {component_id}: port {port} on {host} is already in use"
    if e.errno == errno.EACCES:
        return f"cannot start {component_id}: no permission to bind port {port} on {host}"
    reason = e.strerror or str(e)
    return f"cannot start {component_id} on {host}:{port}: {reason}"
