"""Theory follows the graph (issue 22): each endpoint's route comes from the topology's
components, so a topology other than the lab's is predicted too, and the lab's
predictions stay exactly what they were.

The figures are checked against M/M/c formulas written out here (not `theory.py`'s) and
against `network.solve` called by hand with the visits read off the graph by hand.
"""

from __future__ import annotations

import math
import tomllib

import pytest

from labsim.model.network import Route, Station, solve
from labsim.model.prediction import EndpointTheory, Prediction, StationTheory, predict
from labsim.model.scenario import Scenario, load_scenarios, scenarios_from
from labsim.model.theory import Centre, closed_network, mmc_response_quantile

# A load balancer `front` spreads requests at random over two gateway replicas `api`,
# which check each token with `login` (M/M/1), then read the database (`GET /data`) or
# call `svc` through a second balancer (`GET /process`); `svc`, two replicas of two slots,
# reads the database: two slots, M/M/2. `db` requests go to the database directly.
THREE_TIER = """
[components.front]
kind = "load_balancer"
port = 7000
backends = "api"
strategy = "random"
latency = 0.001

[components.api]
kind = "gateway"
ports = [7001, 7002]
auth = "login"
latency = 0.002
concurrency = 1
holds = "service"
service = { model = "exponential", mean = 0.01 }
endpoints."GET /process" = [{ call = "svc-lb", path = "/process" }]
endpoints."GET /data" = [{ call = "database", path = "/db" }]

[components.login]
kind = "login"
port = 7003
latency = 0.0005
concurrency = 1
service = { model = "exponential", mean = 0.002 }

[components.svc-lb]
kind = "load_balancer"
port = 7100
backends = "svc"
strategy = "random"
latency = 0.0005

[components.svc]
kind = "service"
ports = [7101, 7102]
latency = 0.003
concurrency = 2
holds = "service"
service = { model = "exponential", mean = 0.02 }
endpoints."GET /process" = [{ call = "database", path = "/db" }]

[components.database]
kind = "database"
port = 7200
latency = 0.004
concurrency = 2
service = { model = "exponential", mean = 0.05 }

[load]
rate = 30
duration = 10
mix = { process = 2, data = 1, db = 1 }
"""


def graph_scenario(text: str, **changes: object) -> Scenario:
    data = tomllib.loads(text)
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        table = data
        for part in path:
            table = table.setdefault(part, {})
        table[key] = value
    [scenario] = scenarios_from(data, "graph.toml")
    return scenario


def mmc_mean(lam: float, mu: float, c: int) -> float:
    """M/M/c's mean response, from its textbook formula: Erlang C over (c mu - lam),
    plus the mean service."""
    a = lam / mu
    rho = a / c
    top = a**c / math.factorial(c) / (1 - rho)
    p0 = 1 / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return top * p0 / (c * mu - lam) + 1 / mu


def test_a_three_tier_graph_is_an_open_jackson_network():
    prediction = predict(graph_scenario(THREE_TIER))
    assert prediction.reason is None
    # 30/s: 15 process, 7.5 data, 7.5 db. Each api replica gets half of process and data,
    # and login sees every request through api; each svc replica half of process; the
    # database every request.
    lam_api, lam_login, lam_svc, lam_db = 11.25, 22.5, 7.5, 30.0
    w_api, w_login = mmc_mean(lam_api, 100, 1), mmc_mean(lam_login, 500, 1)
    w_svc, w_db = mmc_mean(lam_svc, 50, 2), mmc_mean(lam_db, 20, 2)
    expected = {
        "process": 0.001 + 0.002 + w_api + 0.0005 + w_login + 0.0005 + 0.003 + w_svc,
        "data": 0.001 + 0.002 + w_api + 0.0005 + w_login,
        "db": 0.0,
    }
    expected = {e: (t + 0.004 + w_db) * 1000 for e, t in expected.items()}
    means = {e: t.mean_ms for e, t in prediction.endpoints.items()}
    assert means == pytest.approx(expected, rel=1e-12)
    arrivals = {c: s.arrival_rps for c, s in prediction.stations.items()}
    assert arrivals == pytest.approx(
        {
            "api-7001": lam_api,
            "api-7002": lam_api,
            "login": lam_login,
            "svc-7101": lam_svc,
            "svc-7102": lam_svc,
            "database": lam_db,
        }
    )
    assert prediction.stations["database"].utilization == pytest.approx(0.75)
    # `db` meets one station after a fixed delay: M/M/2's quantiles, shifted.
    db = prediction.endpoints["db"]
    assert db.p99_ms == pytest.approx((0.004 + mmc_response_quantile(30, 20, 2, 0.99)) * 1000)
    assert prediction.endpoints["process"].p50_ms is None  # four stations: no closed form


