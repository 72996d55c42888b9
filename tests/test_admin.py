"""The fault API on every component's own port, and what each fault does."""

from __future__ import annotations

import pytest

from labsim.clock import VirtualClock
from labsim.http import HttpClient

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
