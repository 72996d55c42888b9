"""How labsim serves one aiohttp application on one port, safely for any client.

`serve_app` binds an app (a component's or the dashboard's) with the limits every server
needs against slow or hostile clients:

- a connection must deliver a complete request head within `head_timeout` of opening or
  of its last answer, or it is closed (aiohttp's keep-alive timer, which also runs from
  the moment a connection opens);
- at most `max_connections` from outside at once, and all the servers of a cluster
  together at most what its file descriptors leave room for: past that, the connection
  that has waited longest for a request head is closed, so idle and half-sent connections
  give way to the ones being served, and descriptors stay available for the topology's own
  hops (labsim's own connections are never closed: `connection_limit.py`);
- a request aiohttp cannot parse gets a JSON 400 (431 for a line of its head past
  aiohttp's 8,190 bytes, such as a long token) and is logged as one line, never a traceback;
- an `Expect` header other than `100-continue` gets a JSON 417 (aiohttp would answer it
  in plain text before any middleware runs, and with a 500 if it is not UTF-8).

It touches only the app it is given, its runner and its sockets.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler

from ..core.connection_limit import ConnectionLimit
from ..model.config import LimitsConfig

# Seconds a stopping server waits for requests still in flight (wall time).
SHUTDOWN_GRACE = 0.25
# aiohttp's longest request line or header line (its `max_line_size`, `max_field_size`).
MAX_HEAD_LINE = 8190
# Connections the kernel completes for a server before it accepts them (Linux caps this at
# net.core.somaxconn, 4096 since 5.4). aiohttp's 128 overflowed when a real-clock bench
# opened thousands at once, and the kernel reset some: at a concurrency of 4,000, 244 to
# 934 of 4,000 requests failed, none with 4096 (issue 21).
BACKLOG = 4096

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
            detail = _detail(error)
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {detail}"
            record.args = None
            record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
        return log.isEnabledFor(logging.INFO)


_protocol_log = logging.getLogger("labsim.protocol")
_protocol_log.addFilter(_OneLine())


def _detail(error: BaseException) -> str:
    """What was wrong with a request aiohttp could not parse, in one line."""
    if isinstance(error, LineTooLong):  # without the line: it may be a token
        return f"a line of the request head is longer than {MAX_HEAD_LINE:,} bytes"
    text = error.message if isinstance(error, HttpProcessingError) else str(error)
    # aiohttp's parser points at the bad byte on a line of its own: a caret.
    return " ".join(w for w in text.split() if w.strip("^"))[:200]


class _JsonErrors(RequestHandler):
    """aiohttp's handler of one connection, whose answer to a request it could not parse
    is JSON like every other answer: 431 for a line of the head past aiohttp's limit (a
    long token: issue 21), else 400. aiohttp makes its own handlers: `_answer_in_json`
    gives each this class, which adds no state (no slots)."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own logs the error, and refuses if an answer was begun already.
        super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):
            status = 431
            error = f"a request header (or the request line) is longer than {MAX_HEAD_LINE:,} bytes"
        elif status >= 500:
            error = "internal error"
        else:
            error = "malformed request: " + _detail(exc or Exception(message or "unknown"))
        response = web.json_response({"error": error}, status=status)
        response.force_close()
        return response


def _answer_in_json(server: web.Server) -> None:
    """Every connection of `server` answers a request it could not parse in JSON."""
    made = server.connection_made

    def connection_made(handler: RequestHandler, transport: Any) -> None:
        handler.__class__ = _JsonErrors
        made(handler, transport)

    server.connection_made = connection_made  # type: ignore[method-assign]


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
    app: web.Application,
    name: str,
    host: str,
    port: int,
    limits: LimitsConfig,
    connections: ConnectionLimit | None = None,
) -> tuple[web.AppRunner, str]:
    """Serve `app` on `host`:`port` (0: a free port) within `limits`; its runner and URL.

    `connections`: shared with the other servers of the process (a cluster's), else its own.
    A port that cannot be bound raises ClusterError naming `name`, nothing left listening.
    """
    connections = connections or ConnectionLimit()
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
    connections.watch(runner.server, limits.max_connections, name)
    _answer_in_json(runner.server)
    _guard(runner.server, connections)
    try:
        await web.TCPSite(runner, host, port, backlog=BACKLOG).start()
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
