"""`GET /metrics` on every component, read back with prometheus_client's own parser."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from labsim.components.exposition import render
from labsim.core.metrics import Buckets

from .conftest import eventually, login
from .test_components import COMPONENTS


async def scrape(http, url: str) -> dict[tuple[str, tuple], float]:
    async with http.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        return parse(await resp.text())


def parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def has(samples: dict, name: str, **labels: str) -> bool:
    return (name, tuple(sorted(labels.items()))) in samples


@pytest.mark.parametrize("component", COMPONENTS)
async def test_every_component_exposes_metrics(cluster, http, component):
    for _ in range(3):  # answered, so counted in the histogram (the scrape itself is not yet)
        async with http.get(f"{cluster.urls[component]}/health") as resp:
            assert resp.status == 200
    samples = await scrape(http, cluster.urls[component])
    count = value(samples, "labsim_http_request_duration_seconds_count", component=component)
    inf = value(
        samples, "labsim_http_request_duration_seconds_bucket", component=component, le="+Inf"
    )
    assert count == inf == 3


async def test_every_figure_is_exposed_from_the_start(cluster, http):
    lb = await scrape(http, cluster.urls["load-balancer"])
    me = {"component": "load-balancer"}
    for gateway in cluster.topology.gateway_ids():
        assert has(lb, "labsim_load_balancer_requests_total", **me, gateway=gateway)
        assert has(lb, "labsim_load_balancer_failures_total", **me, gateway=gateway)
    for name in ("retries", "retry_budget_exhausted", "ejections", "readmissions"):
        assert has(lb, f"labsim_load_balancer_{name}_total", **me)
    worker = await scrape(http, cluster.urls["worker"])
    assert has(worker, "labsim_worker_queued", component="worker")
    assert has(worker, "labsim_worker_rejected_total", component="worker")
    counted = [v for (name, _), v in lb.items() if name.startswith("labsim_load_balancer_")]
    assert sum(counted) == len(cluster.topology.gateway_ids())  # only each gateway_up is 1
    microservice = await scrape(http, cluster.urls["microservice"])
    assert not [name for name, _ in microservice if name.startswith("labsim_microservice")]
    # Each route's answers and drops, at 0 before the first request.
    db = await scrape(http, cluster.urls["database"])
    at_db = {"component": "database", "route": "/db"}
    assert has(db, "labsim_http_requests_total", **at_db, status="200")
    for reason in ("down", "caller_gone"):
        assert has(db, "labsim_http_dropped_total", **at_db, reason=reason)
    cache = await scrape(http, cluster.urls["cache"])
    routes = {dict(labels).get("route") for name, labels in cache if "dropped" in name}
    assert routes == {"/cache", "/cache/stats", "/cache/flush", "/cache/{key}"}


async def test_metric_names_say_their_unit_once_and_help_is_for_a_reader(cluster, http):
    for component in COMPONENTS:
        async with http.get(f"{cluster.urls[component]}/metrics") as resp:
            families = list(text_string_to_metric_families(await resp.text()))
        for family in families:
            words = family.name.removeprefix("labsim_").split("_")
            assert len(words) == len(set(words)), f"{family.name} repeats a word"
            help_text = family.documentation
            assert help_text[0].isupper() and help_text[-1] in ".)", (family.name, help_text)
            if family.type in ("histogram", "summary"):
                assert family.name.endswith("_seconds"), family.name


async def test_metrics_move_with_traffic(cluster, http):
    token = await login(http, cluster.url)
    for _ in range(5):
        async with http.get(f"{cluster.url}/data", headers={"Authorization": token}) as resp:
            assert resp.status == 200
    async with http.post(f"{cluster.url}/longtask", json={}, headers={"Authorization": token}):
        pass
    lb = await scrape(http, cluster.urls["load-balancer"])
    cache = await scrape(http, cluster.urls["cache"])
    db = await scrape(http, cluster.urls["database"])
    worker = await scrape(http, cluster.urls["worker"])

    sent = sum(
        value(lb, "labsim_load_balancer_requests_total", component="load-balancer", gateway=g)
        for g in cluster.topology.gateway_ids()
    )
    assert sent == 7  # login, five /data, one /longtask
    assert all(
        value(lb, "labsim_load_balancer_gateway_up", component="load-balancer", gateway=g) == 1
        for g in cluster.topology.gateway_ids()
    )
    assert value(cache, "labsim_cache_hits_total", component="cache") == 4
    assert value(cache, "labsim_cache_misses_total", component="cache") == 1
    assert value(cache, "labsim_cache_entries", component="cache") == 1
    assert value(db, "labsim_database_calls_total", component="database") == 1
    assert (
        value(db, "labsim_http_requests_total", component="database", route="/db", status="200")
        == 1
    )
    db_seconds = value(db, "labsim_http_request_duration_seconds_sum", component="database")
    assert db_seconds >= 0.01  # the database's 10 ms
    assert value(worker, "labsim_worker_submitted_total", component="worker") == 1
    assert (
        value(worker, "labsim_worker_queued", component="worker")
        + value(worker, "labsim_worker_running", component="worker")
        + value(worker, "labsim_worker_completed_total", component="worker")
        == 1
    )


async def test_the_load_balancer_reports_an_ejected_gateway(start_cluster, http):
    cluster = await start_cluster({"load_balancer": {"outlier": {"consecutive_failures": 1}}})
    await cluster.components["gateway-5000"].runner.cleanup()
    async with http.get(f"{cluster.url}/anything"):
        pass
    lb = await scrape(http, cluster.urls["load-balancer"])
    labels = {"component": "load-balancer", "gateway": "gateway-5000"}
    assert value(lb, "labsim_load_balancer_gateway_up", **labels) == 0
    assert value(lb, "labsim_load_balancer_failures_total", **labels) == 1
    assert value(lb, "labsim_load_balancer_ejections_total", component="load-balancer") == 1


def test_buckets_count_at_or_below_each_bound():
    buckets = Buckets((0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 2.0):
        buckets.add(seconds)
    assert buckets.cumulative() == [2, 3, 4]
    assert (buckets.count, buckets.total) == (4, pytest.approx(2.65))


async def test_dropped_requests_and_work_in_flight_are_exposed_apart(cluster, http):
    db, ctx = cluster.urls["database"], cluster.components["database"].context
    headers = {"Authorization": f"Bearer {cluster.topology.admin_token}"}
    async with http.post(f"{db}/admin/faults", json={"down": True}, headers=headers):
        pass
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(f"{db}/db"):
            pass
    async with http.post(f"{db}/admin/faults", json={"down": False, "hang": True}, headers=headers):
        pass
    hung = asyncio.create_task(http.get(f"{db}/db"))
    await eventually(lambda: ctx.in_flight == 1)
    # Read in-process: a hung component's own /metrics hangs too.
    samples = parse(render(ctx, cluster.components["database"].station))
    me = {"component": "database"}
    assert value(samples, "labsim_http_dropped_total", **me, route="/db", reason="down") >= 1
    assert value(samples, "labsim_http_requests_in_flight", **me) == 1
    assert value(samples, "labsim_http_requests_total", **me, route="/db", status="503") == 0
    async with http.post(f"{db}/admin/reset", headers=headers):
        pass
    (await hung).release()
    samples = await scrape(http, db)
    assert value(samples, "labsim_http_requests_in_flight", **me) == 0
    assert value(samples, "labsim_http_requests_total", **me, route="/db", status="200") == 1
