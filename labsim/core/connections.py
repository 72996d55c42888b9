"""Keep-alive HTTP/1.1 connections from one caller to one host, at most `limit` at once.

A `Pool` hands out open connections (aiohttp's own `ResponseHandler` protocol, which
parses the replies) and takes them back when a reply has been read whole. A connection
idle longer than `keepalive` is closed instead of reused, so a request never goes out on
a connection the server is about to drop. Past `limit`, callers wait first come, first
served, and a freed connection (or its place) goes to the caller that waited longest.
A host served in this process is reached over an in-memory pipe (`pipe.py`), any other
over TCP. TCP connections to a server of this same process are listed in `OwnSockets`,
for that server to know them for labsim's own; and a pool opens at most OPENING new ones
at a time. It touches only its own connections.
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
# New TCP connections of one pool at once, counted until an answer comes back on each:
# until then the server may not have accepted them, and its kernel queue (its backlog,
# 4096 at most on Linux) must not overflow, or the kernel resets some.
OPENING = 1024


class OwnSockets:
    """The local addresses of the TCP connections that labsim's own pools hold open.

    A server in the same process looks its peer up here: a connection from one of these
    is labsim's own hop, which its pool bounds, never an outsider to limit
    (`connection_limit.py`).
    An address counts only while its connection is open: once closed, the kernel may give
    its port to anyone. A server may see a connection before its client is told that it
    is open: `might_be_one` says whether it could be one of those still being opened.
    Only connections to `served`, the addresses of the servers in this process, are listed.
    """

    def __init__(self) -> None:
        self.served: set[tuple[str, int]] = set()
        self._open: dict[tuple[str, int], ResponseHandler] = {}
        # Each one's address, kept: a closed transport no longer says it.
        self._address: dict[ResponseHandler, tuple[str, int]] = {}
        self._begun = 0  # connections begun to be opened, ever
        self._opening: dict[int, None] = {}  # the numbers of those not listed yet, in order

    def opening(self) -> int:
        """A connection is being opened: its number, for `opened`."""
        number = self._begun
        self._begun += 1
        self._opening[number] = None
        return number

    def opened(self, number: int, protocol: ResponseHandler | None) -> None:
        """Connection `number` is open, as `protocol` (None: it could not be opened)."""
        if protocol is not None and protocol.transport is not None:
            address = protocol.transport.get_extra_info("sockname")
            if isinstance(address, tuple) and len(address) >= 2:
                self._open[address[:2]] = protocol
                self._address[protocol] = address[:2]
        del self._opening[number]

    def discard(self, protocol: ResponseHandler) -> None:
        address = self._address.pop(protocol, None)
        if address is not None and self._open.get(address) is protocol:
            del self._open[address]

    def __contains__(self, address: object) -> bool:
        """Whether `address` (a peer's, as a server sees it) is one of these, still open."""
        if not isinstance(address, tuple) or len(address) < 2:
            return False
        protocol = self._open.get(address[:2])
        return protocol is not None and protocol.is_connected()

    def mark(self) -> int:
        """For a server, when it sees a connection: how many had been begun by then."""
        return self._begun

    def might_be_one(self, mark: int) -> bool:
        """Whether a connection a server saw at `mark`, not listed, may yet be one: some
        connection begun before it is still being opened."""
        return bool(self._opening) and next(iter(self._opening)) < mark


def _keep_open(server: asyncio.Protocol) -> None:
    """Switch off the idle timer of aiohttp's server end of an in-memory pipe.

    The timer runs on wall time, and a pipe carries a run on the virtual clock: in a large
    topology a caller-callee pair may go seconds of wall time between two requests (2,500
    pairs in 50 gateways calling 50 services in turn), and each expiry cost a new
    connection, about one a request on a busy machine (benchmarks/topology_scale.py).
    A pipe is labsim's own, from a bounded pool, and holds no file descriptor.
    """
    if isinstance(getattr(server, "_keepalive_timeout", None), (int, float)):
        # aiohttp reads it afresh after each answer; no public setter exists.
        server._keepalive_timeout = _PIPE_IDLE  # type: ignore[attr-defined]


# Seconds a pipe may stay idle (an expiry that never comes in any run).
_PIPE_IDLE = 1e9


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
        own: OwnSockets | None = None,
    ) -> None:
        self.address = address
        self._limit = limit
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._auto_decompress = auto_decompress
        self._server = server
        self._tls = tls
        self._own = own
        self._loop = asyncio.get_running_loop()
        self._idle: deque[tuple[ResponseHandler, float]] = deque()  # newest last
        self._taken = 0  # connections (or places for one) held by callers
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        # New TCP connections not answered on yet, each holding a place among OPENING.
        self._unanswered: set[ResponseHandler] = set()
        self._opening = asyncio.Semaphore(OPENING)

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
        # An in-memory pipe's server never closes it while idle (`_keep_open`): no age limit.
        keepalive = self._keepalive if self._server is None else float("inf")
        while self._idle:
            protocol, since = self._idle.pop()
            if protocol.is_connected() and now - since < keepalive:
                return protocol
            self._close(protocol)
        protocol = ResponseHandler(self._loop)
        if self._server is not None:
            server = self._server()
            _keep_open(server)
            connect(protocol, server, self.address)
        elif self._own is None:
            await self._connect(protocol)
        else:  # listed before any byte is sent, for a server in this process to know it
            number = self._own.opening()
            try:
                await self._connect(protocol)
            except BaseException:
                self._own.opened(number, None)
                raise
            self._own.opened(number, protocol)
        self._expect(protocol, body=True)
        return protocol

    async def _connect(self, protocol: ResponseHandler) -> None:
        host, port = self.address
        await self._opening.acquire()
        self._unanswered.add(protocol)
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._loop.create_connection(
                    lambda: protocol,
                    host,
                    port,
                    ssl=self._tls,
                    server_hostname=host if self._tls else None,
                )
        except BaseException as e:
            self._answered(protocol)  # it never will be: its place goes to another
            if isinstance(e, TimeoutError):
                seconds = f"{self._connect_timeout:g}s"
                raise OSError(errno.ETIMEDOUT, f"no connection within {seconds}") from None
            raise

    def _answered(self, protocol: ResponseHandler) -> None:
        """An answer came back on `protocol` (or none will): the server has accepted it."""
        if protocol in self._unanswered:
            self._unanswered.discard(protocol)
            self._opening.release()

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
        self._answered(protocol)
        if reusable and not self._closed and protocol.is_connected() and not protocol.should_close:
            self._idle.append((protocol, self._loop.time()))
        else:
            self._close(protocol)
        self._give_back_place()

    def _close(self, protocol: ResponseHandler) -> None:
        if self._own is not None:
            self._own.discard(protocol)
        protocol.close()

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
            self._close(self._idle.pop()[0])
