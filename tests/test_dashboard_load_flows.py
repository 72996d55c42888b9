"""The dashboard's steered load running a user flow (`"flow": NAME`): each arrival one
whole run of the scenario's flow, its steps' figures live, and what a start with a flow
refuses. On the virtual clock, a run's think times and its stop are exact; on the real
clock, over the HTTP API, the steps' counts against what the gateways served."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from labsim.core.http import HttpClient
from labsim.model.scenario import Load, check_load
from labsim.model.schema import build
from labsim.run import BenchOptions
from labsim.run.session import Session
from labsim.run.steered_flows import FlowLoad
from labsim.run.steered_load import SteeredLoad, http_send
from labsim.views import dashboard

from .test_dashboard import FAST_TICK, admin
from .test_dashboard_load import figures, served, until
from .test_flows import QUIET

READER = {
    "name": "reader",
    "steps": [
        {"request": "POST /login"},
        {"request": "GET /data", "repeat": 3, "think": 0.005},
        {"request": "POST /longtask", "body": {"task": "report"}},
    ],
}
BROWSER = {"name": "browser", "steps": [{"request": "GET /data", "repeat": 2}]}


def flows(*tables: dict[str, Any]):
    return check_load(build(Load, {"flows": list(tables)}, "t.toml", "load"), "t.toml: load").flows


@pytest.fixture
def flow_dashboard(start_cluster, aiohttp_client):
    """flow_dashboard(*flow tables, changes=None) -> (cluster, client of its dashboard),
    a dashboard whose scenario has those `[[load.flows]]`."""

    async def start(*tables: dict[str, Any], changes: dict | None = None):
        cluster = await start_cluster(changes)
        app = dashboard.make_app(cluster, interval=FAST_TICK, flows=flows(*tables))
        return cluster, await aiohttp_client(app)

    return start


# On the virtual clock: a load of one flow, driven directly

SHOPPER = {
    "name": "shopper",
    "steps": [
        {"request": "POST /login"},
        {"request": "GET /process", "repeat": 4, "think": 0.5},
        {"request": "POST /longtask", "body": {"task": "report"}},
    ],
}


async def virtual_load(sim, rate: float, **more: Any):
    """(clock, cluster, load) of a steered load of SHOPPER on a topology where nothing but
    the think times takes time."""
    cluster, clock, _ = await sim(QUIET)
    [flow] = flows(SHOPPER)
    client = HttpClient(clock)
    session = Session(
        cluster.topology, BenchOptions(flows=(flow,)), clock, client, cluster.url, cluster
    )
    runs = FlowLoad(session, flow, None, seed=3, window=5.0, keep=1000)
    send = http_send(client, session.entry, cluster.url, None, 10)
    load = SteeredLoad(
        clock, send, rate=rate, mix={"data": 1}, seed=3, flow=runs, arrivals="constant", **more
    )
    return clock, cluster, client, load


async def test_each_arrival_runs_the_whole_flow_thinking_on_the_clock(sim):
    clock, cluster, client, load = await virtual_load(sim, rate=2)

    async def scenario():
        load.start()
        await clock.sleep(10.25)  # between two requests of every run
        during = load.figures()
        await load.stop(5.0)
        return during

    try:
        during = await clock.run(scenario())
    finally:
        await client.close()
    c = load.counts
    runs = c.sent
    # Evenly spaced arrivals, 2 a second: at 0.5 s, 1 s, ..., 10 s.
    arrivals = [0.5 * k for k in range(1, 21)]
    assert runs == len(arrivals) and c.arrived == runs and c.dropped == 0 and c.failed == 0
    # The stop sends nothing more: the runs thinking then end there, cut.
    assert c.cut == during["in_flight"] and c.answered == runs - c.cut
    # A run: 4 pauses of 0.5 s after its /process (none after its last request), and
    # nothing else takes time: 2 s, exactly, for every run.
    assert during["p50_ms"] == during["p99_ms"] == 2000.0
    assert during["in_flight"] == 4  # those that arrived at 8.5 s to 10 s
    done = load.figures()
    assert done["flow"] == "shopper" and done["mix"] is None
    steps = {s["name"]: (s["count"], s["failed"]) for s in done["steps"]}
    assert list(steps) == ["post-login", "get-process", "post-longtask"]
    assert steps["post-login"] == (runs, 0) and steps["post-longtask"] == (c.answered, 0)
    # Each run sends a /process every 0.5 s from its arrival, 4 in all, until the stop.
    process = sum(min(4, 1 + int((10.25 - a) / 0.5)) for a in arrivals)
    assert steps["get-process"] == (process, 0)
    assert all(s["p50_ms"] == 0 for s in done["steps"])
    # Each run logged in with its own user's login, and its token served its requests.
    assert served(cluster, "/login") == {200: runs}
    assert served(cluster, "/process") == {200: process}


async def test_a_stop_ends_each_run_at_its_next_request_and_counts_it_cut(sim):
    clock, cluster, client, load = await virtual_load(sim, rate=4)

    async def scenario():
        load.start()
        await clock.sleep(3.125)  # runs are thinking: their requests take no time
        thinking = len(load.in_flight)
        sent = sum(s["count"] for s in load.figures()["steps"])
        cut = await load.stop(1.0)  # longer than a pause: each wakes and sends no more
        await clock.sleep(5)
        return thinking, sent, cut

    try:
        thinking, sent, cut = await clock.run(scenario())
    finally:
        await client.close()
    c = load.counts
    assert thinking == 8 and cut == thinking == c.cut  # those that arrived at 1.25 s to 3 s
    assert c.sent == c.answered + c.cut and c.failed == 0
    assert sum(s["count"] for s in load.figures()["steps"]) == sent  # nothing after the stop
    paths = ("/login", "/process", "/longtask")
    assert sum(sum(served(cluster, path).values()) for path in paths) == sent


# Over the HTTP API, on the real clock


async def test_start_with_a_flow_and_its_steps_add_up_to_what_the_gateways_served(
    flow_dashboard,
):
    cluster, client = await flow_dashboard(READER, BROWSER)
    listed = [
        {"name": "reader", "steps": ["post-login", "get-data", "post-longtask"], "requests": 5},
        {"name": "browser", "steps": ["get-data"], "requests": 2},
    ]
    assert (await figures(client))["limits"]["flows"] == listed
    assert (await (await client.get("/api/topology")).json())["load"]["flows"] == listed

    body = {"rate": 40, "flow": "reader", "seed": 4}
    resp = await client.post("/api/load/start", json=body, headers=admin(cluster))
    assert resp.status == 200
    started = await resp.json()
    assert started["flow"] == "reader" and started["mix"] is None and started["rate"] == 40
    assert [s["name"] for s in started["steps"]] == ["post-login", "get-data", "post-longtask"]
    seen = await until(
        client, lambda f: f["answered"] >= 10 and all(s["p99_ms"] for s in f["steps"])
    )
    assert seen["steps"][1]["p50_ms"] <= seen["steps"][1]["p99_ms"]

    resp = await client.post("/api/load/stop", headers=admin(cluster))
    done = await resp.json()
    assert done["running"] is False and done["in_flight"] == 0
    assert done["sent"] == done["answered"] + done["cut"] and done["failed"] == 0
    steps = {s["name"]: s for s in done["steps"]}
    assert all(s["failed"] == 0 for s in steps.values())
    # The steps' counts are what the gateways served, request by request: every run
    # logged in itself (the load did not), read /data 3 times with its token, and each
    # run that got to its end queued one task.
    assert served(cluster, "/login") == {200: steps["post-login"]["count"]}
    assert served(cluster, "/data") == {200: steps["get-data"]["count"]}
    assert sum(served(cluster, "/longtask").values()) == steps["post-longtask"]["count"]
    assert steps["post-login"]["count"] == done["sent"]
    assert steps["post-longtask"]["count"] == done["answered"]
    assert 3 * done["answered"] <= steps["get-data"]["count"] <= 3 * done["sent"]
    await asyncio.sleep(0.1)
    assert (await figures(client))["steps"] == done["steps"]  # nothing after the stop


async def test_a_flow_without_a_login_carries_the_load_s_token(flow_dashboard):
    cluster, client = await flow_dashboard(READER, BROWSER)
    body = {"rate": 50, "flow": "browser"}
    assert (await client.post("/api/load/start", json=body, headers=admin(cluster))).status == 200
    await until(client, lambda f: f["answered"] >= 5)
    done = await (await client.post("/api/load/stop", headers=admin(cluster))).json()
    assert done["failed"] == 0
    assert served(cluster, "/login") == {200: 1}  # the load's own, once
    assert served(cluster, "/data") == {200: done["steps"][0]["count"]}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"rate": 1, "flow": "nope"}, "no flow 'nope' (known: reader, browser)"),
        ({"rate": 1, "flow": "x" * 500}, f"no flow '{'x' * 50}' (known: reader, browser)"),
        ({"rate": 1, "flow": 3}, "flow must be the name of one of the scenario's flows"),
        ({"rate": 1, "flow": None}, "flow must be the name of one of the scenario's flows"),
        ({"rate": 1, "flow": "reader", "mix": {"data": 1}}, "give mix or flow, not both"),
        ({"rate": -1, "flow": "reader"}, "rate must be a number"),
        ({"rate": 1, "flow": "reader", "seed": -1}, "seed must be"),
    ],
)
async def test_bad_starts_with_a_flow_are_400(flow_dashboard, body, problem):
    cluster, client = await flow_dashboard(READER, BROWSER)
    resp = await client.post("/api/load/start", json=body, headers=admin(cluster))
    assert resp.status == 400
    answer = await resp.json()
    assert (
        answer["error"] == problem if problem.startswith("no flow") else problem in answer["error"]
    )
    if problem.startswith("no flow"):
        assert answer["flows"] == ["reader", "browser"]
    assert (await figures(client))["running"] is False


async def test_a_scenario_without_flows_lists_none_and_refuses_any(flow_dashboard):
    cluster, client = await flow_dashboard()
    assert (await figures(client))["limits"]["flows"] == []
    body = {"rate": 1, "flow": "reader"}
    resp = await client.post("/api/load/start", json=body, headers=admin(cluster))
    assert resp.status == 400
    assert await resp.json() == {
        "error": "no flow 'reader' (the scenario has no [[load.flows]])",
        "flows": [],
    }


async def test_a_flow_needs_the_admin_token(flow_dashboard):
    _, client = await flow_dashboard(READER)
    resp = await client.post("/api/load/start", json={"rate": 5, "flow": "reader"})
    assert resp.status == 401
    assert (await figures(client))["running"] is False


# `up` reads the scenario's flows for its dashboard


def test_up_offers_the_scenario_s_own_flows():
    from labsim.cli.up import scenario_flows

    assert [f.name for f in scenario_flows("scenarios/user-flow.toml")] == ["shopper", "browser"]
    assert scenario_flows("scenarios/mm1.toml") == () and scenario_flows(None) == ()


@pytest.mark.parametrize(
    ("flow", "key"),
    [
        ('name = "r"\nsteps = [{ request = "FETCH /data" }]', "load.flows[0].steps[0].request"),
        ('name = "r"\nsteps = []', "load.flows[0].steps"),
        ('name = "r"\nsteps = [{ request = "GET /" }]\ncolour = 1', "load.flows[0].colour"),
    ],
)
def test_up_refuses_a_bad_flow_in_one_line_naming_its_key(tmp_path, capsys, flow, key):
    from labsim.cli import main

    path = tmp_path / "s.toml"
    path.write_text(f'name = "t"\n[[load.flows]]\n{flow}\n')
    assert main(["up", "--scenario", str(path), "--no-dashboard"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and key in err and "Traceback" not in err, err