def test_a_three_tier_graph_agrees_with_network_solve_by_hand():
    prediction = predict(graph_scenario(THREE_TIER))
    stations = [
        Station("api-7001", 1, 100),
        Station("api-7002", 1, 100),
        Station("login", 1, 500),
        Station("svc-7101", 2, 50),
        Station("svc-7102", 2, 50),
        Station("database", 2, 20),
    ]
    api = {"api-7001": 0.5, "api-7002": 0.5, "login": 1.0}
    routes = [
        Route("process", 15, {**api, "svc-7101": 0.5, "svc-7102": 0.5, "database": 1.0}),
        Route("data", 7.5, {**api, "database": 1.0}),
        Route("db", 7.5, {"database": 1.0}),
    ]
    network = solve(stations, routes)
    delays = {"process": 0.011, "data": 0.0075, "db": 0.004}  # every latency on the way
    for endpoint, theory in prediction.endpoints.items():
        mean = network.endpoints[endpoint] + delays[endpoint]
        assert theory.mean_ms == pytest.approx(mean * 1000, rel=1e-12)
    for name, station in prediction.stations.items():
        assert station.arrival_rps == pytest.approx(network.stations[name].lam, rel=1e-12)
        assert station.utilization == pytest.approx(network.stations[name].rho, rel=1e-12)


def test_a_closed_load_on_the_graph_is_its_closed_network():
    prediction = predict(
        graph_scenario(
            THREE_TIER,
            load={"requests": 500, "concurrency": 4, "think": 0.05, "mix": {"process": 1}},
        )
    )
    assert prediction.reason is None
    # Per request: each api replica half the time, login once, each svc replica half,
    # the database once; the latencies a delay.
    centres = [
        Centre(0.011),
        *(Centre(0.5 * 0.01, 1) for _ in range(2)),
        Centre(0.002, 1),
        *(Centre(0.5 * 0.02, 2) for _ in range(2)),
        Centre(0.05, 2),
    ]
    throughput, response = closed_network(centres, 4, 0.05)
    assert prediction.throughput_rps == pytest.approx(throughput, rel=1e-9)
    assert prediction.endpoints["process"].mean_ms == pytest.approx(response * 1000, rel=1e-9)
    assert prediction.stations["database"].utilization == pytest.approx(throughput * 0.05 / 2)


# A gateway that reads the database twice for each request: the database's arrivals are
# twice the requests', and its time counts twice in the mean.
TWICE = """
[components.api]
kind = "gateway"
port = 7001
latency = 0
endpoints."GET /process" = [
  { call = "database", path = "/db" },
  { io = 0.01 },
  { call = "database", path = "/db" },
]

[components.database]
kind = "database"
port = 7200
latency = 0.002
concurrency = 1
service = { model = "exponential", mean = 0.02 }

[auth]
required = false

[load]
rate = 10
duration = 10
mix = { process = 1 }
"""


def test_a_station_visited_twice_a_request_gets_twice_the_arrivals():
    prediction = predict(graph_scenario(TWICE))
    assert prediction.reason is None
    database = prediction.stations["database"]
    assert database.arrival_rps == pytest.approx(20)  # 10 requests a second, 2 reads each
    assert database.utilization == pytest.approx(0.4)
    expected = 0.01 + 2 * (0.002 + mmc_mean(20, 50, 1))
    assert prediction.endpoints["process"].mean_ms == pytest.approx(expected * 1000)
    by_hand = solve([Station("database", 1, 50)], [Route("process", 10, {"database": 2})])
    assert by_hand.stations["database"].lam == pytest.approx(database.arrival_rps)
    assert prediction.endpoints["process"].p50_ms is None  # two visits vary: no closed form


def test_two_endpoints_that_share_a_station_twice_add_up():
    text = TWICE.replace("mix = { process = 1 }", "mix = { process = 1, db = 1 }")
    prediction = predict(graph_scenario(text))
    assert prediction.stations["database"].arrival_rps == pytest.approx(5 * 2 + 5)


