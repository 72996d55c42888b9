"""The dashboard's HTTP API in-process: page, topology, event stream, faults, bench."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time

import pytest

from labsim.components.cluster import ClusterError
from labsim.views import dashboard

from .conftest import login

FAST_TICK = 0.05
CHECKS = {"health_check": {"interval": 0.02, "unhealthy_threshold": 1, "healthy_threshold": 1}}


@pytest.fixture
def open_dashboard(start_cluster, aiohttp_client):
    """open_dashboard(changes=None) -> (cluster, test client of its dashboard)."""

    async def start(changes: dict | None = None):
        cluster = await start_cluster(changes)
        client = await aiohttp_client(dashboard.make_app(cluster, interval=FAST_TICK))
        return cluster, client

    return start


def admin(cluster) -> dict:
    return {"Authorization": f"Bearer {cluster.topology.admin_token}"}


async def events(response):
    """(name, data) for each server-sent event of `response`."""
    name = data = None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = json.loads(line.removeprefix("data: "))
        elif not line and name:
            yield name, data
            name = data = None


async def snapshot_where(stream, test, limit: float = 5):
    """The first snapshot from `stream` for which `test(components)` holds."""
    async with asyncio.timeout(limit):
        async for name, data in stream:
            assert name == "snapshot"
            if test(data["components"]):
                return data
    raise AssertionError("the stream ended")


async def test_page_and_its_files_are_served_with_nothing_from_elsewhere(open_dashboard):
    _, client = await open_dashboard()
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    page = await resp.text()
    assert 'src="/dashboard.js"' in page and 'href="/dashboard.css"' in page
    texts = [page]
    for path, kind in (("/dashboard.js", "text/javascript"), ("/dashboard.css", "text/css")):
        resp = await client.get(path)
        assert resp.status == 200 and resp.content_type == kind
        texts.append(await resp.text())
    for text in texts:  # the SVG namespace is a name, never fetched
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= {"http://www.w3.org/2000/svg"}


async def test_topology_lists_components_and_the_arrows_of_the_data_path(open_dashboard):
    cluster, client = await open_dashboard()
    body = await (await client.get("/api/topology")).json()
    assert [c["id"] for c in body["components"]] == list(cluster.components)
    assert {c["id"]: c["url"] for c in body["components"]} == cluster.urls
    gateways = cluster.topology.gateway_ids()
    expected = [["load-balancer", g] for g in gateways]
    expected += [[g, b] for g in gateways for b in ("cache", "database", "worker", "microservice")]
    assert body["edges"] == expected
    assert body["interval_s"] == FAST_TICK and body["bench"] == {"requests": 100, "max": 1000}


async def test_without_the_cache_there_is_no_arrow_to_it(open_dashboard):
    _, client = await open_dashboard({"gateways": {"use_cache": False}})
    body = await (await client.get("/api/topology")).json()
    assert not [edge for edge in body["edges"] if "cache" in edge]


async def test_the_event_stream_follows_the_traffic(open_dashboard, http):
    cluster, client = await open_dashboard()
    resp = await client.get("/api/events")
    assert resp.content_type == "text/event-stream"
    stream = events(resp)
    name, first = await anext(stream)
    assert name == "snapshot" and list(first["components"]) == list(cluster.components)
    lb = first["components"]["load-balancer"]
    assert lb["requests"] == 0 and lb["rate"] is None and first["bench"] == {"running": False}

    token = await login(http, cluster.url)
    for method, path in (("GET", "/data"), ("GET", "/data"), ("GET", "/data"), ("POST", "/task")):
        async with http.request(method, cluster.url + path, headers={"Authorization": token}):
            pass
    async with http.get(cluster.url + "/data"):  # no token: a 401
        pass
    seen = []
    async with asyncio.timeout(5):
        async for _, data in stream:
            seen.append(data)
            lb = data["components"]["load-balancer"]
            if lb["requests"] == 6 and lb["rate"] == 0:
                break
    c = seen[-1]["components"]
    assert c["cache"]["hits"] == 2 and c["cache"]["misses"] == 1
    assert c["cache"]["hit_ratio"] == pytest.approx(2 / 3, abs=1e-3) and c["cache"]["size"] == 1
    assert c["database"]["db_calls"] == 1 and c["worker"]["submitted"] == 0
    gateways = [c[g] for g in cluster.topology.gateway_ids()]
    assert sum(g["routed"] for g in gateways) == 6
    assert [g["requests"] for g in gateways] == [g["routed"] for g in gateways]
    assert all(g["state"] == "up" and g["in_rotation"] for g in gateways)
    # Each rate is over its own interval: together they add up to the requests sent. The
    # 401 and the 404 (POST /task is no gateway route) are client errors; nothing failed.
    lbs = [d["components"]["load-balancer"] for d in seen]
    sent = sum(d["components"]["load-balancer"]["rate"] * d["interval_s"] for d in seen)
    assert sent == pytest.approx(6, abs=0.2)
    assert all(lb["errors"] in (None, 0) for lb in lbs)
    assert any(lb["client_errors"] for lb in lbs)
    db = [d["components"]["database"]["latency_ms"] for d in seen]
    assert any(ms is not None and ms >= 10 for ms in db)  # one call of 10 ms
    started = time.monotonic()
    ticks = 5
    for _ in range(ticks):
        await anext(stream)
    per_tick = (time.monotonic() - started) / ticks
    assert FAST_TICK * 0.8 < per_tick < FAST_TICK * 4, per_tick
    resp.close()


async def test_shares_and_means_are_of_the_interval_s_requests(open_dashboard, http):
    cluster, client = await open_dashboard({"database": {"latency": 0.02}})
    stream = events(await client.get("/api/events"))
    await anext(stream)
    async with http.get(cluster.urls["database"] + "/db") as resp:
        assert resp.status == 200
    async with http.get(cluster.urls["database"] + "/nope") as resp:
        assert resp.status == 404
    seen = []
    async with asyncio.timeout(5):
        async for _, data in stream:
            seen.append((data["components"]["database"], data["interval_s"]))
            if seen[-1][0]["requests"] == 2 and seen[-1][0]["rate"] == 0:
                break
    answered = [(db["rate"] * interval, db) for db, interval in seen if db["rate"]]
    assert sum(n for n, _ in answered) == pytest.approx(2, abs=0.1)
    assert sum(n * db["client_errors"] for n, db in answered) == pytest.approx(1, abs=0.1)
    assert sum(n * db["errors"] for n, db in answered) == 0
    spent_ms = sum(n * db["latency_ms"] for n, db in answered)
    assert 20 <= spent_ms < 20 + 50, spent_ms  # the 20 ms call, and a 404 at once


async def test_health_checks_are_not_counted_as_work(open_dashboard):
    cluster, client = await open_dashboard({"load_balancer": CHECKS})
    stream = events(await client.get("/api/events"))
    gateway = cluster.topology.gateway_ids()[0]
    for _ in range(5):
        await anext(stream)
    data = await snapshot_where(stream, lambda c: c[gateway]["rate"] is not None)
    assert data["components"][gateway]["requests"] == 0
    assert data["components"][gateway]["latency_ms"] is None
    assert cluster.components[gateway].context.requests[("/health", 200)] > 0


async def test_gateway_states_follow_faults_and_the_load_balancer(open_dashboard):
    cluster, client = await open_dashboard({"load_balancer": CHECKS})
    stream = events(await client.get("/api/events"))
    gateway = cluster.topology.gateway_ids()[1]
    url = f"/api/faults/{gateway}"

    def state(expected: str, in_rotation: bool):
        return lambda c: (c[gateway]["state"], c[gateway]["in_rotation"]) == (expected, in_rotation)

    resp = await client.post(url, json={"latency": 0.001}, headers=admin(cluster))
    assert resp.status == 200
    await snapshot_where(stream, state("degraded", True))
    await client.post(url, json={"latency": 0, "error_rate": 1}, headers=admin(cluster))
    await snapshot_where(stream, state("out", False))  # failed its health checks
    await client.post(url, json={"down": True}, headers=admin(cluster))
    data = await snapshot_where(stream, state("down", False))
    assert data["components"][gateway]["faults"]["down"] is True
    resp = await client.post(f"/api/reset/{gateway}", headers=admin(cluster))
    assert resp.status == 200 and (await resp.json())["faults"]["down"] is False
    await snapshot_where(stream, state("up", True))


async def test_a_down_gateway_drops_its_requests_and_is_not_counted_as_serving(
    open_dashboard, http
):
    cluster, client = await open_dashboard()  # no health checks: it stays in rotation
    stream = events(await client.get("/api/events"))
    await anext(stream)
    gateways = cluster.topology.gateway_ids()
    down = gateways[1]
    token = await login(http, cluster.urls[gateways[0]])
    resp = await client.post(f"/api/faults/{down}", json={"down": True}, headers=admin(cluster))
    assert resp.status == 200
    statuses = []
    for _ in range(9):
        async with http.get(cluster.url + "/data", headers={"Authorization": token}) as resp:
            statuses.append(resp.status)
    assert sorted(statuses) == [200] * 6 + [502] * 3  # round robin: one in three dropped
    seen = []
    async with asyncio.timeout(5):
        async for _, data in stream:
            seen.append((data["components"][down], data["interval_s"]))
            lb = data["components"]["load-balancer"]
            if lb["requests"] == 9 and lb["rate"] == 0:
                break
    c = data["components"]
    # Dropped, not served: no requests, no rate, no 5xx of its own; the load balancer's 502s.
    assert c[down]["state"] == "down" and c[down]["routed"] == 3
    assert c[down]["requests"] == 0 and c[down]["dropped"] >= 3  # aiohttp may send again
    assert all(g["rate"] == 0 and g["errors"] is None for g, _ in seen)
    dropped = sum(g["dropped_rate"] * interval for g, interval in seen)
    assert dropped == pytest.approx(c[down]["dropped"], abs=0.1)
    assert [c[g]["requests"] for g in gateways] == [4, 0, 3]  # the login, then 3 /data each
    assert not [key for key in cluster.components[down].context.requests if key[1] >= 500]


async def test_work_in_flight_shows_while_the_database_hangs(open_dashboard, http):
    cluster, client = await open_dashboard()
    stream = events(await client.get("/api/events"))
    await anext(stream)
    token = await login(http, cluster.url)
    resp = await client.post("/api/faults/database", json={"hang": True}, headers=admin(cluster))
    assert resp.status == 200
    call = asyncio.create_task(http.get(cluster.url + "/data", headers={"Authorization": token}))
    data = await snapshot_where(stream, lambda c: c["database"]["in_flight"] == 1)
    c = data["components"]
    assert c["database"]["state"] == "down" and c["database"]["rate"] == 0
    assert c["load-balancer"]["in_flight"] == 1 and c["cache"]["in_flight"] == 0
    assert sorted(c[g]["in_flight"] for g in cluster.topology.gateway_ids()) == [0, 0, 1]
    resp = await client.post("/api/reset/database", headers=admin(cluster))
    assert resp.status == 200
    async with await call as answer:
        assert answer.status == 200
    await snapshot_where(stream, lambda c: c["database"]["state"] == "up")
    await snapshot_where(stream, lambda c: all(x["in_flight"] == 0 for x in c.values()))


@pytest.mark.parametrize(
    ("fault", "state"),
    [
        ({"latency": 0.001}, "degraded"),
        ({"error_rate": 0.5}, "degraded"),
        ({"down": True}, "down"),
        ({"hang": True}, "down"),
    ],
)
async def test_every_component_s_state_follows_its_own_faults(open_dashboard, fault, state):
    cluster, client = await open_dashboard()
    stream = events(await client.get("/api/events"))
    first = await anext(stream)
    assert {c["state"] for c in first[1]["components"].values()} == {"up"}
    for component in cluster.components:
        url = f"/api/faults/{component}"
        assert (await client.post(url, json=fault, headers=admin(cluster))).status == 200
    await snapshot_where(stream, lambda c: {x["state"] for x in c.values()} == {state})


async def test_faults_are_passed_on_to_the_component(open_dashboard):
    cluster, client = await open_dashboard()
    resp = await client.post("/api/faults/database", json={"latency": 0.25}, headers=admin(cluster))
    assert resp.status == 200
    assert (await resp.json())["faults"]["latency"] == 0.25
    assert cluster.components["database"].context.faults.latency == 0.25
    resp = await client.post("/api/reset/database", headers=admin(cluster))
    assert resp.status == 200
    assert cluster.components["database"].context.faults.latency == 0


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "not-even-bearer"}],
    ids=["none", "wrong", "malformed"],
)
@pytest.mark.parametrize("path", ["/api/faults/cache", "/api/reset/cache", "/api/bench"])
async def test_actions_need_the_admin_token(open_dashboard, headers, path):
    cluster, client = await open_dashboard()
    resp = await client.post(path, json={"down": True}, headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert "admin token required" in (await resp.json())["error"]
    assert not cluster.components["cache"].context.faults.down


async def test_unknown_component_is_404(open_dashboard):
    cluster, client = await open_dashboard()
    for path in ("/api/faults/gateway-1", "/api/reset/gateway-1"):
        resp = await client.post(path, json={"down": True}, headers=admin(cluster))
        assert resp.status == 404
        error = (await resp.json())["error"]
        assert error.startswith("no component 'gateway-1' (known: database, cache,")


async def test_a_component_that_cannot_be_reached_is_502(open_dashboard):
    cluster, client = await open_dashboard()
    await cluster.components["cache"].runner.cleanup()  # as if its process had died
    resp = await client.post("/api/faults/cache", json={"down": True}, headers=admin(cluster))
    assert resp.status == 502
    assert "cache" in (await resp.json())["error"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"latency": -1}', "latency must be a number from 0"),
        (b'{"down": "yes"}', "down must be true or false"),
        (b'{"melt": true}', "unknown fault 'melt'"),
        (b"{oops", "not valid JSON"),
        (b"", "request body must be JSON"),
    ],
)
async def test_bad_fault_values_are_400(open_dashboard, body, problem):
    cluster, client = await open_dashboard()
    headers = admin(cluster) | {"Content-Type": "application/json"}
    resp = await client.post("/api/faults/database", data=body, headers=headers)
    assert resp.status == 400
    assert problem in (await resp.json())["error"]


async def test_unknown_paths_and_methods_are_json_errors(open_dashboard):
    _, client = await open_dashboard()
    resp = await client.get("/no/such/page")
    assert resp.status == 404
    assert await resp.json() == {"error": "not found: GET /no/such/page"}
    resp = await client.get("/api/bench")
    assert resp.status == 405 and "POST" in resp.headers["Allow"]
    assert (await resp.json())["error"] == "method GET not allowed on /api/bench"


async def test_bench_runs_through_the_load_balancer(open_dashboard):
    cluster, client = await open_dashboard()
    resp = await client.post("/api/bench", json={"requests": 20}, headers=admin(cluster))
    assert resp.status == 200
    report = await resp.json()
    assert report["target"] == cluster.url and report["clock"] == "real"
    assert report["requests"]["total"] == 20 and report["requests"]["failed"] == 0
    assert sum(report["gateways"].values()) == 20
    resp = await client.post("/api/bench", headers=admin(cluster))  # no body: the default
    assert (await resp.json())["requests"]["total"] == 100


async def test_bench_logs_in_as_the_scenario_s_user(open_dashboard):
    cluster, client = await open_dashboard({"users": [{"username": "ada", "password": "x" * 12}]})
    resp = await client.post("/api/bench", json={"requests": 4}, headers=admin(cluster))
    assert resp.status == 200
    assert (await resp.json())["requests"]["ok"] == 4


@pytest.mark.parametrize(
    "body",
    [
        b'{"requests": 0}',
        b'{"requests": 1001}',
        b'{"requests": "10"}',
        b'{"requests": true}',
        b'{"requests": 2.5}',
        b'{"requests": 5, "concurrency": 2}',
        b"[5]",
        b"{oops",
    ],
)
async def test_bad_bench_requests_are_400(open_dashboard, body):
    cluster, client = await open_dashboard()
    headers = admin(cluster) | {"Content-Type": "application/json"}
    resp = await client.post("/api/bench", data=body, headers=headers)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert "requests" in error or "not valid JSON" in error


async def test_one_bench_at_a_time(open_dashboard):
    cluster, client = await open_dashboard({"database": {"latency": 0.3}})
    stream = events(await client.get("/api/events"))
    first = asyncio.create_task(
        client.post("/api/bench", json={"requests": 2}, headers=admin(cluster))
    )
    async with asyncio.timeout(5):
        async for _, data in stream:
            if data["bench"]["running"]:
                break
    resp = await client.post("/api/bench", json={"requests": 2}, headers=admin(cluster))
    assert resp.status == 409 and "already" in (await resp.json())["error"]
    assert (await first).status == 200
    resp = await client.post("/api/bench", json={"requests": 2}, headers=admin(cluster))
    assert resp.status == 200  # free again


async def test_a_bench_that_cannot_run_is_502(open_dashboard, http):
    cluster, client = await open_dashboard()
    lb_admin = cluster.urls["load-balancer"] + "/admin/faults"
    async with http.post(lb_admin, json={"down": True}, headers=admin(cluster)) as resp:
        assert resp.status == 200
    resp = await client.post("/api/bench", json={"requests": 5}, headers=admin(cluster))
    assert resp.status == 502
    assert (await resp.json())["error"].startswith(f"cannot reach {cluster.url}")


async def test_a_tick_that_fails_is_logged_once_and_the_stream_goes_on(
    open_dashboard, monkeypatch, caplog
):
    from labsim.views.snapshot import Sampler

    taken = Sampler.snapshot
    calls = 0

    def flaky(self: Sampler) -> dict:
        nonlocal calls
        calls += 1
        if calls in (2, 3):
            raise RuntimeError("a bug in a snapshot")
        return taken(self)

    monkeypatch.setattr(Sampler, "snapshot", flaky)
    _, client = await open_dashboard()
    stream = events(await client.get("/api/events"))
    async with asyncio.timeout(5):
        names = [(await anext(stream))[0] for _ in range(3)]
    assert names == ["snapshot"] * 3 and calls >= 4  # ticks 2 and 3 were skipped
    failures = [r for r in caplog.records if "a snapshot failed" in r.getMessage()]
    assert len(failures) == 1  # once for a run of failing ticks


async def test_stopping_ends_the_streams_and_cancels_the_bench(start_cluster, http):
    cluster = await start_cluster({"database": {"latency": 5}})
    panel = await dashboard.serve(cluster, 0, interval=FAST_TICK)
    stopping = None
    try:
        async with http.get(panel.url + "/api/events") as stream_resp:
            stream = events(stream_resp)
            await anext(stream)
            bench = asyncio.create_task(
                http.post(panel.url + "/api/bench", json={"requests": 1}, headers=admin(cluster))
            )
            await snapshot_where(stream, lambda c: c["load-balancer"]["requests"] >= 1)
            started = time.monotonic()
            stopping = asyncio.create_task(panel.stop())
            rest = [name async for name, _ in stream]
            async with await bench as bench_resp:
                assert bench_resp.status == 503
                assert "stopping" in (await bench_resp.json())["error"]
            await stopping
            took = time.monotonic() - started
    finally:
        if stopping is None:
            await panel.stop()
    assert rest[-1] == "end" and set(rest[:-1]) <= {"snapshot"}
    assert took < 1, took


async def test_a_port_in_use_names_it(start_cluster):
    cluster = await start_cluster()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(ClusterError) as caught:
            await dashboard.serve(cluster, port)
    assert str(caught.value) == (
        f"cannot start the dashboard: port {port} on 127.0.0.1 is already in use"
    )


def test_p50_and_p99_of_an_interval_come_from_the_histogram_s_buckets():
    from labsim.components.context import DURATION_BUCKETS
    from labsim.core.metrics import Buckets
    from labsim.views.snapshot import quantile_ms

    seen = Buckets(DURATION_BUCKETS)
    for seconds in [0.002] * 98 + [0.3, 0.3]:
        seen.add(seconds)
    first = tuple(seen.cumulative())
    # By hand, as histogram_quantile: rank 50 of the 98 in (1 ms, 2.5 ms]; rank 99 is the
    # first of the 2 in (250 ms, 500 ms], halfway.
    assert quantile_ms((), first, 0.5) == pytest.approx(1 + 1.5 * 50 / 98, abs=0.001)
    assert quantile_ms((), first, 0.99) == 375.0
    for seconds in [20.0] * 10:  # past the top bound: the top bound, as Prometheus says
        seen.add(seconds)
    assert quantile_ms(first, tuple(seen.cumulative()), 0.5) == 10_000.0
    assert quantile_ms(first, first, 0.5) is None  # no answer in the interval


async def test_a_component_s_metrics_read_over_http_give_its_in_process_reading(cluster, http):
    from labsim.views import remote
    from labsim.views.snapshot import read

    from .conftest import login

    token = await login(http, cluster.url)
    for _ in range(5):
        async with http.get(f"{cluster.url}/data", headers={"Authorization": token}):
            pass
    for cid in ("cache", "database", "gateway-5000", "load-balancer"):
        async with http.get(f"{cluster.urls[cid]}/metrics") as resp:
            samples = remote.parse(await resp.text())
        here = read(cluster.components[cid].context)
        there = remote.traffic(samples)
        assert (there["requests"], there["errors"], there["dropped"]) == (
            here.requests,
            here.errors,
            here.dropped,
        )
        # The histogram counts the answers so far, reporting routes included: one /metrics
        # answer more by the time the in-process reading is taken, at most.
        assert there["buckets"][-1] <= here.buckets[-1] <= there["buckets"][-1] + 1
    async with http.get(f"{cluster.urls['cache']}/metrics") as resp:
        kinds = remote.kind_figures("cache", remote.parse(await resp.text()))
    assert (kinds["hits"], kinds["misses"], kinds["size"]) == (4, 1, 1)


async def test_a_remote_read_keeps_the_metrics_when_the_faults_are_refused(cluster):
    from labsim.views import remote

    reader = remote.Reader()
    try:
        seen = await reader.read("cache", cluster.urls["cache"], "not-the-token")
        assert isinstance(seen, remote.Seen) and seen.faults == {}  # 401 on faults: none
        assert seen.figures["size"] == 0 and "hits" in seen.figures
        token = cluster.topology.admin_token
        own = await reader.read("cache", cluster.urls["cache"], token)
        assert (
            isinstance(own, remote.Seen)
            and own.faults == cluster.components["cache"].context.faults.as_dict()
        )
        gone = await reader.read("cache", "http://127.0.0.1:1", "x")
        assert gone is None  # unreachable: the page shows it down
    finally:
        await reader.close()
    odd = remote.parse('labsim_http_requests_total{route="/x",status="oops"} 3\nnot a sample\n')
    assert remote.traffic(odd)["requests"] == 0  # a status that is no number is not counted
