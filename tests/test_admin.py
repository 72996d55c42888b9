"""The fault API on every component's own port, and what each fault does."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from labsim.core.clock import VirtualClock
from labsim.core.http import HttpClient

from .conftest import eventually
from .test_components import COMPONENTS


def admin_headers(cluster) -> dict:
    return {"Authorization": f"Bearer {cluster.topology.admin_token}"}


@pytest.mark.parametrize("component", COMPONENTS)
async def test_every_component_has_the_fault_api(cluster, http, component):
    url = cluster.urls[component]
    headers = admin_headers(cluster)
    async with http.get(f"{url}/admin/faults", headers=headers) as resp:
        assert await resp.json() == {
            "component": component,
            "faults": {"latency": 0, "jitter": 0, "error_rate": 0, "down": False, "hang": False},
        }
    async with http.post(f"{url}/admin/faults", json={"latency": 0.5}, headers=headers) as resp:
        assert (await resp.json())["faults"]["latency"] == 0.5
    async with http.post(f"{url}/admin/reset", headers=headers) as resp:
        assert (await resp.json())["faults"]["latency"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "not-even-bearer"},
        {"Authorization": "Bearer é-not-ascii"},
    ],
    ids=["none", "wrong", "malformed", "not-ascii"],
)
@pytest.mark.parametrize(("method", "path"), [("GET", "/admin/faults"), ("POST", "/admin/reset")])
async def test_the_fault_api_needs_the_admin_token(cluster, http, headers, method, path):
    async with http.request(method, cluster.urls["cache"] + path, headers=headers) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "admin token required" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "body must be a JSON object"),
        ([], "body must be a JSON object"),
        ({"melt": True}, "unknown fault 'melt'"),
        ({"latency": -1}, "latency must be a number from 0 to 1,000,000,000"),
        ({"jitter": 1e12}, "jitter must be a number from 0 to 1,000,000,000"),
        ({"error_rate": 1.5}, "error_rate must be from 0 to 1"),
        ({"down": "yes"}, "down must be true or false"),
    ],
)
async def test_bad_fault_changes_are_400(cluster, http, body, problem):
    headers = admin_headers(cluster)
    async with http.post(f"{cluster.urls['cache']}/admin/faults", json=body, headers=headers) as r:
        assert r.status == 400
        assert problem in (await r.json())["error"]


async def test_faults_show_in_the_next_requests(start_cluster):
    clock = VirtualClock()
    cluster = await start_cluster({"database": {"latency": 0.1}}, clock)
    client = HttpClient(clock)
    db = cluster.urls["database"]
    headers = admin_headers(cluster)

    async def timed() -> tuple[int, float]:
        started = clock.now()
        reply = await client.request("database", "GET", f"{db}/db", check=False)
        return reply.status, round(clock.now() - started, 6)

    async def scenario() -> list:
        seen = [await timed()]
        await client.request(
            "database", "POST", f"{db}/admin/faults", headers=headers, json_body={"latency": 0.4}
        )
        seen.append(await timed())
        await client.request(
            "database", "POST", f"{db}/admin/faults", headers=headers, json_body={"error_rate": 1}
        )
        seen.append(await timed())
        await client.request("database", "POST", f"{db}/admin/reset", headers=headers)
        seen.append(await timed())
        return seen

    try:
        seen = await clock.run(scenario())
    finally:
        await client.close()
    assert seen == [(200, 0.1), (200, 0.5), (500, 0.0), (200, 0.1)]
    assert cluster.counters("database")["db_calls"] == 3  # the 500 never reached the handler


async def test_a_down_component_drops_connections_but_keeps_its_admin_api(cluster, http):
    headers = admin_headers(cluster)
    cache = cluster.urls["cache"]
    async with http.post(f"{cache}/admin/faults", json={"down": True}, headers=headers):
        pass
    with pytest.raises(Exception, match="Server disconnected"):
        async with http.get(f"{cache}/cache/k"):
            pass
    async with http.post(f"{cache}/admin/reset", headers=headers) as resp:
        assert resp.status == 200
    async with http.get(f"{cache}/cache/k") as resp:
        assert await resp.json() == {"value": None}


async def test_a_dropped_connection_is_counted_apart_from_the_answers(cluster, http, caplog):
    caplog.set_level(logging.INFO, logger="labsim")
    ctx = cluster.components["cache"].context
    cache = cluster.urls["cache"]
    async with http.get(f"{cache}/cache/k") as resp:  # one answer, on a kept-alive connection
        assert resp.status == 200
    async with http.post(
        f"{cache}/admin/faults", json={"down": True}, headers=admin_headers(cluster)
    ):
        pass
    answered = dict(ctx.requests)
    timed, spent = ctx.latency.count, dict(ctx.seconds)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(f"{cache}/cache/k"):
            pass
    # aiohttp (3.10 on) sends a GET once more when a connection drops: then two are dropped.
    assert set(ctx.dropped) == {("/cache/{key}", "down")}
    assert ctx.dropped["/cache/{key}", "down"] in (1, 2)
    assert dict(ctx.requests) == answered  # not a 503 served
    assert (ctx.latency.count, dict(ctx.seconds)) == (timed, spent)
    lines = [r.getMessage() for r in caplog.records if "GET /cache/k" in r.getMessage()]
    assert lines[0].split()[-2] == "200"
    assert [line.split(" /cache/k ")[1].rsplit(" ", 1)[0] for line in lines[1:]] == [
        "dropped (down: connection closed, no answer)"
    ] * ctx.dropped["/cache/{key}", "down"]


async def test_a_hung_request_whose_caller_left_is_not_counted_as_answered(cluster, http, caplog):
    caplog.set_level(logging.INFO, logger="labsim")
    ctx = cluster.components["database"].context
    db = cluster.urls["database"]
    async with http.post(f"{db}/admin/faults", json={"hang": True}, headers=admin_headers(cluster)):
        pass

    async def call() -> None:
        async with http.get(f"{db}/db"):
            pass

    caller = asyncio.create_task(call())
    await eventually(lambda: ctx.in_flight == 1)
    caller.cancel()  # the caller gives up, as the load balancer does after its timeout
    with pytest.raises(asyncio.CancelledError):
        await caller
    async with http.post(f"{db}/admin/reset", headers=admin_headers(cluster)):
        pass
    await eventually(lambda: ctx.in_flight == 0)
    assert ctx.dropped == {("/db", "caller_gone"): 1}
    assert not [key for key in ctx.requests if key[0] == "/db"]
    line = next(r.getMessage() for r in caplog.records if "GET /db" in r.getMessage())
    assert "GET /db dropped (caller gone before the answer) " in line


async def test_in_flight_counts_the_work_being_served_not_reports(cluster, http):
    ctx = cluster.components["database"].context
    db = cluster.urls["database"]
    async with http.post(f"{db}/admin/faults", json={"hang": True}, headers=admin_headers(cluster)):
        pass
    calls = [asyncio.create_task(http.get(f"{db}{path}")) for path in ("/db", "/db", "/health")]
    await eventually(lambda: ctx.in_flight == 2)
    async with http.post(f"{db}/admin/reset", headers=admin_headers(cluster)):
        pass
    for call in calls:
        (await call).release()
    assert ctx.in_flight == 0
    assert ctx.requests[("/db", 200)] == 2 and not ctx.dropped


async def test_on_the_virtual_clock_a_caller_that_gave_up_is_known_in_simulated_time(
    start_cluster,
):
    clock = VirtualClock()
    cluster = await start_cluster({"database": {"latency": 2.0}}, clock=clock)
    client = HttpClient(clock)

    async def main() -> None:
        with pytest.raises(TimeoutError):
            async with clock.timeout(1):
                await client.request("test", "GET", cluster.urls["database"] + "/db")
        await clock.sleep(2)  # the database finishes its 2 s meanwhile, for nobody

    try:
        await clock.run(main())
    finally:
        await client.close()
    ctx = cluster.components["database"].context
    assert ctx.dropped == {("/db", "caller_gone"): 1}
    assert not [key for key in ctx.requests if key[0] == "/db"]
