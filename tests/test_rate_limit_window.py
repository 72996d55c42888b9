"""A count per window on any component (the course's Lab 5 rate limit): the sliding log
on a clock moved by hand, then through real ports on the virtual clock, its settings
checked, its refusals counted."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from labsim.cli import main
from labsim.model.config import ConfigError, gateway_settings
from labsim.model.prediction import predict
from labsim.model.rate_limit import SlidingWindow, covers
from labsim.model.scenario import load_scenarios
from labsim.model.topology import topology_from_dict
from labsim.run.describe import describe_topology

from .conftest import make_topology
from .test_patterns import CREDENTIALS, token
from .test_rate_limit import Hand


def test_exactly_requests_pass_in_a_window_then_429():
    now = Hand()
    window = SlidingWindow(requests=3, window=60, now=now)
    verdicts = []
    for t in (0, 1, 2, 3, 59.9):
        now.t = t
        verdicts.append(window.check())
    assert [v.allowed for v in verdicts] == [True, True, True, False, False]
    assert window.refused == 2 and len(window) == 3  # refusals are not logged
    assert verdicts[0].headers == {}  # an admitted request carries nothing
    assert verdicts[3].headers == {
        "Retry-After": "57",  # at 3 s, the oldest (0 s) leaves the window at 60 s
        "RateLimit-Limit": "3",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "57",
    }
    assert verdicts[4].headers["Retry-After"] == "1"  # 0.1 s, rounded up


def test_the_window_slides_with_each_request_not_in_fixed_buckets():
    now = Hand()
    window = SlidingWindow(requests=2, window=10, now=now)
    admitted = {}
    for t in (0, 6, 9, 10, 11, 15, 16, 19.5, 26):
        now.t = t
        admitted[t] = window.check().allowed
    # 0 and 6 fill it; 9 is refused; at 10 the request of 0 has left (10 s ago, as the
    # guide's `now - t < RATE_TIME` keeps it no longer), so 10 passes; 11 and 15 find 6
    # and 10 still there (fixed buckets of 10 s would have let 11 and 15 through); at 16,
    # 6 has left; at 19.5, 10 and 16 are in; at 26, both have left.
    assert admitted == {
        0: True,
        6: True,
        9: False,
        10: True,
        11: False,
        15: False,
        16: True,
        19.5: False,
        26: True,
    }


def test_retry_after_is_when_the_oldest_request_leaves_rounded_up():
    now = Hand()
    window = SlidingWindow(requests=1, window=30, now=now)
    window.check()
    for t, expected in ((0.0, "30"), (0.5, "30"), (12.25, "18"), (29.999, "1")):
        now.t = t
        assert window.check().headers["Retry-After"] == expected, t
    now.t = 30.0
    assert window.check().allowed


def test_memory_is_bounded_by_requests_however_many_ask():
    now = Hand()
    window = SlidingWindow(requests=5, window=1.0, now=now)
    most = 0
    for i in range(10_000):
        now.t = i * 0.01  # 100 a second against 5 a second
        window.check()
        most = max(most, len(window))
        assert len(window._log) <= 5  # the deque itself, not only what it reports
    assert most == 5 and window._log.maxlen == 5
    assert window.refused == 10_000 - 500


def test_paths_limit_some_routes_and_reporting_routes_never():
    assert covers((), "/data") and covers((), "/cache/my_data")
    for path in ("/health", "/metrics", "/admin/faults", "/status"):
        assert not covers((), path) and not covers(("/",), path)
    assert covers(("/cache",), "/cache") and covers(("/cache",), "/cache/my_data")
    assert covers(("/cache/",), "/cache/my_data")
    assert not covers(("/cache",), "/cachet") and not covers(("/login",), "/data")
    assert covers(("/login", "/data"), "/data")
    assert not covers(("/",), "/status") and covers(("/",), "/anything")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"database": {"rate_limit": {"requests": 5}}}, "database.rate_limit: give both requests"),
        ({"cache": {"rate_limit": {"window": 30}}}, "cache.rate_limit: give both requests"),
        ({"worker": {"rate_limit": {"requests": -1, "window": 1}}}, "worker.rate_limit.requests"),
        (
            {"worker": {"rate_limit": {"requests": 10**7, "window": 1}}},
            "worker.rate_limit.requests: must be from 0 (off) to 1000000",
        ),
        ({"database": {"rate_limit": {"requests": 1, "window": -1}}}, "database.rate_limit.window"),
        (
            {"microservice": {"rate_limit": {"paths": ["/process"]}}},
            "microservice.rate_limit.paths: limits the count per window only",
        ),
        (
            {"gateways": {"rate_limit": {"requests": 1, "window": 1, "paths": ["login"]}}},
            'gateways.rate_limit.paths[0]: must start with "/"',
        ),
        (
            {"cache": {"rate_limit": {"requests": 1, "window": 1, "paths": ["/cache", "/status"]}}},
            "cache.rate_limit.paths[1]: /status is never rate limited",
        ),
        (
            {"cache": {"rate_limit": {"requests": 1, "window": 1, "paths": "/cache"}}},
            "cache.rate_limit.paths: must be a list",
        ),
        (
            {"cache": {"rate_limit": {"requests": 1, "window": 1, "paths": ["/x"] * 101}}},
            "cache.rate_limit.paths: must list at most 100 paths",
        ),
        (
            {"database": {"rate_limit": {"rate": 5}}},
            "database.rate_limit: give both rate and burst",
        ),
        (
            {"gateways": {"each": {"gateway-5003": {"rate_limit": {"rate": 1, "burst": 1}}}}},
            "gateways.each.gateway-5003.rate_limit.rate: the gateways keep one token bucket",
        ),
        (
            {"load_balancer": {"rate_limit": {"rate": 5}}},
            "load_balancer.rate_limit: give both rate",
        ),
        ({"gateways": {"rate_limit": {"burst": 5}}}, "gateways.rate_limit: give both rate and"),
        ({"cache": {"rate_limit": {"requests": 1, "window": 1, "size": 2}}}, "unknown key"),
        ({"worker": {"status_name": "API GATEWAY"}}, "worker.status_name: must be 1 to 64"),
        ({"cache": {"status_name": "x" * 65}}, "cache.status_name: must be 1 to 64"),
        ({"database": {"status_name": 5}}, "database.status_name: must be a str"),
    ],
)
def test_a_bad_rate_limit_or_status_name_is_refused_naming_its_key(changes, message):
    with pytest.raises(ConfigError) as e:
        topology_from_dict(changes, "s.toml")
    assert str(e.value).startswith("s.toml: ") and "\n" not in str(e.value)
    assert message in str(e.value)


def test_a_bad_key_ends_the_cli_in_one_line_with_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[database]\nrate_limit = { requests = 10 }\n")
    assert main(["bench", "--scenario", str(path), "--requests", "1"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "database.rate_limit: give both requests" in err


def test_both_forms_at_once_and_each_gateway_keeps_the_shared_ones_unless_given():
    topology = make_topology(
        {
            "load_balancer": {
                "rate_limit": {"rate": 5, "burst": 10, "requests": 100, "window": 60}
            },
            "gateways": {
                "rate_limit": {"rate": 1, "burst": 2, "requests": 120, "window": 60},
                "status_name": "APIGATEWAY",
                "each": {
                    "gateway-5003": {"concurrency": 2},
                    "gateway-5006": {"rate_limit": {"requests": 50, "window": 60}},
                },
            },
        }
    )
    shared = topology.gateways
    assert gateway_settings(topology, "gateway-5000") == shared
    kept = gateway_settings(topology, "gateway-5003")
    assert kept.concurrency == 2 and kept.rate_limit == shared.rate_limit
    assert kept.status_name == "APIGATEWAY"
    own = gateway_settings(topology, "gateway-5006")
    assert (own.rate_limit.requests, own.rate_limit.rate) == (50, 0)  # replaced whole
    assert own.status_name == "APIGATEWAY"


def test_the_report_s_settings_name_each_window():
    topology = make_topology(
        {
            "database": {"rate_limit": {"requests": 150, "window": 60}},
            "gateways": {"rate_limit": {"requests": 100, "window": 60, "paths": ["/login"]}},
        }
    )
    assert describe_topology(topology)["rate limits"] == (
        "each gateway 100 per 60 s on /login, database 150 per 60 s"
    )
    assert describe_topology(make_topology())["rate limits"] == "off"


def test_no_theory_predicts_a_run_a_window_refuses_on(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text(
        'name = "w"\n[load]\nmix = { process = 1 }\nrate = 10\n'
        "[microservice]\nrate_limit = { requests = 5, window = 1 }\n"
    )
    [scenario] = load_scenarios(path)
    assert predict(scenario).reason == "a rate limit (microservice) refuses requests"


# --- through real ports, on the virtual clock ------------------------------------------


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_component_answers_429_json_with_retry_after_past_its_window(sim):
    cluster, clock, client = await sim({"database": {"rate_limit": {"requests": 3, "window": 60}}})
    url = f"{cluster.urls['database']}/db"

    async def scenario():
        first = [await client.request("db", "GET", url, check=False) for _ in range(4)]
        at_refusal = clock.now()
        await clock.sleep(60 - clock.now() + 0.01)  # the first has left the window
        again = await client.request("db", "GET", url, check=False)
        health = await client.request("db", "GET", f"{cluster.urls['database']}/health")
        metrics = await client.request("db", "GET", f"{cluster.urls['database']}/metrics")
        return first, at_refusal, again, health.json(), metrics.body.decode()

    first, at_refusal, again, health, metrics = await clock.run(scenario())
    assert [r.status for r in first] == [200, 200, 200, 429]
    refused = first[3]
    assert refused.json() == {"error": "rate limit exceeded", "component": "database"}
    assert refused.headers["Content-Type"].startswith("application/json")
    # Admitted at 0, 0.01, 0.02 (the database's 10 ms each); refused at once at 0.03.
    assert at_refusal == pytest.approx(0.03)
    assert refused.headers["Retry-After"] == "60"  # 59.97 s, rounded up
    assert again.status == 200
    assert health["counters"] == {"db_calls": 4, "rate_limited": 1}
    samples = _samples(metrics)
    assert samples[("labsim_database_rate_limited_total", (("component", "database"),))] == 1
    answered = (("component", "database"), ("route", "/db"), ("status", "429"))
    assert samples[("labsim_http_requests_total", answered)] == 1


async def test_a_gateway_passes_its_backend_s_429_on_naming_it(sim):
    cluster, clock, client = await sim({"database": {"rate_limit": {"requests": 1, "window": 60}}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}
        url = cluster.urls["database"] + "/db"
        await client.request("db", "GET", url)  # the database's one request this minute
        return await client.request("lb", "GET", f"{cluster.url}/data", headers=auth, check=False)

    refused = await clock.run(scenario())
    assert refused.status == 429
    assert refused.json()["component"] == "database"
    assert refused.json()["error"] == "database answered 429: rate limit exceeded"
    assert refused.headers["Retry-After"] == "60"


async def test_each_replica_counts_its_own_requests(sim):
    cluster, clock, client = await sim({"gateways": {"rate_limit": {"requests": 2, "window": 60}}})

    async def scenario():
        auth = {"Authorization": await token(client, cluster)}  # one request at one gateway
        url = f"{cluster.url}/process"
        return [await client.request("lb", "GET", url, headers=auth, check=False) for _ in range(6)]

    replies = await clock.run(scenario())
    served = [(r.status, r.headers["X-Served-By"]) for r in replies]
    # Round robin from gateway-5003 (gateway-5000 took the login): 5 pass, 2 per gateway.
    assert [status for status, _ in served] == [200] * 5 + [429]
    assert served[5] == (429, "gateway-5000")
    assert [
        cluster.components[g].context.rate_window.refused for g in cluster.topology.gateway_ids()
    ] == [1, 0, 0]
    assert cluster.counters("gateway-5000")["rate_limited"] == 1  # its own figure's name


async def test_paths_limit_only_the_routes_they_name(sim):
    limit = {"requests": 1, "window": 60, "paths": ["/login"]}
    cluster, clock, client = await sim({"gateways": {"rate_limit": limit}})
    gateway = cluster.urls["gateway-5000"]

    async def scenario():
        login = f"{gateway}/login"
        first = await client.request("g", "POST", login, json_body=CREDENTIALS)
        second = await client.request("g", "POST", login, json_body=CREDENTIALS, check=False)
        auth = {"Authorization": first.json()["token"]}
        work = [
            await client.request("g", "GET", f"{gateway}/process", headers=auth, check=False)
            for _ in range(3)
        ]
        reports = [
            await client.request("g", "GET", f"{gateway}{path}", check=False)
            for path in ("/health", "/metrics", "/status", "/health")
        ]
        return second, work, reports

    second, work, reports = await clock.run(scenario())
    assert second.status == 429 and second.json()["component"] == "gateway-5000"
    assert [r.status for r in work] == [200] * 3
    assert [r.status for r in reports] == [200] * 4


async def test_the_load_balancer_window_counts_with_its_bucket_s_figure(sim):
    cluster, clock, client = await sim(
        {"load_balancer": {"rate_limit": {"requests": 2, "window": 10}}}
    )

    async def scenario():
        replies = [
            await client.request("lb", "GET", f"{cluster.url}/anything", check=False)
            for _ in range(3)
        ]
        status = await client.request("lb", "GET", f"{cluster.url}/status")
        metrics = await client.request("lb", "GET", f"{cluster.url}/metrics")
        return replies, status, metrics.body.decode()

    replies, status, metrics = await clock.run(scenario())
    assert [r.status for r in replies] == [404, 404, 429]  # the gateways' 404, then its own
    assert replies[2].headers["X-Served-By"] == "load-balancer"
    assert status.json() == {"load-balancer": {"404": 2, "429": 1}}
    samples = _samples(metrics)
    assert (
        samples[("labsim_load_balancer_rate_limited_total", (("component", "load-balancer"),))] == 1
    )


def test_a_virtual_run_with_a_window_repeats_exactly():
    from labsim.run import BenchOptions, run_bench

    topology = make_topology({"database": {"rate_limit": {"requests": 3, "window": 1}}})
    options = BenchOptions(requests=60, concurrency=5, mix={"data": 1})

    def once():
        return asyncio.run(run_bench(topology, options)).as_dict()

    first, second = once(), once()
    for report in (first, second):
        report["time"].pop("wall_s")
    assert first == second
    assert first["requests"]["by_status"].get("429", 0) > 0


async def test_every_kind_exports_its_refusals_once_by_the_metric_rules(sim):
    window = {"rate_limit": {"requests": 5, "window": 60}}
    kinds = ("load_balancer", "gateways", "cache", "database", "worker", "microservice")
    cluster, clock, client = await sim(dict.fromkeys(kinds, window))

    async def scenario():
        return {
            c: (await client.request(c, "GET", f"{url}/metrics")).body.decode()
            for c, url in cluster.urls.items()
        }

    for component, text in (await clock.run(scenario())).items():
        kind = cluster.components[component].kind
        families = list(text_string_to_metric_families(text))
        limited = [f for f in families if f.name == f"labsim_{kind}_rate_limited"]
        assert len(limited) == 1 and limited[0].type == "counter", component
        help_text = limited[0].documentation
        assert help_text[0].isupper() and help_text.endswith("."), help_text
        assert [s.value for s in limited[0].samples] == [0.0]  # there from the start
        words = limited[0].name.removeprefix("labsim_").split("_")
        assert len(words) == len(set(words))
