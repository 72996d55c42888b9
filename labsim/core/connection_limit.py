"""Which connections the servers of one process close, to stay within their limits.

Each server may hold `max_connections` from outside, and all of them together what the
process's file descriptors leave room for (`descriptors.py`). labsim's own connections,
which their pools bound, are never counted or closed. It touches only the transports of
the connections it closes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from .connections import OwnSockets
from .pipe import Pipe

log = logging.getLogger("labsim")


class _Server:
    """One server's share: its limit, and its outside connections waiting for a head."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.count = 0  # outside connections open
        self.waiting: dict[RequestHandler, None] = {}  # in the order they began to wait
        self.closed = 0


class ConnectionLimit:
    """The connections from outside that the servers of one process hold, within limits.

    Each server holds at most its own `limit`, and all of them together at most `total`
    (what the process's file descriptors leave room for, `descriptors.py`). Past either,
    the outside connection that has waited longest for a request head is closed (dicts
    keep the order in which they began to wait): never one being served.

    labsim's own connections are neither counted nor closed: the in-memory pipes, and TCP
    connections from the process's own clients (listed in `own`). Their pools bound them,
    and a limit that closed them would fail the topology's hops and the bench's requests
    (issue 21: at a concurrency past `max_connections`, two requests in three failed).
    """

    def __init__(self, total: int | None = None, own: OwnSockets | None = None) -> None:
        self._total = total
        self._own = own
        self._count = 0
        # handler -> its transport, its server, and when it came (`OwnSockets.mark`)
        self._open: dict[RequestHandler, tuple[Any, _Server, int]] = {}
        self._waiting: dict[RequestHandler, None] = {}  # across all the servers, in order
        self.closed = 0  # connections closed to stay within a limit

    def watch(self, server: web.Server, limit: int, name: str) -> None:
        """Follow `server`'s connections (the hooks aiohttp's handlers call on it), at most
        `limit` from outside; `name` in the log."""
        made, lost = server.connection_made, server.connection_lost
        share = _Server(name, limit)

        def connection_made(handler: RequestHandler, transport: Any) -> None:
            made(handler, transport)
            if isinstance(transport, Pipe) or self._is_own(transport):
                return
            self._open[handler] = (transport, share, self._own.mark() if self._own else 0)
            share.count += 1
            self._count += 1
            self._wait(handler, share)
            if self._over(share):
                self._close_first(share)
            elif self._over(None):
                self._close_first(None)

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            self._forget(handler)
            lost(handler, exc)

        # aiohttp's handlers call these on the server instance: wrap them there.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def _is_own(self, transport: Any) -> bool:
        return self._own is not None and transport.get_extra_info("peername") in self._own

    def _wait(self, handler: RequestHandler, share: _Server) -> None:
        share.waiting[handler] = None
        self._waiting[handler] = None

    def _forget(self, handler: RequestHandler) -> None:
        entry = self._open.pop(handler, None)
        if entry is None:
            return
        share = entry[1]
        share.count -= 1
        self._count -= 1
        share.waiting.pop(handler, None)
        self._waiting.pop(handler, None)

    def _over(self, share: _Server | None) -> bool:
        """Whether `share` is past its limit (None: all of them, past their total)."""
        if share is not None:
            return share.count > share.limit
        return self._total is not None and self._count > self._total

    def _close_first(self, over: _Server | None) -> None:
        """Close the outside connection waiting longest at the server `over` its limit
        (None: at any server), while that is still over it."""
        waiting = self._waiting if over is None else over.waiting
        while self._over(over):
            handler = self._first_outsider(waiting)
            if handler is None or not self._over(over):
                return
            transport, share, _ = self._open[handler]
            self._forget(handler)
            # Closed on the next turn of the loop: aiohttp's handler of a connection made
            # in this same turn has not started yet, and would fail an assertion if its
            # connection were lost before it did (Python 3.11, "Task exception was never
            # retrieved").
            asyncio.get_running_loop().call_soon(transport.close)
            share.closed += 1
            self.closed += 1
            if share.closed == 1 or share.closed % 1000 == 0:
                if over is None:
                    within = f"the {self._total:,} that ulimit -n leaves all components"
                else:
                    within = f"max_connections {over.limit:,}"
                log.warning(
                    "%s: %d connection(s) from outside closed to stay within %s "
                    "(the idle or half-sent ones first)",
                    share.name,
                    share.closed,
                    within,
                )

    def _first_outsider(self, waiting: dict[RequestHandler, None]) -> RequestHandler | None:
        """The first of `waiting` that is surely from outside. Those found to be labsim's
        own meanwhile (their clients listed after their servers saw them) are forgotten;
        those that may still turn out to be, passed over."""
        found, own = None, []
        for handler in waiting:
            transport, _, mark = self._open[handler]
            if self._is_own(transport):
                own.append(handler)
            elif self._own is None or not self._own.might_be_one(mark):
                found = handler
                break
        for handler in own:
            self._forget(handler)
        return found

    def busy(self, handler: RequestHandler) -> None:
        """`handler`'s connection is serving a request: it is not waiting for a head."""
        entry = self._open.get(handler)
        if entry is not None:
            entry[1].waiting.pop(handler, None)
            self._waiting.pop(handler, None)

    def idle(self, handler: RequestHandler) -> None:
        """It has answered: it waits for its next head, at the back of the line."""
        entry = self._open.get(handler)
        if entry is not None:
            self._wait(handler, entry[1])
