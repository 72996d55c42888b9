"""Stations: slots, a FIFO waiting line and service time per component (issue 11).

Most tests run on the virtual clock, where a request's round trip takes exactly its
simulated time, so waits, utilization and queue lengths can be computed by hand.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from labsim.components.cluster import CapacityFigures

from .test_components import COMPONENTS

CREDENTIALS = {"username": "user1", "password": "password123"}


def database(concurrency: int, service: Any, **more: Any) -> dict[str, Any]:
    """A database with slots and no latency, so its round trips are its station's."""
    return {"database": {"latency": 0, "concurrency": concurrency, "service": service, **more}}


async def get(clock, client, cluster, component: str, path: str, after: float = 0.0, **kw):
    """(answered at, status, reply) of a GET sent `after` seconds from now."""
    if after:
        await clock.sleep(after)
    reply = await client.request(
        component, "GET", cluster.urls[component] + path, check=False, **kw
    )
    return clock.now(), reply.status, reply


async def health(client, cluster, component: str) -> dict[str, Any]:
    return (await client.request(component, "GET", cluster.urls[component] + "/health")).json()


async def scrape(client, cluster, component: str) -> dict[tuple[str, tuple], float]:
    reply = await client.request(component, "GET", cluster.urls[component] + "/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(reply.body.decode())
        for s in family.samples
    }


# Defaults: nothing changes


async def test_defaults_add_no_station(cluster, http):
    for component in COMPONENTS:
        assert cluster.capacity(component) is None
        assert cluster.components[component].context.capacity is None
        async with http.get(f"{cluster.urls[component]}/health") as resp:
            assert "capacity" not in await resp.json()
        async with http.get(f"{cluster.urls[component]}/metrics") as resp:
            text = await resp.text()
        assert "_utilization" not in text and "queue_wait" not in text
    assert cluster.components["database"].service_time() == "10 ms"


# Order


async def test_fifo_in_arrival_order_on_the_virtual_clock(sim):
    cluster, clock, client = await sim(database(1, 1.0))

    async def send(i: int):
        return await get(clock, client, cluster, "database", "/db", after=i * 0.25)

    async def scenario():
        return await asyncio.gather(*(send(i) for i in range(5)))

    answers = await clock.run(scenario())
    assert [t for t, _, _ in answers] == [1.0, 2.0, 3.0, 4.0, 5.0]
    waits = cluster.capacity("database").queue_wait
    # Arrived at 0, .25, .5, .75, 1; served from 0, 1, 2, 3, 4.
    assert (waits.count, waits.min_us, waits.max_us) == (5, 0, 3_000_000)
    assert waits.total_us == (0 + 0.75 + 1.5 + 2.25 + 3.0) * 1_000_000


async def test_same_time_arrivals_are_served_in_the_order_they_were_sent(sim):
    cluster, clock, client = await sim(database(1, 1.0))

    async def scenario():
        return await asyncio.gather(
            *(
                get(clock, client, cluster, "database", "/db", headers={"X-Request-Id": f"r{i}"})
                for i in range(6)
            )
        )

    answers = await clock.run(scenario())
    assert [(t, r.headers["X-Request-Id"]) for t, _, r in answers] == [
        (i + 1.0, f"r{i}") for i in range(6)
    ]


# Refusal


async def test_a_full_queue_is_refused_with_503(sim):
    cluster, clock, client = await sim(database(1, 1.0, queue_size=1))

    async def scenario():
        answers = await asyncio.gather(
            *(get(clock, client, cluster, "database", "/db") for _ in range(3))
        )
        return answers, await health(client, cluster, "database")

    answers, seen = await clock.run(scenario())
    assert [(t, status) for t, status, _ in answers] == [(1.0, 200), (2.0, 200), (0.0, 503)]
    refused = answers[2][2]
    assert refused.headers["Retry-After"] == "1"
    assert refused.json() == {
        "error": "database is at capacity (1 of 1 slots busy, 1 waiting; queue_size 1)",
        "component": "database",
    }
    assert cluster.capacity("database").rejected == 1
    assert seen["capacity"]["rejected"] == 1
    assert cluster.components["database"].context.requests[("/db", 503)] == 1
    metrics = await clock.run(scrape(client, cluster, "database"))
    assert metrics[("labsim_database_rejected_total", (("component", "database"),))] == 1


async def test_queue_size_zero_lets_nobody_wait(sim):
    cluster, clock, client = await sim(database(2, 1.0, queue_size=0))

    async def scenario():
        return await asyncio.gather(
            *(get(clock, client, cluster, "database", "/db") for _ in range(3))
        )

    answers = await clock.run(scenario())
    assert [(t, status) for t, status, _ in answers] == [(1.0, 200), (1.0, 200), (0.0, 503)]


