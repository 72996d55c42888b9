"""The dashboard's steered load over its HTTP API, in-process on the real clock: start,
change the rate, stop; what it refuses; its figures against the load balancer's own."""

from __future__ import annotations

import asyncio

import pytest

from labsim.views import dashboard
from labsim.views.steering import MAX_RATE

from .conftest import eventually
from .test_dashboard import FAST_TICK, admin, events, open_dashboard  # noqa: F401


async def figures(client) -> dict:
    resp = await client.get("/api/load")
    assert resp.status == 200
    return await resp.json()


async def until(client, test, limit: float = 5.0) -> dict:
    """The load's figures once `test(figures)` holds, asked every few milliseconds."""
    async with asyncio.timeout(limit):
        while True:
            seen = await figures(client)
            if test(seen):
                return seen
            await asyncio.sleep(0.02)


def served(cluster, path: str) -> dict[int, int]:
    """Requests for `path` the gateways answered, by status (the load balancer's one
    route takes every path)."""
    by_status: dict[int, int] = {}
    for gateway in cluster.topology.gateway_ids():
        for (route, status), n in cluster.components[gateway].context.requests.items():
            if route == path:
                by_status[status] = by_status.get(status, 0) + n
    return by_status


def lb_requests(cluster, path: str) -> int:
    return sum(served(cluster, path).values())


async def test_start_change_the_rate_and_stop(open_dashboard):  # noqa: F811
    cluster, client = await open_dashboard()
    idle = await figures(client)
    assert idle["running"] is False
    assert idle["limits"] == {
        "max_rate": MAX_RATE,
        "max_in_flight": 256,
        "window_s": 5.0,
        "endpoints": ["data", "longtask", "process"],
        "flows": [],  # the scenario's `[[load.flows]]`: none here
    }
    body = {"rate": 100, "mix": {"data": 1, "/data?key=3": 1}, "seed": 9}
    resp = await client.post("/api/load/start", json=body, headers=admin(cluster))
    assert resp.status == 200
    started = await resp.json()
    assert started["running"] and started["rate"] == 100 and started["seed"] == 9
    assert started["mix"] == {"data": 1.0, "/data?key=3": 1.0}
    await until(client, lambda f: f["answered"] >= 20 and f["p99_ms"] is not None)

    resp = await client.post("/api/load/rate", json={"rate": 0}, headers=admin(cluster))
    assert resp.status == 200 and (await resp.json())["rate"] == 0
    paused = await until(client, lambda f: f["in_flight"] == 0)
    await asyncio.sleep(0.2)
    assert (await figures(client))["sent"] == paused["sent"]  # nothing sent at a rate of 0

    resp = await client.post("/api/load/rate", json={"rate": 200.5}, headers=admin(cluster))
    assert (await resp.json())["rate"] == 200.5
    await until(client, lambda f: f["sent"] >= paused["sent"] + 20)

    resp = await client.post("/api/load/stop", headers=admin(cluster))
    assert resp.status == 200
    done = await resp.json()
    assert done["running"] is False and done["in_flight"] == 0
    assert done["sent"] == done["answered"] + done["cut"]
    assert done["failed"] == 0 and done["dropped"] == 0 and done["arrived"] == done["sent"]
    # The load balancer saw what the load sent: each answered request, and the login.
    assert lb_requests(cluster, "/data") == done["answered"]
    assert lb_requests(cluster, "/login") == 1
    await asyncio.sleep(0.1)
    assert (await figures(client))["sent"] == done["sent"]  # nothing after the stop

    # Another start is a new load: its own figures from 0.
    resp = await client.post("/api/load/start", json={"rate": 1}, headers=admin(cluster))
    assert resp.status == 200 and (await resp.json())["mix"] == {"data": 1.0}
    assert (await client.post("/api/load/stop", headers=admin(cluster))).status == 200


async def test_the_event_stream_carries_the_load_s_figures(open_dashboard):  # noqa: F811
    cluster, client = await open_dashboard()
    stream = events(await client.get("/api/events"))
    _, first = await anext(stream)
    assert first["load"] == {"running": False}
    resp = await client.post("/api/load/start", json={"rate": 50}, headers=admin(cluster))
    assert resp.status == 200
    async with asyncio.timeout(5):
        async for _, data in stream:
            if data["load"]["answered"] >= 5:
                break
    assert data["load"]["running"] and data["load"]["rate"] == 50
    await client.post("/api/load/stop", headers=admin(cluster))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"rate": -1}, "rate must be a number"),
        ({"rate": "10"}, "rate must be a number"),
        ({"rate": True}, "rate must be a number"),
        ({"rate": None}, "rate must be a number"),
        ({}, 'body must be {"rate": R'),
        ([10], 'body must be {"rate": R'),
        ({"rate": 1, "flow": "browse"}, "no flow 'browse' (the scenario has no"),
        ({"rate": 1, "speed": 2}, "unknown key 'speed' (known: rate, mix, flow, seed, auth)"),
        ({"rate": 1, "mix": {}}, "mix must be an object"),
        ({"rate": 1, "mix": ["data"]}, "mix must be an object"),
        ({"rate": 1, "mix": {"db": 1}}, "'db' is neither an endpoint"),
        ({"rate": 1, "mix": {"nope": 1}}, "'nope' is neither"),
        ({"rate": 1, "mix": {"/a b": 1}}, "is neither"),
        ({"rate": 1, "mix": {"//evil.example/": 1}}, "is neither"),
        ({"rate": 1, "mix": {"/" + "a" * 200: 1}}, "is neither"),
        ({"rate": 1, "mix": {f"/{i}": 1 for i in range(17)}}, "at most 16"),
        ({"rate": 1, "mix": {"data": 0}}, "at least one weight"),
        ({"rate": 1, "mix": {"data": -1}}, "the weight of 'data'"),
        ({"rate": 1, "seed": -1}, "seed must be"),
        ({"rate": 1, "seed": 1.5}, "seed must be"),
        ({"rate": 1, "auth": "root"}, "auth must be one of"),
    ],
)
async def test_bad_starts_are_400(open_dashboard, body, problem):  # noqa: F811
    cluster, client = await open_dashboard()
    resp = await client.post("/api/load/start", json=body, headers=admin(cluster))
    assert resp.status == 400
    assert problem in (await resp.json())["error"]
    assert (await figures(client))["running"] is False


