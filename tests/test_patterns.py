"""The patterns through real ports on the virtual clock: health, ejection, retries, rate
limits, coalescing, stale-while-revalidate, timeouts."""

from __future__ import annotations

import asyncio

import pytest

CREDENTIALS = {"username": "user1", "password": "password123"}


async def admin(client, cluster, component, body=None, path="/admin/faults"):
    headers = {"Authorization": f"Bearer {cluster.topology.admin_token}"}
    url = cluster.urls[component] + path
    return await client.request(
        component,
        "POST" if body is not None or path != "/admin/faults" else "GET",
        url,
        headers=headers,
        json_body=body,
        check=False,
    )


async def token(client, cluster) -> str:
    reply = await client.request("lb", "POST", f"{cluster.url}/login", json_body=CREDENTIALS)
    return reply.json()["token"]


async def lb_state(client, cluster) -> dict:
    return (await client.request("lb", "GET", f"{cluster.url}/health")).json()


async def test_health_checks_eject_and_readmit_on_the_clock(sim):
    check = {"interval": 1.0, "timeout": 0.5, "unhealthy_threshold": 2, "healthy_threshold": 3}
    cluster, clock, client = await sim({"load_balancer": {"health_check": check}})

    async def scenario():
        seen = []
        await admin(client, cluster, "gateway-5003", {"down": True})
        for t in (1.5, 2.5, 3.5):  # checks at 1, 2, 3: unhealthy after the second
            await clock.sleep(t - clock.now())
            seen.append(
                (t, (await lb_state(client, cluster))["gateways"]["gateway-5003"]["healthy"])
            )
        await admin(client, cluster, "gateway-5003", path="/admin/reset")
        for t in (5.5, 6.5):  # good checks at 4, 5, 6: healthy after the third
            await clock.sleep(t - clock.now())
            seen.append(
                (t, (await lb_state(client, cluster))["gateways"]["gateway-5003"]["healthy"])
            )
        return seen

    seen = await clock.run(scenario())
    assert seen == [(1.5, True), (2.5, False), (3.5, False), (5.5, False), (6.5, True)]
    counters = cluster.counters("load-balancer")
    assert counters["health_ejections"] == 1 and counters["readmissions"] == 1