def test_a_balancer_over_two_components_splits_by_its_weights():
    text = """
    [components.front]
    kind = "load_balancer"
    port = 7000
    backends = ["fast", "slow"]
    strategy = "weighted"
    weights = [3, 1, 1]
    latency = 0

    [components.fast]
    kind = "service"
    ports = [7001, 7002]
    latency = 0.01
    endpoints."GET /process" = []

    [components.slow]
    kind = "service"
    port = 7003
    latency = 0.05
    endpoints."GET /process" = [{ cpu = 0.02 }]

    [load]
    rate = 10
    duration = 10
    mix = { process = 1 }
    """
    process = predict(graph_scenario(text.replace("\n    ", "\n"))).endpoints["process"]
    # 4 in 5 requests to fast (10 ms), 1 in 5 to slow (50 ms, then 20 ms of work).
    assert process.mean_ms == pytest.approx(0.8 * 10 + 0.2 * 70)
    # A choice of fixed times: the median is fast's, the 99th percentile slow's.
    assert process.p50_ms == pytest.approx(10)
    assert process.p99_ms == pytest.approx(70)


def test_a_random_balancer_over_two_components_splits_by_replicas():
    text = """
    [components.front]
    kind = "load_balancer"
    port = 7000
    backends = ["a", "b"]
    strategy = "random"
    latency = 0.001

    [components.a]
    kind = "service"
    ports = [7001, 7002]
    latency = 0
    concurrency = 1
    service = { model = "exponential", mean = 0.05 }
    endpoints."GET /process" = []

    [components.b]
    kind = "service"
    port = 7003
    latency = 0.002
    concurrency = 1
    service = { model = "exponential", mean = 0.02 }
    endpoints."GET /process" = []

    [load]
    rate = 30
    duration = 10
    mix = { process = 1 }
    """
    prediction = predict(graph_scenario(text.replace("\n    ", "\n")))
    # Three replicas, a third of the requests each: 10/s at every one.
    arrivals = {c: s.arrival_rps for c, s in prediction.stations.items()}
    assert arrivals == pytest.approx({"a-7001": 10, "a-7002": 10, "b": 10})
    expected = 0.001 + 2 / 3 * mmc_mean(10, 20, 1) + 1 / 3 * (0.002 + mmc_mean(10, 50, 1))
    assert prediction.endpoints["process"].mean_ms == pytest.approx(expected * 1000)
    # One hop varies (a choice of two stations) after a fixed delay: its quantiles are the
    # mixture's, P(T > t) = 2/3 e^-(20 - 10)t + 1/3 e^-(50 - 10)(t - 2 ms).
    p50 = prediction.endpoints["process"].p50_ms / 1000 - 0.001
    above = 2 / 3 * math.exp(-10 * p50) + 1 / 3 * math.exp(-40 * (p50 - 0.002))
    assert above == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"components__svc__service": 0.02},
            "svc-7101's service is fixed, not exponential",
        ),
        (
            {"components__svc__holds": "request"},
            "svc-7101 holds its slot while database works",
        ),
        (
            {"components__database__queue_size": 10},
            "database's queue_size (10) limits its line",
        ),
        (
            {"components__login__service": {"model": "exponential", "mean": 0.05}},
            "unstable: login would be",
        ),
        (
            {"components__front__strategy": "round_robin"},
            "the round robin balancer does not split arrivals at random, so the gateways'",
        ),
        (
            {"components__svc-lb__strategy": "power_of_two"},
            "the power of two balancer does not split arrivals at random, so svc's arrivals",
        ),
        (
            {"components__api__endpoints": {"GET /process": [{"call": "svc-lb"}]}},
            "api does not serve GET /data",
        ),
    ],
)
def test_a_station_that_is_not_m_m_c_is_named(changes, reason):
    prediction = predict(graph_scenario(THREE_TIER, **changes))
    assert not prediction.endpoints
    assert prediction.reason is not None
    assert reason in prediction.reason