async def test_the_load_balancer_refuses_in_its_own_name(sim):
    changes = {
        "load_balancer": {"concurrency": 1, "queue_size": 0},
        "gateways": {"latency": 1.0},
    }
    cluster, clock, client = await sim(changes)

    async def login():
        reply = await client.request(
            "lb", "POST", f"{cluster.url}/login", json_body=CREDENTIALS, check=False
        )
        return clock.now(), reply

    answers = await clock.run(asyncio.gather(login(), login()))
    (t1, ok), (t2, refused) = answers
    assert (t1, ok.status, t2, refused.status) == (1.0, 200, 0.0, 503)
    assert refused.json()["component"] == "load-balancer"
    assert refused.headers["Retry-After"] == "1"


async def test_a_refusal_downstream_passes_on_as_503_naming_it(sim):
    changes = {"gateways": {"ports": [5000], "use_cache": False}, **database(1, 1.0, queue_size=0)}
    cluster, clock, client = await sim(changes)

    async def scenario():
        token = await client.request("g", "POST", f"{cluster.url}/login", json_body=CREDENTIALS)
        auth = {"Authorization": token.json()["token"]}
        return await asyncio.gather(
            *(get(clock, client, cluster, "gateway-5000", "/data", headers=auth) for _ in range(2))
        )

    (t1, s1, _), (t2, s2, refused) = await clock.run(scenario())
    assert (t1, s1, t2, s2) == (1.0, 200, 0.0, 503)
    assert refused.json()["component"] == "database"
    assert refused.headers["Retry-After"] == "1"


# Measured figures


async def test_utilization_of_a_single_slot_station(sim):
    # N = 4 requests, each holding the one slot S = 0.5 s, over a span of 10 s.
    cluster, clock, client = await sim(database(1, 0.5))

    async def scenario() -> CapacityFigures:
        await asyncio.gather(
            get(clock, client, cluster, "database", "/db"),
            get(clock, client, cluster, "database", "/db"),
            get(clock, client, cluster, "database", "/db", after=3.0),
            get(clock, client, cluster, "database", "/db", after=7.25),
        )
        await clock.sleep(10.0 - clock.now())
        return cluster.capacity("database")

    figures = await clock.run(scenario())
    assert (figures.at_s, figures.span_s, figures.slots) == (10.0, 10.0, 1)
    assert figures.utilization == pytest.approx(4 * 0.5 / 10.0)
    assert figures.busy_slot_seconds == pytest.approx(2.0)
    # Two arrived together: one waited 0.5 s, for 0.5 s of the 10.
    assert figures.queue_length_mean == pytest.approx(0.05)
    assert (figures.busy_now, figures.queue_length_now, figures.rejected) == (0, 0, 0)


async def test_utilization_with_random_service_times(sim):
    # Requests 5 s apart never overlap: each round trip is its own service draw, so the
    # station was busy for the sum of the round trips the client measured.
    cluster, clock, client = await sim(database(1, {"model": "exponential", "mean": 0.3}))

    async def scenario():
        trips = []
        for _ in range(6):
            start = clock.now()
            await get(clock, client, cluster, "database", "/db")
            trips.append(clock.now() - start)
            await clock.sleep(5.0 - trips[-1])
        return trips, clock.now(), cluster.capacity("database")

    trips, end, figures = await clock.run(scenario())
    assert len(set(trips)) == 6 and all(0 < t < 5 for t in trips)
    assert figures.utilization == pytest.approx(sum(trips) / end)
    assert figures.queue_wait.max_us == 0


async def test_queue_waits_match_a_hand_computed_schedule(sim):
    # 3 requests arrive together at one slot with a fixed service of 1 s: they wait 0, 1
    # and 2 s; the line holds 2 during [0, 1) and 1 during [1, 2).
    cluster, clock, client = await sim(database(1, 1.0))

    async def scenario():
        answers = await asyncio.gather(
            *(get(clock, client, cluster, "database", "/db") for _ in range(3))
        )
        at_three = cluster.capacity("database")
        seen = await health(client, cluster, "database")
        await clock.sleep(3.0)
        return answers, at_three, seen, cluster.capacity("database")

    answers, at_three, seen, at_six = await clock.run(scenario())
    assert [t for t, _, _ in answers] == [1.0, 2.0, 3.0]
    waits = at_three.queue_wait.summary()
    assert waits == {
        "count": 3,
        "mean_ms": 1000.0,
        "min_ms": 0.0,
        "p50_ms": 1000.0,
        "p90_ms": 2000.0,
        "p99_ms": 2000.0,
        "max_ms": 2000.0,
    }
    assert at_three.utilization == pytest.approx(1.0)
    assert at_three.queue_length_mean == pytest.approx(3 / 3)
    assert seen["capacity"] == at_three.as_dict()
    assert at_six.utilization == pytest.approx(0.5)
    assert at_six.queue_length_mean == pytest.approx(0.5)
    assert at_six.queue_wait.count == 3  # the reading is a copy; later waits are not in it