async def test_outlier_ejection_time_grows_with_each_ejection(sim):
    outlier = {"consecutive_failures": 1, "base_ejection": 2.0, "max_ejection_percent": 50}
    cluster, clock, client = await sim({"load_balancer": {"outlier": outlier}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        await admin(client, cluster, "gateway-5000", {"error_rate": 1.0})
        ejected_for = []
        for _ in range(2):
            for _ in range(6):  # round robin reaches gateway-5000 within three requests
                reply = await client.request(
                    "lb", "GET", f"{cluster.url}/process", headers=auth, check=False
                )
                if reply.status == 500:
                    break
            else:
                raise AssertionError("gateway-5000 never answered 500")
            state = (await lb_state(client, cluster))["gateways"]["gateway-5000"]
            ejected_for.append(state["ejected_for"])
            await clock.sleep(state["ejected_for"])
        return ejected_for

    assert await clock.run(scenario()) == [2.0, 4.0]


async def test_ejection_never_takes_more_than_the_cap(sim):
    outlier = {"consecutive_failures": 1, "max_ejection_percent": 34}
    cluster, clock, client = await sim({"load_balancer": {"outlier": outlier}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        for gateway in cluster.topology.gateway_ids():
            await admin(client, cluster, gateway, {"error_rate": 1.0})
        for _ in range(6):
            await client.request("lb", "GET", f"{cluster.url}/process", headers=auth, check=False)
        return await lb_state(client, cluster)

    state = await clock.run(scenario())
    assert sum(not g["available"] for g in state["gateways"].values()) == 1


async def test_a_failed_get_is_retried_on_another_gateway(sim):
    cluster, clock, client = await sim({"load_balancer": {"retry": {"attempts": 1}}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}  # served by gateway-5000
        await admin(client, cluster, "gateway-5000", {"down": True})
        return [
            (await client.request("lb", "GET", f"{cluster.url}/process", headers=auth))
            for _ in range(3)
        ]

    replies = await clock.run(scenario())
    assert [r.status for r in replies] == [200, 200, 200]
    # 5003, 5006, then 5000 is down: retried on the next one, 5003
    assert [r.headers["X-Served-By"] for r in replies] == [
        "gateway-5003",
        "gateway-5006",
        "gateway-5003",
    ]
    assert cluster.counters("load-balancer")["retries"] == 1


async def test_a_post_is_not_retried_when_the_gateway_got_it(sim):
    cluster, clock, client = await sim({"load_balancer": {"retry": {"attempts": 1}}})

    async def scenario():
        await admin(client, cluster, "gateway-5000", {"down": True})
        return await client.request(
            "lb", "POST", f"{cluster.url}/login", json_body=CREDENTIALS, check=False
        )

    reply = await clock.run(scenario())
    assert reply.status == 502 and "gateway-5000" in reply.json()["error"]


async def test_a_post_is_retried_when_the_connection_was_refused(sim):
    cluster, clock, client = await sim({"load_balancer": {"retry": {"attempts": 1}}})
    await cluster.components["gateway-5000"].runner.cleanup()

    async def scenario():
        return await client.request(
            "lb", "POST", f"{cluster.url}/login", json_body=CREDENTIALS, check=False
        )

    reply = await clock.run(scenario())
    assert reply.status == 200
    assert reply.headers["X-Served-By"] == "gateway-5003"


async def test_retries_stop_when_the_budget_is_spent(sim):
    retry = {"attempts": 1, "budget_percent": 0, "min_retries": 2}
    cluster, clock, client = await sim({"load_balancer": {"retry": retry}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        for gateway in cluster.topology.gateway_ids():
            await admin(client, cluster, gateway, {"error_rate": 1.0})
        return [
            (
                await client.request(
                    "lb", "GET", f"{cluster.url}/process", headers=auth, check=False
                )
            ).status
            for _ in range(5)
        ]

    assert await clock.run(scenario()) == [500] * 5
    counters = cluster.counters("load-balancer")
    assert counters["retries"] == 2 and counters["retry_budget_exhausted"] == 3


async def test_a_hung_gateway_times_out_with_504(sim):
    cluster, clock, client = await sim({"load_balancer": {"timeout": 2.0}})

    async def scenario():
        await admin(client, cluster, "gateway-5000", {"hang": True})
        started = clock.now()
        reply = await client.request("lb", "GET", f"{cluster.url}/process", check=False)
        return reply, clock.now() - started

    reply, waited = await clock.run(scenario())
    assert reply.status == 504 and waited == 2.0
    assert reply.json()["component"] == "gateway-5000"
    assert "did not answer within 2s" in reply.json()["error"]


async def test_rate_limit_at_the_load_balancer_answers_429_with_headers(sim):
    cluster, clock, client = await sim({"load_balancer": {"rate_limit": {"rate": 1, "burst": 2}}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}  # no token yet: by address
        url = f"{cluster.url}/process"
        first = await client.request("lb", "GET", url, headers=auth)  # user1's bucket: 2
        await client.request("lb", "GET", url, headers=auth)
        refused = await client.request("lb", "GET", url, headers=auth, check=False)
        other = await client.request("lb", "POST", f"{cluster.url}/login", json_body=CREDENTIALS)
        await clock.sleep(1.0)
        again = await client.request("lb", "GET", url, headers=auth)
        return first, refused, other, again

    first, refused, other, again = await clock.run(scenario())
    assert first.status == 200 and first.headers["RateLimit-Remaining"] == "1"
    assert refused.status == 429
    assert refused.json() == {"error": "rate limit exceeded", "component": "load-balancer"}
    assert refused.headers["Retry-After"] == "1"
    assert refused.headers["RateLimit-Limit"] == "2"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert refused.headers["RateLimit-Reset"] == "2"
    assert other.status == 200 and again.status == 200
    assert cluster.counters("load-balancer")["rate_limited"] == 1


async def test_rate_limit_at_the_gateways(sim):
    cluster, clock, client = await sim({"gateways": {"rate_limit": {"rate": 1, "burst": 1}}})
    url = cluster.urls["gateway-5000"]

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        return [
            (await client.request("g", "GET", f"{url}/process", headers=auth, check=False))
            for _ in range(2)
        ]

    ok, refused = await clock.run(scenario())
    assert ok.status == 200 and refused.status == 429
    assert refused.json()["component"] == "gateway-5000"


async def test_a_gateway_s_bucket_leaves_its_reports_alone(sim):
    cluster, clock, client = await sim({"gateways": {"rate_limit": {"rate": 1, "burst": 1}}})
    url = cluster.urls["gateway-5000"]

    async def scenario():
        return [
            (await client.request("g", "GET", f"{url}{path}", check=False)).status
            for path in ("/health", "/metrics", "/status") * 3
        ]

    assert await clock.run(scenario()) == [200] * 9


async def test_coalescing_makes_one_database_call(sim):
    cluster, clock, client = await sim({"cache": {"coalesce": True}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        replies = await asyncio.gather(
            *(client.request("lb", "GET", f"{cluster.url}/data", headers=auth) for _ in range(10))
        )
        return [r.json()["cached"] for r in replies]

    cached = await clock.run(scenario())
    assert cached.count(False) == 1 and cached.count(True) == 9
    assert cluster.counters("database")["db_calls"] == 1
    assert cluster.counters("cache")["coalesced"] == 9


async def test_a_lease_not_filled_passes_on(sim):
    cluster, clock, client = await sim({"cache": {"coalesce": True, "lease_timeout": 3}})
    url = f"{cluster.urls['cache']}/cache/k"

    async def scenario():
        holder = (await client.request("cache", "GET", url)).json()
        waiter = asyncio.create_task(client.request("cache", "GET", url))
        await clock.sleep(1)
        assert not waiter.done()
        return holder, (await waiter).json(), clock.now()

    holder, waiter, now = await clock.run(scenario())
    assert holder == {"value": None, "lease": True}
    assert waiter == {"value": None, "lease": True} and now == 3.0


async def test_stale_while_revalidate(sim):
    cache = {"ttl": 10, "stale_while_revalidate": 60}
    cluster, clock, client = await sim({"cache": cache, "database": {"latency": 1}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}

        async def data():
            reply = await client.request("lb", "GET", f"{cluster.url}/data", headers=auth)
            return reply.json()["cached"], clock.now()

        seen = [await data()]  # miss: 1 s database
        await clock.sleep(20)  # expired 10 s ago: stale, within the grace period
        seen += [await data(), await data()]
        await clock.sleep(5)
        return seen

    seen = await clock.run(scenario())
    assert [cached for cached, _ in seen] == [False, True, True]
    assert seen[1][1] - seen[0][1] == pytest.approx(20, abs=0.01)  # stale answered at once
    assert cluster.counters("database")["db_calls"] == 2  # one background refresh
    assert cluster.counters("cache")["stale"] == 2
