"""The dashboard of a split lab reads the components of other processes over HTTP: once a
tick however many pages watch, each read bounded, and a component that answers nonsense
is shown "unreadable", never a dead stream."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from labsim.components.cluster import Cluster
from labsim.core.clock import RealClock
from labsim.views import dashboard, remote

from .conftest import make_topology
from .test_dashboard import events

FAST_TICK = 0.05
HONEST = (
    'labsim_http_requests_total{component="cache",route="/cache/{key}",status="200"} 5\n'
    'labsim_http_requests_in_flight{component="cache"} 0\n'
    'labsim_cache_hits_total{component="cache"} 4\n'
    'labsim_cache_misses_total{component="cache"} 1\n'
)
FAULTS = {"component": "cache", "faults": {"latency": 0.0, "down": False, "hang": False}}


class Fake:
    """A cache served by "another process": it answers what the test says, and counts."""

    def __init__(self) -> None:
        self.metrics: Callable[[web.Request], Awaitable[web.StreamResponse]] = self.text(HONEST)
        self.faults: Callable[[web.Request], Awaitable[web.StreamResponse]] = self.json(FAULTS)
        self.reads: Counter[str] = Counter()

    @staticmethod
    def text(body: str | bytes) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        data = body.encode() if isinstance(body, str) else body

        async def answer(request: web.Request) -> web.StreamResponse:
            return web.Response(body=data, content_type="text/plain")

        return answer

    @staticmethod
    def json(body: object) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        return Fake.text(json.dumps(body))

    def app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.StreamResponse:
            self.reads["metrics"] += 1
            return await self.metrics(request)

        async def faults(request: web.Request) -> web.StreamResponse:
            self.reads["faults"] += 1
            return await self.faults(request)

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/admin/faults", faults)
        return app


@pytest.fixture
async def split(aiohttp_client, aiohttp_server):
    """split(fake or port) -> (cluster, dashboard client): every component here but the
    cache, which `fake` (or whatever listens on `port`) serves."""
    started: list[Cluster] = []

    async def start(fake: Fake | int):
        port = fake if isinstance(fake, int) else (await aiohttp_server(fake.app())).port
        topology = make_topology({"cache": {"port": port}})
        here = frozenset(topology.ports()) - {"cache"}
        cluster = Cluster(topology, RealClock(), ephemeral=True, only=here)
        await cluster.start()
        started.append(cluster)
        return cluster, await aiohttp_client(dashboard.make_app(cluster, interval=FAST_TICK))

    yield start
    for cluster in started:
        await cluster.stop()


async def cache_states(client, ticks: int = 3, limit: float = 5) -> list[dict]:
    """The cache as each of `ticks` snapshots shows it: the stream must keep going."""
    resp = await client.get("/api/events")
    seen = []
    async with asyncio.timeout(limit):
        async for name, data in events(resp):
            assert name == "snapshot"
            seen.append(data["components"]["cache"])
            if len(seen) == ticks:
                break
    resp.close()
    assert len(seen) == ticks, "the stream ended"
    return seen


async def test_an_honest_remote_component_is_read(split):
    fake = Fake()
    _, client = await split(fake)
    cache = (await cache_states(client))[-1]
    assert cache["state"] == "up" and "problem" not in cache
    assert (cache["requests"], cache["hits"], cache["misses"]) == (5, 4, 1)


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('labsim_cache_hits_total{component="cache"} NaN', "labsim_cache_hits_total"),
        ('labsim_cache_hits_total{component="cache"} +Inf', "labsim_cache_hits_total"),
        ('labsim_cache_hits_total{component="cache"} 1e400', "labsim_cache_hits_total"),
        ("labsim_cache_misses_total " + "9" * 400, "labsim_cache_misses_total"),
        ('labsim_http_requests_total{route="/x",status="500"} -Inf', "labsim_http_requests_total"),
        ('labsim_http_request_duration_seconds_sum{component="cache"} NaN', "duration"),
    ],
)
async def test_numbers_that_are_no_counts_make_it_unreadable_and_the_stream_goes_on(
    split, line, why
):
    fake = Fake()
    fake.metrics = Fake.text(HONEST + line + "\n")
    _, client = await split(fake)
    for cache in await cache_states(client):
        assert cache["state"] == "unreadable" and why in cache["problem"]
        assert cache["requests"] == 0 and cache["hits"] == 0  # nothing of it is shown


async def test_non_ascii_labels_are_read_and_odd_statuses_not_counted(split):
    fake = Fake()
    odd = (
        'labsim_http_requests_total{component="cache",route="/é",status="²00"} 7\n'
        # 500 in Arabic-Indic digits
        'labsim_http_requests_total{component="cache",route="/ü",status="\u0665\u0660\u0660"} 7\n'
        'labsim_cache_hits_total{component="cache",ключ="значение"} 2\n'
    )
    fake.metrics = Fake.text(HONEST + odd)
    _, client = await split(fake)
    cache = (await cache_states(client))[-1]
    assert cache["state"] == "up"
    assert (cache["requests"], cache["hits"]) == (5, 6)  # the statuses no digits: not counted


@pytest.mark.parametrize(
    ("faults", "why"),
    [
        (b'{"faults": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", "nests deeper"),
        (json.dumps({"faults": {"x": "a" * 15_700_000}}).encode(), "larger than"),
        (b'{"faults": {"down": "yes"}}', "down must be true or false"),
        (b'{"faults": {"latency": 1e400}}', "latency must be a number"),
        (b'{"faults": [1, 2]}', "no faults object"),
        (b"\xff\xfe not json", "not JSON"),
    ],
)
async def test_nonsense_faults_make_it_unreadable(split, faults, why):
    fake = Fake()
    fake.faults = Fake.text(faults)
    _, client = await split(fake)
    for cache in await cache_states(client):
        assert cache["state"] == "unreadable" and why in cache["problem"], cache["problem"]
        assert cache["faults"] == {}


async def test_faults_it_will_not_show_are_none_and_the_metrics_still_count(split):
    fake = Fake()

    async def refused(request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "bad token"}, status=401)

    fake.faults = refused
    _, client = await split(fake)
    cache = (await cache_states(client))[-1]
    assert cache["state"] == "up" and cache["faults"] == {} and cache["hits"] == 4


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    line = b'labsim_cache_hits_total{component="cache"} 1\n' * 1000
    for _ in range(15_000_000 // len(line)):
        await response.write(line)
    return response


@pytest.mark.parametrize("sent", ["with its length", "in chunks"])
async def test_metrics_past_the_size_limit_are_unreadable(split, sent):
    fake = Fake()
    big = 'labsim_cache_hits_total{component="cache"} 1\n' * (15_000_000 // 44)
    fake.metrics = Fake.text(big) if sent == "with its length" else _chunked
    _, client = await split(fake)
    cache = (await cache_states(client, ticks=2))[-1]
    assert cache["state"] == "unreadable"
    assert cache["problem"] == f"/metrics is larger than {remote.MAX_METRICS:,} bytes"


async def test_an_endless_stream_of_100_continue_is_unreadable_at_once(split):
    writes = 0

    async def continues(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal writes
        await reader.readuntil(b"\r\n\r\n")
        try:
            while True:
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)
                writes += 100
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(continues, "127.0.0.1", 0)
    try:
        _, client = await split(server.sockets[0].getsockname()[1])
        cache = (await cache_states(client, ticks=2, limit=remote.READ_TIMEOUT))[-1]
    finally:
        server.close()
    assert cache["state"] == "unreadable"
    many = f"more than {remote.MAX_INTERIM} interim (1xx) answers"
    assert cache["problem"] == f"/metrics sent {many}"


async def test_a_component_that_does_not_answer_in_time_is_down(split, monkeypatch):
    monkeypatch.setattr(remote, "READ_TIMEOUT", 0.05)
    held = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # says nothing, closes nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        _, client = await split(server.sockets[0].getsockname()[1])
        cache = (await cache_states(client, ticks=2))[-1]
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert cache["state"] == "down"


async def test_three_pages_cost_one_read_a_tick(split):
    fake = Fake()
    _, client = await split(fake)
    pages = [events(await client.get("/api/events")) for _ in range(3)]
    ticks = 6
    seen = [[(await anext(page))[1] for _ in range(ticks)] for page in pages]
    # Every page is shown the same snapshots: one reading a tick, shared.
    reads = fake.reads["metrics"]
    assert ticks <= reads <= ticks + 3, reads
    assert fake.reads["faults"] == reads
    assert all(len(page) == ticks for page in seen)
