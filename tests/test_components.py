"""Every component directly on its own port: health, its endpoints, its JSON errors."""

from __future__ import annotations

import asyncio
import time

import pytest

from labsim.core.clock import VirtualClock
from labsim.core.http import HttpClient

COMPONENTS = [
    "load-balancer",
    "gateway-5000",
    "gateway-5003",
    "gateway-5006",
    "cache",
    "database",
    "worker",
    "microservice",
]


@pytest.mark.parametrize("component", COMPONENTS)
async def test_health(cluster, http, component):
    async with http.get(f"{cluster.urls[component]}/health") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ok" and body["component"] == component


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c != "load-balancer"])
async def test_unknown_path_is_json_404(cluster, http, component):
    async with http.get(f"{cluster.urls[component]}/no/such/thing") as resp:
        assert resp.status == 404
        assert resp.content_type == "application/json"
        assert await resp.json() == {"error": "not found: GET /no/such/thing"}


@pytest.mark.parametrize("component", [c for c in COMPONENTS if c != "load-balancer"])
async def test_wrong_method_is_json_405(cluster, http, component):
    async with http.delete(f"{cluster.urls[component]}/health") as resp:
        assert resp.status == 405
        assert "GET" in resp.headers["Allow"]
        assert (await resp.json())["error"] == "method DELETE not allowed on /health"


@pytest.mark.parametrize(
    ("component", "path"),
    [("cache", "/cache/k"), ("worker", "/task"), ("gateway-5000", "/login")],
)
async def test_malformed_json_is_400(cluster, http, component, path):
    headers = {"Content-Type": "application/json"}
    async with http.post(cluster.urls[component] + path, data=b"{oops", headers=headers) as resp:
        assert resp.status == 400
        assert "not valid JSON" in (await resp.json())["error"]


async def test_database_answers_and_counts(cluster, http):
    for _ in range(2):
        async with http.get(f"{cluster.urls['database']}/db") as resp:
            assert await resp.json() == {"message": "Fetched fresh data from DB"}
    async with http.get(f"{cluster.urls['database']}/health") as resp:
        assert (await resp.json())["counters"]["db_calls"] == 2


async def test_microservice(cluster, http):
    async with http.get(f"{cluster.urls['microservice']}/process") as resp:
        assert await resp.json() == {
            "message": "Business logic executed",
            "service_id": "microservice",
        }


async def test_cache_get_set_and_default_ttl(cluster, http):
    url = f"{cluster.urls['cache']}/cache/greeting"
    async with http.get(url) as resp:
        assert await resp.json() == {"value": None}
    async with http.post(url, json={"value": {"any": ["json"]}}) as resp:
        assert await resp.json() == {"status": "ok", "expires_in": 120}
    async with http.get(url) as resp:
        assert await resp.json() == {"value": {"any": ["json"]}}


@pytest.mark.parametrize(
    ("body", "problem"),
    [({"ttl": 5}, '"value"'), ({"value": 1, "ttl": -1}, "ttl"), ({"value": 1, "ttl": "x"}, "ttl")],
)
async def test_cache_rejects_bad_entries(cluster, http, body, problem):
    async with http.post(f"{cluster.urls['cache']}/cache/k", json=body) as resp:
        assert resp.status == 400
        assert problem in (await resp.json())["error"]


async def test_cache_ttl_expires_on_the_clock(start_cluster):
    clock = VirtualClock()
    cluster = await start_cluster(clock=clock)
    client = HttpClient(clock)
    url = f"{cluster.urls['cache']}/cache/k"

    async def scenario() -> list:
        seen = []
        await client.request("cache", "POST", url, json_body={"value": "v", "ttl": 30})
        for wait in (29.9, 0.2):
            await clock.sleep(wait)
            seen.append((clock.now(), (await client.request("cache", "GET", url)).json()))
        await client.request("cache", "POST", url + "2", json_body={"value": "w"})
        return seen

    try:
        seen = await clock.run(scenario())
    finally:
        await client.close()
    assert seen == [(29.9, {"value": "v"}), (30.1, {"value": None})]
    assert cluster.counters("cache")["expirations"] == 1  # dropped when the cache next wrote