@pytest.mark.parametrize("raw", [b'{"rate": NaN}', b'{"rate": Infinity}', b'{"rate": 1e999}'])
async def test_a_rate_that_is_no_number_is_400(open_dashboard, raw):  # noqa: F811
    cluster, client = await open_dashboard()
    headers = admin(cluster) | {"Content-Type": "application/json"}
    resp = await client.post("/api/load/start", data=raw, headers=headers)
    assert resp.status == 400 and "rate must be a number" in (await resp.json())["error"]


@pytest.mark.parametrize("path", ["/api/load/start", "/api/load/rate"])
async def test_a_rate_of_400_digits_is_refused_not_a_500(open_dashboard, path):  # noqa: F811
    # Past a float's range: comparing it as one would raise OverflowError.
    cluster, client = await open_dashboard()
    headers = admin(cluster) | {"Content-Type": "application/json"}
    if path.endswith("rate"):
        await client.post("/api/load/start", json={"rate": 1}, headers=admin(cluster))
    resp = await client.post(path, data=b'{"rate": 1' + b"0" * 400 + b"}", headers=headers)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error.startswith("rate 10000000000000000000.../s is above the dashboard's limit")
    weight = b'{"rate": 1, "mix": {"data": 1' + b"0" * 400 + b"}}"
    resp = await client.post("/api/load/start", data=weight, headers=headers)
    assert resp.status in (400, 409) and "error" in await resp.json()
    await client.post("/api/load/stop", headers=admin(cluster))


async def test_a_rate_above_the_limit_is_refused_naming_it(open_dashboard):  # noqa: F811
    cluster, client = await open_dashboard()
    too_high = {"rate": MAX_RATE + 0.5}
    resp = await client.post("/api/load/start", json=too_high, headers=admin(cluster))
    assert resp.status == 400
    assert await resp.json() == {
        "error": f"rate {MAX_RATE + 0.5:g}/s is above the dashboard's limit of {MAX_RATE}/s",
        "max_rate": MAX_RATE,
    }
    resp = await client.post("/api/load/start", json={"rate": 5}, headers=admin(cluster))
    assert resp.status == 200
    resp = await client.post("/api/load/rate", json={"rate": 10_000}, headers=admin(cluster))
    assert resp.status == 400 and (await resp.json())["max_rate"] == MAX_RATE
    assert (await figures(client))["rate"] == 5  # unchanged
    for body in ({"rate": "fast"}, {"rate": 5, "mix": {"data": 1}}, {}):
        resp = await client.post("/api/load/rate", json=body, headers=admin(cluster))
        assert resp.status == 400
    await client.post("/api/load/stop", headers=admin(cluster))


async def test_one_load_at_a_time_and_nothing_to_steer_or_stop_without_one(
    open_dashboard,  # noqa: F811
):
    cluster, client = await open_dashboard()
    for path, body in (("/api/load/rate", {"rate": 5}), ("/api/load/stop", None)):
        resp = await client.post(path, json=body, headers=admin(cluster))
        assert resp.status == 409
        assert (await resp.json())["error"] == "no load is running: start one"
    resp = await client.post("/api/load/start", json={"rate": 5}, headers=admin(cluster))
    assert resp.status == 200
    again = await client.post("/api/load/start", json={"rate": 7}, headers=admin(cluster))
    assert again.status == 409 and "already running" in (await again.json())["error"]
    assert (await figures(client))["rate"] == 5
    assert (await client.post("/api/load/stop", headers=admin(cluster))).status == 200
    assert (await client.post("/api/load/stop", headers=admin(cluster))).status == 409


