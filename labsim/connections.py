"""Keep-alive HTTP/1.1 connections from one caller to one host, at most `limit` at once.

A `Pool` hands out open connections (aiohttp's own `ResponseHandler` protocol, which
parses the replies) and takes them back when a reply has been read whole. A connection
idle longer than `keepalive` is closed instead of reused, so a request never goes out on
a connection the server is about to drop. Past `limit`, callers wait first come, first
served, and a freed connection (or its place) goes to the caller that waited longest.
A host served in this process is reached over an in-memory pipe (`pipe.py`), any other
over TCP. It touches only its own connections.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections import deque
from collections.abc import Callable

from aiohttp.client_proto import ResponseHandler

from .pipe import connect

# Longest status line or header line accepted in a reply (aiohttp's own default).
MAX_LINE = 8190


class Pool:
    """Connections to `address`; `connect_timeout` in wall seconds for a new TCP one."""

    def __init__(
        self,
        address: tuple[str, int],
        limit: int,
        keepalive: float,
        connect_timeout: float,
        *,
        auto_decompress: bool,
        server: Callable[[], asyncio.Protocol] | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.address = address
        self._limit = limit
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._auto_decompress = auto_decompress
        self._server = server
        self._tls = tls
        self._loop = asyncio.get_running_loop()
        self._idle: deque[tuple[ResponseHandler, float]] = deque()  # newest last
        self._taken = 0  # connections (or places for one) held by callers
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    def must_wait(self) -> bool:
        """Whether a caller asking now would wait for another to give a connection back."""
        return self._taken >= self._limit

    async def acquire(self) -> ResponseHandler:
        """An open connection, reused if one is idle; waits while `limit` are taken."""
        if self._taken >= self._limit or self._waiters:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # a caller that gave its place back handed it to this one
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._give_back_place()  # it was handed over just as this one gave up
                raise
        else:
            self._taken += 1
        try:
            return await self._open()
        except BaseException:
            self._give_back_place()
            raise

    async def _open(self) -> ResponseHandler:
        now = self._loop.time()
        while self._idle:
            protocol, since = self._idle.pop()
            if protocol.is_connected() and now - since < self._keepalive:
                return protocol
            protocol.close()
        protocol = ResponseHandler(self._loop)
        if self._server is not None:
            connect(protocol, self._server(), self.address)
        else:
            host, port = self.address
            try:
                async with asyncio.timeout(self._connect_timeout):
                    await self._loop.create_connection(
                        lambda: protocol,
                        host,
                        port,
                        ssl=self._tls,
                        server_hostname=host if self._tls else None,
                    )
            except TimeoutError:
                seconds = f"{self._connect_timeout:g}s"
                raise OSError(errno.ETIMEDOUT, f"no connection within {seconds}") from None
        self._expect(protocol, body=True)
        return protocol

    def expect_no_body(self, protocol: ResponseHandler) -> None:
        """The next reply on `protocol` answers a HEAD request: headers only."""
        self._expect(protocol, body=False)

    def _expect(self, protocol: ResponseHandler, *, body: bool) -> None:
        protocol.set_response_params(
            skip_payload=not body,
            # A reply with neither a length nor chunks ends when the server hangs up.
            read_until_eof=True,
            auto_decompress=self._auto_decompress,
            max_line_size=MAX_LINE,
            max_field_size=MAX_LINE,
        )

    def release(self, protocol: ResponseHandler, *, reusable: bool) -> None:
        """Take `protocol` back: kept for the next caller if `reusable`, else closed."""
        if reusable and not self._closed and protocol.is_connected() and not protocol.should_close:
            self._idle.append((protocol, self._loop.time()))
        else:
            protocol.close()
        self._give_back_place()

    def _give_back_place(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the place passes on: `_taken` stays the same
                return
        self._taken -= 1

    def close(self) -> None:
        """Close the idle connections; those in use are closed when they come back."""
        self._closed = True
        while self._idle:
            self._idle.pop()[0].close()