def test_a_cache_read_through_is_the_reason_naming_the_cache():
    text = """
    [components.api]
    kind = "gateway"
    port = 7001
    endpoints."GET /data" = [
      { read_through = "redis", source = { call = "database", path = "/db" } },
    ]

    [components.redis]
    kind = "cache"
    port = 7004

    [components.database]
    kind = "database"
    port = 7200

    [load]
    rate = 10
    duration = 10
    mix = { data = 1 }
    """
    prediction = predict(graph_scenario(text.replace("\n    ", "\n")))
    assert prediction.reason == (
        "data goes through the cache redis, whose hits and misses take different paths"
    )


def _lab(path: str, **overrides: object) -> dict[str | None, Prediction]:
    return {s.variant: predict(s) for s in load_scenarios(path, overrides)}


# Recorded from the commit before theory followed the graph (ae9b160), to the last bit.
def test_the_labs_predictions_are_unchanged():
    mm1 = _lab("scenarios/mm1.toml")
    half, most = mm1["rho 0.5"].endpoints["process"], mm1["rho 0.8"].endpoints["process"]
    assert (half.mean_ms, half.p50_ms, half.p99_ms) == (200.0, 138.62943611198904, 921.034037197618)
    assert (most.mean_ms, most.p50_ms, most.p99_ms) == (
        500.0,
        346.57359027997256,
        2302.585092994045,
    )
    mmc = _lab("scenarios/mmc.toml")[None]
    process = mmc.endpoints["process"]
    assert process.mean_ms == 207.86516853932582
    assert process.p50_ms == 157.88071912932787
    assert process.p99_ms == 845.5477365422937
    assert mmc.stations["microservice"].utilization == 0.8000000000000002
    seed = _lab(
        "scenarios/seed.toml",
        **{"load.rate": 3, "load.mix": {"data": 1}, "gateways.use_cache": False},
    )
    assert seed[None].endpoints["data"].mean_ms == 2002.7220485936082
    closed = _lab(
        "scenarios/seed.toml",
        **{
            "load.requests": 300,
            "load.concurrency": 3,
            "load.think": 0.1,
            "load.mix": {"process": 1, "longtask": 1},
        },
    )[None]
    assert closed.throughput_rps == 29.169940581179613
    assert closed.endpoints["process"].mean_ms == 2.8455985932173524
    assert closed.stations["load-balancer"].utilization == 0.07875883956918496


def test_the_labs_stations_and_quantiles_are_unchanged():
    changes = {
        "load.rate": 20,
        "load.duration": 10,
        "load.mix": {"process": 2, "longtask": 1, "db": 1, "data": 1},
        "load_balancer.strategy": "random",
        "load_balancer.latency": 0.0015,
        "gateways.concurrency": 1,
        "gateways.holds": "service",
        "gateways.latency": 0.002,
        "gateways.service": {"model": "exponential", "mean": 0.01},
        "gateways.use_cache": False,
        "database.concurrency": 2,
        "database.latency": 0.003,
        "database.service": {"model": "exponential", "mean": 0.05},
        "microservice.service": {"model": "exponential", "mean": 0.02},  # no slots: a delay
        "microservice.latency": 0.004,
    }
    gateway = StationTheory(5.333333333333333, 1, 0.01, 0.05333333333333333)
    assert _lab("scenarios/lab.toml", **changes)[None] == Prediction(
        endpoints={
            "process": EndpointTheory(38.06338028169014, None, None),
            "longtask": EndpointTheory(15.063380281690142, 11.821977259436041, 53.14616393649392),
            "db": EndpointTheory(55.083333333333336, 39.59381772934946, 238.22843433552265),
            "data": EndpointTheory(69.14671361502347, None, None),
        },
        stations={
            "gateway-5000": gateway,
            "gateway-5003": gateway,
            "gateway-5006": gateway,
            "database": StationTheory(8.0, 2, 0.05, 0.2),
        },
    )


def test_the_labs_reasons_are_unchanged():
    assert _lab("scenarios/saturation.toml") == {
        "no cache": Prediction(reason="database's service is fixed, not exponential"),
        "cache": Prediction(
            reason="data goes through the cache, whose hits and misses take different paths"
        ),
    }
    assert _lab("scenarios/scale-out.toml")["3 gateways"].reason == (
        "the round robin balancer does not split arrivals at random, so the gateways' "
        "arrivals are not Poisson"
    )
    assert _lab("scenarios/least-connections.toml")["least connections"].reason == (
        "the least connections balancer does not split arrivals at random, so the gateways' "
        "arrivals are not Poisson"
    )
