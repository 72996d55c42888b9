"""The HTTP client's own connections: pipes, the pool, and replies of every shape."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from yarl import URL

from labsim.core import connections, http, loop
from labsim.core.clock import RealClock
from labsim.core.connections import Pool
from labsim.core.http import DownstreamError, HttpClient
from labsim.core.pipe import Pipe, connect

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.events: list[object] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def eof_received(self) -> None:
        self.events.append("eof")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append("lost")


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_pipe_delivers_in_order_then_the_end_of_file():
    client, server = Recorder(), Recorder()
    connect(client, server, ("127.0.0.1", 5000))
    assert client.transport and server.transport
    assert server.transport.get_extra_info("sockname") == ("127.0.0.1", 5000)
    client.transport.write(b"one ")
    client.transport.writelines([b"two ", b"three"])
    client.transport.close()
    client.transport.write(b"after close")  # goes nowhere, as on a closed socket
    await turns()
    assert server.events == [b"one ", b"two three", "eof", "lost"]
    assert client.events == ["lost"]
    assert server.transport.is_closing() and client.transport.is_closing()


async def test_a_paused_pipe_holds_what_arrives_until_resumed():
    client, server = Recorder(), Recorder()
    connect(client, server, ("127.0.0.1", 5000))
    assert client.transport and server.transport
    server.transport.pause_reading()
    client.transport.write(b"held")
    await turns()
    assert server.events == [] and not server.transport.is_reading()
    server.transport.resume_reading()
    await turns()
    assert server.events == [b"held"]


@pytest.fixture
async def hello() -> AsyncIterator[tuple[str, web.AppRunner]]:
    """An aiohttp server on a free port: /hello, /big (chunked), /close, /slow."""

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"hello": request.headers.get("X-Test", "")})

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no length: sent chunked
        await response.prepare(request)
        for _ in range(4):
            await response.write(b"x" * 1000)
        await response.write_eof()
        return response

    async def close(request: web.Request) -> web.Response:
        return web.Response(text="bye", headers={"Connection": "close"})

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/big", big)
    app.router.add_get("/close", close)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", runner
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    client = HttpClient(RealClock(), pool_size=2)
    yield client
    await client.close()


async def test_replies_of_every_shape_are_read_whole(hello, client):
    url, _ = hello
    reply = await client.request("hello", "GET", f"{url}/hello", headers={"X-Test": "é"})
    assert reply.object() == {"hello": "é"}
    head = await client.request("hello", "HEAD", f"{url}/hello")
    assert head.status == 200 and head.body == b"" and head.headers["Content-Length"]
    chunked = await client.request("hello", "GET", f"{url}/big")
    assert chunked.body == b"x" * 4000
    closing = await client.request("hello", "GET", f"{url}/close")
    assert closing.body == b"bye"
    again = await client.request("hello", "GET", f"{url}/hello")  # after HEAD and a close
    assert again.status == 200


async def test_a_reply_past_the_limit_is_a_failed_call(hello, client, monkeypatch):
    url, _ = hello
    monkeypatch.setattr(http, "MAX_REPLY", 3000)
    with pytest.raises(DownstreamError, match="larger than 3,000 bytes") as e:
        await client.request("hello", "GET", f"{url}/big")
    assert e.value.status == 502 and not e.value.refused


async def test_a_refused_connection_says_so_and_a_line_break_never_leaves(hello, client):
    url, runner = hello
    with pytest.raises(DownstreamError, match="hello failed: header 'X-Test' has a line break"):
        await client.request("hello", "GET", f"{url}/hello", headers={"X-Test": "a\r\nX-Evil: 1"})
    await runner.cleanup()
    with pytest.raises(DownstreamError, match="hello unreachable") as e:
        await client.request("hello", "GET", f"{url}/hello")
    assert e.value.refused


async def raw_server(handle: RawHandler) -> tuple[str, asyncio.Server]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", server


async def test_an_interim_answer_is_skipped_and_a_garbled_one_fails(client):
    async def continues(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def garbled(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    url, server = await raw_server(continues)
    async with server:
        reply = await client.request("odd", "GET", f"{url}/")
        assert (reply.status, reply.body) == (200, b"ok")
    url, server = await raw_server(garbled)
    async with server:
        with pytest.raises(DownstreamError, match="odd failed"):
            await client.request("odd", "GET", f"{url}/")


async def test_a_server_that_hangs_up_without_answering_is_a_failed_call(client):
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    url, server = await raw_server(hang_up)
    async with server:
        with pytest.raises(DownstreamError, match="gone failed") as e:
            await client.request("gone", "GET", f"{url}/")
        assert not e.value.refused


async def test_the_pool_keeps_its_limit_and_serves_waiters_first_come_first_served(hello):
    _, runner = hello
    assert runner.server is not None
    # Over pipes to the server: the address is only a name.
    pool = Pool(("127.0.0.1", 1), 2, 5.0, 1.0, auto_decompress=True, server=runner.server)
    first, second = await pool.acquire(), await pool.acquire()
    assert pool.must_wait()
    order: list[str] = []

    async def wait(name: str) -> None:
        protocol = await pool.acquire()
        order.append(name)
        pool.release(protocol, reusable=True)

    waiters = [asyncio.create_task(wait(name)) for name in ("a", "b", "c")]
    await turns()
    waiters[1].cancel()  # one gives up while waiting: its place is not lost
    await turns()
    assert order == []
    pool.release(first, reusable=True)
    pool.release(second, reusable=False)  # closed, not kept
    await asyncio.gather(waiters[0], waiters[2])
    assert order == ["a", "c"] and waiters[1].cancelled()
    assert not pool.must_wait()
    assert second.transport is None  # closed
    reused = await pool.acquire()
    assert reused is first  # the idle one is reused
    pool.release(reused, reusable=True)
    pool.close()
    assert first.transport is None


async def test_an_idle_connection_past_its_keepalive_is_not_reused(hello):
    url, _ = hello
    address = (URL(url).host or "", URL(url).port or 0)
    pool = Pool(address, 1, 0.0, 1.0, auto_decompress=True)  # over TCP
    first = await pool.acquire()
    pool.release(first, reusable=True)
    second = await pool.acquire()
    assert second is not first and first.transport is None
    pool.release(second, reusable=False)


async def test_an_idle_pipe_stays_open_past_both_keepalives():
    # The server's idle timer and the pool's keepalive run on wall time, a pipe's run on
    # the virtual clock: an expiry would cost a new connection for nothing.
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/hello", hello)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=0.01)
    await runner.setup()
    try:
        assert runner.server is not None
        pool = Pool(("127.0.0.1", 1), 1, 0.01, 1.0, auto_decompress=True, server=runner.server)
        first = await pool.acquire()
        pool.release(first, reusable=True)
        await asyncio.sleep(0.05)  # past both, in wall time
        again = await pool.acquire()
        assert again is first and again.is_connected()
        pool.release(again, reusable=False)
    finally:
        await runner.cleanup()


async def test_a_pipe_is_what_a_pool_uses_for_a_server_in_this_process(hello):
    _, runner = hello
    assert runner.server is not None
    pool = Pool(("127.0.0.1", 1), 1, 5.0, 1.0, auto_decompress=True, server=runner.server)
    protocol = await pool.acquire()
    assert isinstance(protocol.transport, Pipe)
    pool.release(protocol, reusable=False)


def test_the_collector_is_tuned_only_while_a_virtual_run_lasts():
    before = gc.get_threshold()
    seen: list[tuple[int, ...]] = []

    async def main() -> None:
        seen.append(gc.get_threshold())

    loop.run(main(), virtual=True)
    assert seen == [loop.VIRTUAL_GC_THRESHOLD]
    assert gc.get_threshold() == before


async def test_a_connection_that_never_opens_gives_up_after_the_connect_timeout(monkeypatch):
    async def never(*args, **kwargs):
        await asyncio.Event().wait()

    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", never)
    client = HttpClient(RealClock(), connect_timeout=0.05)
    with pytest.raises(DownstreamError, match=r"far unreachable: no connection within 0.05s") as e:
        await client.request("far", "GET", "http://127.0.0.1:9/")
    assert e.value.refused
    await client.close()


async def test_the_callers_host_wins_and_a_reply_without_length_ends_at_hang_up(client):
    heads: list[bytes] = []

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    url, server = await raw_server(until_close)
    async with server:
        headers = {"Host": "lab.example", "Content-Length": "99"}
        reply = await client.request("odd", "POST", f"{url}/", headers=headers, data=b"ab")
    assert reply.body == b"all of it"
    assert b"Host: lab.example\r\n" in heads[0] and heads[0].count(b"Host:") == 1
    assert b"Content-Length: 2\r\n" in heads[0] and heads[0].count(b"Content-Length") == 1


async def test_a_url_that_is_not_http_is_a_failed_call(client):
    with pytest.raises(DownstreamError, match="x failed: not an http:// or https:// URL"):
        await client.request("x", "GET", "ftp://127.0.0.1/")


async def test_a_paused_pipe_keeps_the_order_and_the_end_of_file_behind_held_data():
    client, server = Recorder(), Recorder()
    connect(client, server, ("127.0.0.1", 5000))
    assert client.transport and server.transport
    client.transport.write(b"1")
    await turns()
    server.transport.pause_reading()
    client.transport.write(b"2")
    await turns()
    client.transport.write(b"3")
    server.transport.resume_reading()  # 3 is already on its way: it must come after 2
    client.transport.write(b"4")
    server.transport.pause_reading()
    client.transport.close()  # the end of file comes while 3 and 4 may still be held
    await turns()
    server.transport.resume_reading()
    await turns()
    assert server.events == [b"1", b"2", b"3", b"4", "eof", "lost"]


async def test_a_reset_after_the_request_went_out_is_not_a_refusal(client):
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.transport.abort()  # a reset: the server had the request

    url, server = await raw_server(reset)
    async with server:
        with pytest.raises(DownstreamError, match="gone failed") as e:
            await client.request("gone", "POST", f"{url}/", data=b"{}")
    assert not e.value.refused  # the load balancer must not send a POST again


async def test_an_upgrade_answer_and_a_host_with_a_line_break_are_failed_calls(client):
    async def upgrade(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(5)  # as a server would, now speaking something else

    url, server = await raw_server(upgrade)
    async with server:
        with pytest.raises(DownstreamError, match="101 Switching Protocols"):
            await client.request("odd", "GET", f"{url}/")
        with pytest.raises(DownstreamError, match="'Host' has a line break"):
            await client.request("odd", "GET", f"{url}/", headers={"Host": "a\r\nX: 1"})


async def test_an_endless_stream_of_interim_answers_ends_the_call_at_once(client):
    # Issue 21: `100 Continue` forever took 1.5 GB and a core until the request timed out.
    sent = 0

    async def continues(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await reader.readuntil(b"\r\n\r\n")
        try:
            while True:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 1000)
                sent += 1000
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # the client hung up: what it should do

    url, server = await raw_server(continues)
    async with server:
        async with asyncio.timeout(5):
            with pytest.raises(DownstreamError, match="more than 10 interim") as e:
                await client.request("odd", "GET", f"{url}/")
    assert e.value.status == 502 and "\n" not in str(e.value)
    assert sent < 200_000  # it stopped reading: the server could not go on for long


async def test_a_pool_opens_so_many_connections_at_once_until_each_is_answered(monkeypatch):
    # Issue 21: 8,000 connections opened at once overflowed the server's kernel queue, which
    # reset some; a connection counts as being opened until an answer comes back on it.
    monkeypatch.setattr(connections, "OPENING", 2)
    unanswered, most, gate = 0, 0, asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal unanswered, most
        unanswered += 1
        most = max(most, unanswered)
        await reader.readuntil(b"\r\n\r\n")
        await gate.wait()
        unanswered -= 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    url, server = await raw_server(slow)
    client = HttpClient(RealClock(), pool_size=10)
    async with server:
        calls = [asyncio.ensure_future(client.request("s", "GET", f"{url}/")) for _ in range(6)]
        while unanswered < 2:  # noqa: ASYNC110  (the server's own count: no event to wait on)
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)  # time enough for a third connection, which must not come
        assert unanswered == 2
        gate.set()
        replies = await asyncio.gather(*calls)
    await client.close()
    assert [r.body for r in replies] == [b"ok"] * 6 and most == 2
