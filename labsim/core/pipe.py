"""In-memory connections between labsim's own components, for runs on the virtual clock.

A `Pipe` is an asyncio transport whose bytes go to its peer's protocol on the next turn of
the event loop instead of through the kernel. Both ends are aiohttp's protocols: the caller's
`ResponseHandler` sends a real HTTP/1.1 request, the component's `RequestHandler` parses
it, and the reply comes back the same way, byte for byte what a socket would carry. Only
the kernel is left out: a loopback socket costs two system calls and a wake-up of the
selector for every message, almost half of an exchange's cost (benchmarks/README.md).

The connection pool (`connections.py`) makes a pipe instead of a socket when the address
is one of the servers in this process. On the real clock, labsim's hops keep real
sockets on real ports.
This module touches only the transports and protocols it connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

# Where each in-process server listens, and the factory of its connections' protocols.
Servers = Mapping[tuple[str, int], Callable[[], asyncio.Protocol]]


class Pipe(asyncio.Transport):
    """One end of an in-memory connection; what it writes, its peer's protocol receives."""

    def __init__(self, protocol: asyncio.Protocol, here: tuple[str, int], there: tuple[str, int]):
        super().__init__({"sockname": here, "peername": there})
        self._loop = asyncio.get_running_loop()
        self._protocol = protocol
        self.peer: Pipe = self
        self._closing = False
        self._paused = False
        # Received while reading is paused, in order; the end of file waits behind them.
        self._held: list[bytes] = []
        self._eof_held = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # Bytes written after close go nowhere, as on a socket whose peer is gone.
        if data and not self._closing:
            self._loop.call_soon(self.peer._receive, bytes(data))

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def _receive(self, data: bytes) -> None:
        if self._closing:
            return
        if self._paused or self._held:  # behind what is already waiting: order is kept
            self._held.append(data)
        else:
            self._protocol.data_received(data)

    def pause_reading(self) -> None:
        self._paused = True

    def resume_reading(self) -> None:
        self._paused = False
        self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        """Deliver what was held, in order, until reading is paused again; then the end
        of file, if it came meanwhile."""
        while self._held and not self._paused and not self._closing:
            self._protocol.data_received(self._held.pop(0))
        if not self._held and self._eof_held and not self._paused:
            self._eof_held = False
            self._end_of_file()

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def close(self) -> None:
        """Close this end: the peer reads what was written so far, then the end of file."""
        if self._closing:
            return
        self._closing = True
        self._held.clear()
        self._loop.call_soon(self._protocol.connection_lost, None)
        self._loop.call_soon(self.peer._end_of_file)

    abort = close  # nothing is buffered on this side: aborting and closing are the same

    def _end_of_file(self) -> None:
        if self._held or self._paused:
            self._eof_held = True  # after the data still held
            return
        if not self._closing and not self._protocol.eof_received():
            self.close()

    def is_closing(self) -> bool:
        return self._closing

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self._loop.call_soon(self.peer._end_of_file)

    def get_write_buffer_size(self) -> int:
        return 0  # written bytes are handed on at once: nothing waits here

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        assert isinstance(protocol, asyncio.Protocol)
        self._protocol = protocol

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol


def connect(client: asyncio.Protocol, server: asyncio.Protocol, address: tuple[str, int]) -> None:
    """Join `client` to `server` (listening at `address`) with a pair of pipes."""
    caller = ("127.0.0.1", 0)  # the caller's address, as a component sees it
    there, here = Pipe(server, address, caller), Pipe(client, caller, address)
    here.peer, there.peer = there, here
    server.connection_made(there)
    client.connection_made(here)