async def test_metrics_expose_the_station(sim):
    cluster, clock, client = await sim(database(1, 1.0))

    async def scenario():
        await asyncio.gather(*(get(clock, client, cluster, "database", "/db") for _ in range(3)))
        return await scrape(client, cluster, "database")

    samples = await clock.run(scenario())
    me = (("component", "database"),)

    def quantile(q: str) -> float:
        return samples[("labsim_database_queue_wait_seconds", (*me, ("quantile", q)))]

    assert samples[("labsim_database_slots", me)] == 1
    assert samples[("labsim_database_slots_busy", me)] == 0
    assert samples[("labsim_database_utilization_ratio", me)] == pytest.approx(1.0)
    assert samples[("labsim_database_queue_length", me)] == 0
    assert samples[("labsim_database_queue_length_mean", me)] == pytest.approx(1.0)
    assert samples[("labsim_database_busy_slot_seconds_total", me)] == pytest.approx(3.0)
    assert (quantile("0.5"), quantile("0.99")) == (1.0, 2.0)
    assert samples[("labsim_database_queue_wait_seconds_sum", me)] == 3.0
    assert samples[("labsim_database_queue_wait_seconds_count", me)] == 3
    assert samples[("labsim_database_rejected_total", me)] == 0


async def test_latency_holds_no_slot(sim):
    # Latency 1 s is a pure delay: both wait it out together, then queue for the slot.
    cluster, clock, client = await sim(database(1, 0.5, latency=1.0))
    answers = await clock.run(
        asyncio.gather(*(get(clock, client, cluster, "database", "/db") for _ in range(2)))
    )
    assert [t for t, _, _ in answers] == [1.5, 2.0]
    assert cluster.capacity("database").queue_wait.total_us == 500_000


async def test_service_without_slots_is_a_delay(sim):
    cluster, clock, client = await sim(database(0, 1.0))
    answers = await clock.run(
        asyncio.gather(*(get(clock, client, cluster, "database", "/db") for _ in range(3)))
    )
    assert [t for t, _, _ in answers] == [1.0, 1.0, 1.0]
    assert cluster.capacity("database") is None
    assert cluster.components["database"].service_time() == "0 ms + service 1000 ms"


async def test_a_gateway_holds_its_slot_while_it_waits_on_the_database(sim):
    changes = {
        "gateways": {"ports": [5000], "use_cache": False, "concurrency": 1},
        "database": {"latency": 1.0},
    }
    cluster, clock, client = await sim(changes)

    async def scenario():
        token = await client.request("g", "POST", f"{cluster.url}/login", json_body=CREDENTIALS)
        auth = {"Authorization": token.json()["token"]}
        answers = await asyncio.gather(
            *(get(clock, client, cluster, "gateway-5000", "/data", headers=auth) for _ in range(2))
        )
        return answers, cluster.capacity("gateway-5000")

    answers, figures = await clock.run(scenario())
    assert [(t, status) for t, status, _ in answers] == [(1.0, 200), (2.0, 200)]
    assert figures.queue_wait.count == 3  # the login took the slot too, at once
    assert figures.queue_wait.max_us == 1_000_000  # the second waited out the first's call
    assert figures.utilization == pytest.approx(1.0)
    assert cluster.components["gateway-5000"].service_time() == "0 ms (1 slot, queue 1000000)"


async def test_on_the_real_clock_a_busy_station_refuses(start_cluster, http):
    cluster = await start_cluster(database(1, 0.3, queue_size=0))
    url = f"{cluster.urls['database']}/db"

    async def one(after: float) -> int:
        await asyncio.sleep(after)
        async with http.get(url) as resp:
            return resp.status

    assert await asyncio.gather(one(0), one(0.1)) == [200, 503]
    figures = cluster.capacity("database")
    assert (figures.rejected, figures.queue_wait.count, figures.busy_now) == (1, 1, 0)
    assert 0 < figures.utilization <= 1