async def test_cache_is_bounded_and_drops_the_least_recently_used(start_cluster, http):
    cluster = await start_cluster({"cache": {"maxsize": 2}})
    cache = cluster.urls["cache"]

    async def get(key: str) -> object:
        async with http.get(f"{cache}/cache/{key}") as resp:
            return (await resp.json())["value"]

    for key in "ab":
        async with http.post(f"{cache}/cache/{key}", json={"value": key}):
            pass
    assert await get("a") == "a"  # read: "b" is now the least recently used
    async with http.post(f"{cache}/cache/c", json={"value": "c"}):
        pass
    assert [await get(key) for key in "abc"] == ["a", None, "c"]
    async with http.get(f"{cache}/health") as resp:
        assert (await resp.json())["size"] == 2


async def test_worker_runs_tasks_concurrently_and_reports_state(start_cluster):
    clock = VirtualClock()
    cluster = await start_cluster({"worker": {"task_duration": 5, "concurrency": 10}}, clock)
    client = HttpClient(clock)
    base = cluster.urls["worker"]

    async def scenario() -> tuple:
        ids = [
            (await client.request("worker", "POST", f"{base}/task", json_body={})).json()["task_id"]
            for _ in range(3)
        ]
        await clock.sleep(4.9)
        mid = [(await client.request("worker", "GET", f"{base}/task/{i}")).json() for i in ids]
        await clock.sleep(0.2)
        end = [(await client.request("worker", "GET", f"{base}/task/{i}")).json() for i in ids]
        return mid, end

    try:
        mid, end = await clock.run(scenario())
    finally:
        await client.close()
    assert [t["state"] for t in mid] == ["running"] * 3
    assert [t["state"] for t in end] == ["done"] * 3
    # Times are wall-clock (Unix epoch seconds), as a client reads them beside its own
    # clock; the durations between them are the shared clock's, simulated here.
    assert all(abs(t["submitted_at"] - time.time()) < 60 for t in end)
    assert all(t["finished_at"] - t["started_at"] == pytest.approx(5.0, abs=0.002) for t in end)


async def test_worker_unknown_task_is_404(cluster, http):
    async with http.get(f"{cluster.urls['worker']}/task/task-999") as resp:
        assert resp.status == 404
        assert "task-999" in (await resp.json())["error"]


async def test_worker_reports_unfinished_tasks_on_shutdown(start_cluster, http, caplog):
    cluster = await start_cluster({"worker": {"task_duration": 60, "concurrency": 1}})
    for _ in range(2):
        async with http.post(f"{cluster.urls['worker']}/task", json={}) as resp:
            assert resp.status == 202
    await asyncio.sleep(0.01)
    await cluster.stop()
    assert "2 task(s) unfinished at shutdown (1 running, 1 queued): task-1, task-2" in caplog.text


async def test_request_id_travels_through_every_hop(start_cluster, http, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="labsim")
    cluster = await start_cluster()
    async with http.post(
        f"{cluster.url}/login", json={"username": "user1", "password": "password123"}
    ) as resp:
        token = (await resp.json())["token"]
    headers = {"Authorization": token, "X-Request-Id": "trace-me-42"}
    async with http.get(f"{cluster.url}/data", headers=headers) as resp:
        assert resp.headers["X-Request-Id"] == "trace-me-42"
    lines = [r.getMessage() for r in caplog.records if "trace-me-42" in r.getMessage()]
    hops = {line.split()[0] for line in lines}
    assert hops == {"load-balancer", "cache", "database", resp.headers["X-Served-By"]}
    assert len(lines) == 5  # cache read, database, cache write, gateway, load balancer


async def test_first_hop_creates_a_request_id(cluster, http):
    async with (
        http.get(f"{cluster.url}/health") as first,
        http.get(f"{cluster.url}/health") as second,
    ):
        assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]
