"""Lab 3's "limit exposure": only the gateways may call the internal components."""

from __future__ import annotations

import pytest

from labsim.core.http import INTERNAL_HEADER

from .conftest import login

LIMITED = {"exposure": "gateways-only"}
INTERNAL = {
    "cache": "/cache/my_data",
    "database": "/db",
    "worker": "/tasks",
    "microservice": "/process",
}


@pytest.mark.parametrize("component", sorted(INTERNAL))
async def test_an_internal_component_refuses_anyone_but_the_gateways(
    start_cluster, http, component
):
    cluster = await start_cluster(LIMITED)
    url = cluster.urls[component]
    for headers in ({}, {INTERNAL_HEADER: "a guess"}, {INTERNAL_HEADER: ""}):
        async with http.get(url + INTERNAL[component], headers=headers) as resp:
            body = await resp.json()
        assert resp.status == 403
        assert (
            body["error"] == f'{component} answers only the gateways (exposure = "gateways-only")'
        )
    async with http.get(f"{url}/metrics") as resp:
        assert resp.status == 403
    async with http.get(f"{url}/health") as resp:
        assert resp.status == 200  # liveness stays open
    async with http.get(f"{url}/admin/faults") as resp:
        assert resp.status == 401  # its own token


async def test_the_lab_works_through_the_gateways(start_cluster, http):
    cluster = await start_cluster(LIMITED)
    token = await login(http, cluster.url)
    auth = {"Authorization": token}
    for path, status in (("/data", 200), ("/data", 200), ("/process", 200), ("/longtask", 202)):
        async with http.request(
            "POST" if path == "/longtask" else "GET", cluster.url + path, headers=auth
        ) as resp:
            assert resp.status == status
    assert cluster.counters("cache")["hits"] == 1


async def test_open_exposure_lets_anyone_call_as_the_lab_does(start_cluster, http):
    cluster = await start_cluster()
    async with http.get(f"{cluster.urls['database']}/db") as resp:
        assert resp.status == 200


async def test_on_a_public_address_only_the_doors_listen_there(start_cluster):
    cluster = await start_cluster({**LIMITED, "host": "0.0.0.0"})
    hosts = {c.id: c.runner.addresses[0][0] for c in cluster.components.values()}
    assert hosts["load-balancer"] == "0.0.0.0"
    assert {hosts[g] for g in cluster.topology.gateway_ids()} == {"127.0.0.1"}
    assert {hosts[c] for c in INTERNAL} == {"127.0.0.1"}
    public = await start_cluster({**LIMITED, "host": "0.0.0.0", "gateways": {"public": True}})
    hosts = {c.id: c.runner.addresses[0][0] for c in public.components.values()}
    assert {hosts[g] for g in public.topology.gateway_ids()} == {"0.0.0.0"}
    assert hosts["cache"] == "127.0.0.1"