async def test_two_starts_at_once_make_one_load(open_dashboard):  # noqa: F811
    cluster, client = await open_dashboard()
    starts = [
        client.post("/api/load/start", json={"rate": 5}, headers=admin(cluster)) for _ in range(2)
    ]
    statuses = sorted(resp.status for resp in await asyncio.gather(*starts))
    assert statuses == [200, 409]
    assert (await client.post("/api/load/stop", headers=admin(cluster))).status == 200
    assert lb_requests(cluster, "/login") == 1


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "not-even-bearer"}],
    ids=["none", "wrong", "malformed"],
)
@pytest.mark.parametrize("path", ["/api/load/start", "/api/load/rate", "/api/load/stop"])
async def test_the_load_s_actions_need_the_admin_token(open_dashboard, headers, path):  # noqa: F811
    _, client = await open_dashboard()
    resp = await client.post(path, json={"rate": 5}, headers=headers)
    assert resp.status == 401
    assert "admin token required" in (await resp.json())["error"]
    assert (await figures(client))["running"] is False


async def test_a_page_of_another_site_is_refused(open_dashboard):  # noqa: F811
    cluster, client = await open_dashboard()
    headers = admin(cluster) | {"Host": "evil.example"}
    resp = await client.post("/api/load/start", json={"rate": 5}, headers=headers)
    assert resp.status == 403 and "error" in await resp.json()
    assert (await figures(client))["running"] is False


async def test_a_load_that_cannot_log_in_is_502_and_none_starts(open_dashboard):  # noqa: F811
    cluster, client = await open_dashboard({"users": [{"username": "ada", "password": "x" * 12}]})
    # The scenario's user logs in: the load works.
    resp = await client.post("/api/load/start", json={"rate": 5}, headers=admin(cluster))
    assert resp.status == 200
    await client.post("/api/load/stop", headers=admin(cluster))
    lb = cluster.urls["load-balancer"] + "/admin/faults"
    await client.session.post(lb, json={"down": True}, headers=admin(cluster))
    resp = await client.post("/api/load/start", json={"rate": 5}, headers=admin(cluster))
    assert resp.status == 502
    assert (await resp.json())["error"].startswith("the load cannot start: cannot reach")
    assert (await figures(client))["running"] is False


async def test_without_a_token_the_load_is_refused_by_the_gateways_and_counted_failed(
    open_dashboard,  # noqa: F811
):
    cluster, client = await open_dashboard()
    body = {"rate": 100, "auth": "none"}
    assert (await client.post("/api/load/start", json=body, headers=admin(cluster))).status == 200
    seen = await until(client, lambda f: f["answered"] >= 10)
    assert seen["failed"] == seen["answered"]  # every answer is a 401
    await client.post("/api/load/stop", headers=admin(cluster))
    assert set(served(cluster, "/data")) == {401}


async def test_labsim_stopping_stops_the_load_and_cuts_what_is_in_flight(start_cluster, caplog):
    caplog.set_level("INFO", logger="labsim")
    cluster = await start_cluster({"database": {"latency": 5}, "gateways": {"use_cache": False}})
    panel = await dashboard.serve(cluster, 0, interval=FAST_TICK)
    stopped = False
    try:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            url = panel.url + "/api/load/start"
            async with http.post(url, json={"rate": 50}, headers=admin(cluster)) as resp:
                assert resp.status == 200
            load = None

            def in_flight() -> bool:
                return bool(steering.load and len(steering.load.in_flight) >= 5)

            steering = _steering(panel)
            await eventually(in_flight)
            load = steering.load
            await panel.stop()
            stopped = True
    finally:
        if not stopped:
            await panel.stop()
    assert load is not None and not load.running and not load.in_flight
    left = [t for t in asyncio.all_tasks() if "SteeredLoad" in repr(t.get_coro())]
    assert not left  # nothing of the load is left running
    assert load.counts.cut >= 5 and load.counts.answered == 0
    line = next(r.getMessage() for r in caplog.records if "load stopped" in r.getMessage())
    assert f"{load.counts.cut} in flight cut after 0 s" in line


def _steering(panel):
    """The steering of a served dashboard: its app's one panel, found by its routes."""
    app = panel.runner.app
    route = next(r for r in app.router.routes() if r.resource.canonical == "/api/load/start")
    return route.handler.__self__


async def test_a_start_still_logging_in_when_labsim_stops_starts_nothing(start_cluster):
    import aiohttp

    cluster = await start_cluster()
    panel = await dashboard.serve(cluster, 0, interval=FAST_TICK)
    steering = _steering(panel)
    stopped = False
    try:
        async with aiohttp.ClientSession() as http:
            lb = cluster.urls["load-balancer"] + "/admin/faults"
            async with http.post(lb, json={"hang": True}, headers=admin(cluster)) as resp:
                assert resp.status == 200  # the login will get no answer
            start = asyncio.create_task(
                http.post(panel.url + "/api/load/start", json={"rate": 5}, headers=admin(cluster))
            )
            await eventually(lambda: steering.starting is not None)
            began = asyncio.get_running_loop().time()
            await panel.stop()
            stopped = True
            took = asyncio.get_running_loop().time() - began
            async with await start as resp:
                assert resp.status == 503
                assert (await resp.json())["error"] == "labsim is stopping: no load starts"
    finally:
        if not stopped:
            await panel.stop()
    assert took < 1, took
    assert steering.load is None and steering.client is None
