"""Whole runs through stations at every hop, on the virtual clock: no stall, and repeatable."""

from __future__ import annotations

import asyncio

import pytest

from labsim.core.clock import VirtualClock
from labsim.core.http import HttpClient

from .test_capacity import CREDENTIALS, get


async def test_the_virtual_clock_does_not_stall_while_requests_wait(sim):
    # Every hop has slots; 60 reads at once queue at each of them. Requests waiting for
    # a slot are parked, so simulated time goes on and every one is answered.
    changes = {
        "load_balancer": {"concurrency": 4, "service": 0.001},
        "gateways": {"concurrency": 2, "use_cache": False},
        "database": {"latency": 0, "concurrency": 3, "service": 0.1},
    }
    cluster, clock, client = await sim(changes)

    async def scenario():
        token = await client.request("g", "POST", f"{cluster.url}/login", json_body=CREDENTIALS)
        auth = {"Authorization": token.json()["token"]}
        answers = await asyncio.gather(
            *(
                get(clock, client, cluster, "load-balancer", "/data", headers=auth)
                for _ in range(60)
            )
        )
        return answers, clock.now()

    answers, end = await asyncio.wait_for(clock.run(scenario()), timeout=60)
    assert [status for _, status, _ in answers] == [200] * 60
    # The load balancer lets 4 through at a time: the database, with 3 slots, is the
    # bottleneck, 60 reads of 0.1 s at 3 a time take 2 s.
    assert end == pytest.approx(2.0, abs=0.05)
    assert cluster.capacity("database").utilization > 0.9
    assert cluster.capacity("load-balancer").queue_wait.count == 61


async def test_a_run_with_stations_repeats_exactly(start_cluster):
    # Random service times and lines at every hop: two runs give the same answers, in
    # the same order, at the same simulated times, and the same figures.
    changes = {
        "load_balancer": {
            "concurrency": 12,
            "queue_size": 5,
            "service": {"model": "exponential", "mean": 0.01},
        },
        "gateways": {"concurrency": 2, "queue_size": 4, "use_cache": False},
        "database": {
            "latency": {"model": "uniform", "low": 0.05, "high": 0.15},
            "concurrency": 2,
            "queue_size": 3,
            "service": {"model": "lognormal", "median": 0.1, "sigma": 0.5},
        },
    }

    async def once():
        clock = VirtualClock()
        cluster = await start_cluster(changes, clock)
        client = HttpClient(clock)

        async def scenario():
            login = await client.request("g", "POST", f"{cluster.url}/login", json_body=CREDENTIALS)
            auth = {"Authorization": login.json()["token"]}
            answers = await asyncio.gather(
                *(
                    get(
                        clock,
                        client,
                        cluster,
                        "load-balancer",
                        "/data",
                        after=i * 0.01,
                        headers=auth,
                    )
                    for i in range(40)
                )
            )
            seen = [(t, s, r.headers.get("X-Served-By")) for t, s, r in answers]
            figures = {c: cluster.capacity(c) for c in cluster.components}
            return seen, {c: f.as_dict() for c, f in figures.items() if f is not None}

        try:
            return await clock.run(scenario())
        finally:
            await client.close()

    first, second = await once(), await once()
    assert first == second
    statuses = {s for _, s, _ in first[0]}
    assert statuses == {200, 503}  # some refused at a full line: the lines were used
    assert set(first[1]) == {
        "load-balancer",
        "gateway-5000",
        "gateway-5003",
        "gateway-5006",
        "database",
    }
