"""`labsim bench`: the lab's numbers, exactly, on the virtual clock; repeatable; its report."""

from __future__ import annotations

import asyncio
import csv
import json
import re

import pytest

import labsim
from labsim.cli import main
from labsim.model.load import plan
from labsim.model.topology import load_topology
from labsim.run import BenchOptions, run_bench
from labsim.views.report.common import column, decimals

from .conftest import make_topology


def bench(topology=None, **options) -> dict:
    result = asyncio.run(run_bench(topology or load_topology(None), BenchOptions(**options)))
    return result.as_dict()


def test_lab_mix_on_the_virtual_clock_is_exactly_the_model():
    r = bench()
    assert r["clock"] == "virtual" and r["seed"] == 1
    assert r["requests"] == {
        "total": 100,
        "ok": 100,
        "failed": 0,
        "by_status": {"200": 50, "202": 50},
    }
    assert r["cache"] == {"hits": 40, "misses": 10, "hit_ratio": 0.8, "coalesced": 0, "stale": 0}
    assert r["db_calls"] == 10
    data = r["endpoints"]["data"]
    # hit: lb 1 + gateway 1 + cache 1 ms; miss: + database 2000 + cache write 1 ms
    assert data["hits"] | {} == {
        "count": 40,
        "mean_ms": 3.0,
        "min_ms": 3.0,
        "p50_ms": 3.0,
        "p90_ms": 3.0,
        "p99_ms": 3.0,
        "max_ms": 3.0,
    }
    assert (data["misses"]["count"], data["misses"]["mean_ms"], data["misses"]["max_ms"]) == (
        10,
        2004.0,
        2004.0,
    )
    assert data["mean_ms"] == (40 * 3 + 10 * 2004) / 50
    assert r["endpoints"]["longtask"]["mean_ms"] == 3.0
    # after login: 10 misses together, 4 waves of hits, 5 waves of longtasks, 3 ms each
    assert r["time"]["simulated_s"] == pytest.approx(2.004 + 4 * 0.003 + 5 * 0.003)
    assert r["speedup"] == {"measured": 668.0, "predicted": 668.0}
    assert sorted(r["gateways"].values()) == [33, 33, 34]
    assert r["worker"] == {"queued": 50, "completed": 50}
    assert r["failures"] == []


def _without_wall(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    del report["time"]["wall_s"]
    return report


def test_three_runs_are_identical():
    topology = make_topology(
        {"database": {"latency": {"model": "lognormal", "median": 0.05, "sigma": 0.8}}},
        base={},
    )
    runs = [_without_wall(bench(topology, requests=300, concurrency=20)) for _ in range(3)]
    assert runs[0] == runs[1] == runs[2]
    assert runs[0]["requests"]["ok"] == 300


def test_a_different_seed_gives_different_draws():
    changes = {"database": {"latency": {"model": "exponential", "mean": 0.05}}}
    a = bench(make_topology(changes | {"seed": 1}, base={}), mix={"data": 1}, requests=20)
    b = bench(make_topology(changes | {"seed": 2}, base={}), mix={"data": 1}, requests=20)
    assert a["endpoints"]["data"]["misses"] != b["endpoints"]["data"]["misses"]


def test_real_clock_with_tiny_latencies():
    # 100 ms of database: long enough that all five first requests miss on a busy machine
    topology = make_topology({"database": {"latency": 0.1}})
    r = bench(topology, clock="real", requests=40, concurrency=5)
    assert r["clock"] == "real"
    assert r["requests"]["ok"] == 40
    assert r["cache"]["misses"] == 5 and r["cache"]["hits"] == 15
    assert r["db_calls"] == 5
    assert r["endpoints"]["data"]["misses"]["min_ms"] >= 100


def test_process_endpoint_and_mix_order():
    r = bench(make_topology(), mix={"process": 1, "data": 1}, requests=10)
    assert r["endpoints"]["process"]["count"] == 5 and r["endpoints"]["data"]["count"] == 5
    assert list(r["endpoints"]) == ["process", "data"]


def test_failures_are_counted_and_grouped(start_cluster):
    # A worker that refuses all but one task: the rest of the longtasks fail with 503.
    topology = make_topology({"worker": {"concurrency": 1, "queue_size": 1, "task_duration": 10}})
    r = bench(topology, mix={"longtask": 1}, requests=5, concurrency=1)
    assert r["requests"]["ok"] == 2 and r["requests"]["failed"] == 3
    assert r["requests"]["by_status"] == {"202": 2, "503": 3}
    [failure] = r["failures"]
    assert failure["endpoint"] == "longtask" and failure["status"] == 503 and failure["count"] == 3
    assert "queue is full" in failure["error"]


def test_plan_splits_by_weight_in_order():
    assert plan(100, {"data": 50, "longtask": 50}) == [("data", 50), ("longtask", 50)]
    assert plan(7, {"data": 1, "longtask": 1}) == [("data", 4), ("longtask", 3)]
    assert plan(10, {"data": 0, "process": 3}) == [("process", 10)]


JSON_KEYS = {
    "clock",
    "requests",
    "time",
    "throughput_rps",
    "endpoints",
    "cache",
    "db_calls",
    "speedup",
    "gateways",
    "worker",
    "failures",
}


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    path = tmp_path / "report.json"
    code = main(["bench", "--requests", "100", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0
    assert "40 hits, 10 misses, hit ratio 0.80; database calls 10" in out
    assert "measured 668.0x, predicted 668.0x" in out
    assert "clock virtual, scenario lab, seed 1" in out
    report = json.loads(path.read_text())
    assert set(report) >= JSON_KEYS
    assert set(report["requests"]) == {"total", "ok", "failed", "by_status"}
    assert set(report["time"]) == {"simulated_s", "wall_s"}
    data = report["endpoints"]["data"]
    for part in (data, data["hits"], data["misses"], report["endpoints"]["longtask"]):
        assert {"count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"} <= set(part)


def test_cli_verbose_prints_one_line_per_request_like_the_lab(capsys):
    assert main(["bench", "--requests", "20", "--verbose", "--concurrency", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    requests = [line for line in lines if line.startswith("[")]
    assert len(requests) == 20
    assert requests[0] == (
        "[DATA] Request 1: Status 200, Response: "
        "{'cached': False, 'data': 'Fetched fresh data from DB', 'gateway_id': 'gateway-5003'}"
    )
    assert requests[-1].startswith("[LONGTASK] Request 20: Status 202")


def test_cli_exit_1_when_a_request_fails(tmp_path, capsys):
    scenario = tmp_path / "tight.toml"
    scenario.write_text("[worker]\nconcurrency = 1\nqueue_size = 1\n")
    assert (
        main(["bench", "--scenario", str(scenario), "--mix", "longtask=1", "--requests", "5"]) == 1
    )
    assert "503" in capsys.readouterr().out


def test_cli_overrides_reach_the_bench(capsys):
    assert (
        main(
            [
                "bench",
                "--gateways",
                "5",
                "--db-latency",
                "0.5",
                "--mix",
                "data=1",
                "--requests",
                "50",
                "--seed",
                "7",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "gateway-5012 10" in out and "seed 7" in out
    assert "measured 168.0x, predicted 168.0x" in out  # (3 + 500 + 1) / 3


def test_progress_bar_goes_to_stderr_only_when_asked(capsys):
    bench(requests=40, progress="bar")
    err = capsys.readouterr().err
    assert err.endswith("\n") and f"[{'#' * 30}] 40/40 requests answered  " in err
    assert re.search(r"answered  [\d,]+/s, 0:00 left\n$", err)  # the pace, and no time left
    bench(requests=40)
    assert capsys.readouterr().err == ""


def test_a_long_run_in_a_log_shows_progress_lines(capsys, monkeypatch):
    import labsim.run.driver

    monkeypatch.setattr(labsim.run.driver, "PROGRESS_EVERY", 0.0)  # a line at every step
    bench(requests=400, progress="lines")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("labsim: 2/400 requests answered (0%, ")
    assert lines[-1].startswith("labsim: 400/400 requests answered (100%, ")
    assert re.fullmatch(r".*\(100%, \d+ s, [\d,]+/s, 0:00 left\)", lines[-1])
    assert all(re.search(r"/s, \d+:\d\d left\)$", line) for line in lines)
    assert len(lines) == 200 and "\r" not in "".join(lines)


def test_more_requests_in_flight_than_a_pool_has_connections():
    # 100 in flight through one gateway, with 64 connections to it: requests queued for a
    # connection are parked, so the virtual clock moves on instead of waiting forever.
    runs = [
        _without_wall(
            bench(
                make_topology({"database": {"latency": 0.5}, "gateways": {"ports": [5000]}}),
                requests=300,
                concurrency=100,
                mix={"data": 1},
            )
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert runs[0]["requests"]["ok"] == 300 and runs[0]["db_calls"] == 64


def mm1k(lam: float, mu: float, k: int) -> tuple[float, float]:
    """M/M/1/K: the mean response of the requests let in (s), and the share turned away."""
    weights = [(lam / mu) ** n for n in range(k + 1)]
    p = [w / sum(weights) for w in weights]
    in_system = sum(n * pn for n, pn in enumerate(p))
    return in_system / (lam * (1 - p[k])), p[k]


def test_served_latency_is_apart_from_the_refused_requests():
    # M/M/1/5 at lambda 12, mu 10: a quarter of the arrivals find the station full and get
    # a 503 at once. Counted in, those 0 ms made the mean 252 ms; served requests take
    # 336 ms, as theory says.
    station = {"concurrency": 1, "queue_size": 4, "timeout": 600}
    station["service"] = {"model": "exponential", "mean": 0.1}
    topology = make_topology({"load_balancer": {"timeout": 600}, "microservice": station})
    options = BenchOptions(rate=12, requests=2000, mix={"process": 1})
    process = asyncio.run(run_bench(topology, options)).endpoints["process"]
    served, turned_away = mm1k(12, 10, 5)
    assert process.mean_ms == pytest.approx(served * 1000, rel=0.1)
    assert process.count + process.failed == 2000
    assert process.failed / 2000 == pytest.approx(turned_away, abs=0.03)
    assert process.failed_latency is not None
    assert process.failed_latency.count == process.failed and process.failed_latency.max_ms == 0


def test_every_view_shows_served_and_failed_requests_apart(tmp_path, capsys):
    # One slot, no waiting line, 10 ms of service, two clients: one is served in 13 ms,
    # the other turned away in 3 ms, four times. The served figures are the served ones'.
    scenario = tmp_path / "tight.toml"
    scenario.write_text("[microservice]\nconcurrency = 1\nqueue_size = 0\nservice = 0.01\n")
    args = ["bench", "--scenario", str(scenario), "--mix", "process=1", "--requests", "6"]
    files = ["--json", str(tmp_path / "r.json"), "--csv", str(tmp_path / "r")]
    assert main([*args, "--concurrency", "2", *files, "--html", str(tmp_path / "r.html")]) == 1
    out = capsys.readouterr().out
    assert re.search(
        r"endpoint +served +mean ms .* max ms +failed +failed mean ms +failed max ms\n"
        r" +process +2 +13 +13 +13 +13 +13 +4 +3 +3\n",
        out,
    )
    process = json.loads((tmp_path / "r.json").read_text())["endpoints"]["process"]
    assert (process["count"], process["mean_ms"], process["failed"]) == (2, 13.0, 4)
    assert process["failed_latency"] | {} == {
        "count": 4,
        "mean_ms": 3.0,
        "min_ms": 3.0,
        "p50_ms": 3.0,
        "p90_ms": 3.0,
        "p99_ms": 3.0,
        "max_ms": 3.0,
    }
    with open(tmp_path / "r_stats.csv", newline="") as f:
        stats = {row["name"]: row for row in csv.DictReader(f)}
    row = stats["process"]
    assert (row["served"], row["failed"], row["mean_ms"], row["max_ms"]) == (
        "2",
        "4",
        "13.0",
        "13.0",
    )
    assert (row["failed_mean_ms"], row["failed_max_ms"]) == ("3.0", "3.0")
    assert (stats["total"]["served"], stats["total"]["failed"]) == ("2", "4")
    page = (tmp_path / "r.html").read_text()
    assert '<th>endpoint</th><th class="n">served</th>' in page
    assert '<th class="n">failed mean ms</th>' in page
    assert '<td>process</td><td class="n">2</td><td class="n">13</td>' in page


def test_without_a_cache_the_report_says_so(tmp_path, capsys):
    # With use_cache = false the cache is never called: no "1000 misses, hit ratio 0",
    # no speedup that nothing could have.
    scenario = tmp_path / "no-cache.toml"
    scenario.write_text("[gateways]\nuse_cache = false\n[database]\nlatency = 0.5\n")
    args = ["bench", "--scenario", str(scenario), "--mix", "data=1", "--requests", "20"]
    page = tmp_path / "r.html"
    assert main([*args, "--json", str(tmp_path / "r.json"), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    assert "cache       none: every /data reads the database (gateways.use_cache = false)" in out
    assert "misses" not in out and "hit ratio" not in out and "speedup" not in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["cache"] is None and report["speedup"] is None and report["db_calls"] == 20
    assert set(report["endpoints"]["data"]) >= {"count", "mean_ms"}
    assert "hits" not in report["endpoints"]["data"]
    assert list(report["latency_distribution"]["series"]) == ["data"]
    html = page.read_text()
    assert "No cache: every /data reads the database" in html and "hit ratio" not in html
    assert ">misses so far<" not in html and "speedup" not in html


def test_a_table_writes_each_column_one_way(capsys):
    # Once a row read "435.746  31.75  2074  2076.526": trailing zeros dropped, each number
    # as it came. Now each column is whole when all its numbers are, else one decimal.
    assert main(["run", "scenarios/seed.toml"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("  endpoint") : out.index("\n\n", out.index("  endpoint"))]
    rows = [line.split() for line in table.splitlines()]
    for cells in zip(*(row[1:7] for row in rows[1:]), strict=True):  # served ... max ms
        places = {len(cell.partition(".")[2]) for cell in cells if cell != "-"}
        assert places in ({0}, {1}), cells
    assert rows[0][:3] == ["endpoint", "served", "mean"]
    assert any("." in cell for cell in rows[1]) and "2,074" in table


@pytest.mark.parametrize(
    ("values", "places", "shown"),
    [
        ([3.0, 2004.0, None], 1, ["3", "2,004", "-"]),
        ([403.2, 3.0, 2004.0], 1, ["403.2", "3.0", "2,004.0"]),
        ([25.998, 5.021, 79.57, 156.7], 1, ["26.0", "5.0", "79.6", "156.7"]),
        ([0.8, 0.995], 2, ["0.80", "0.99"]),
        ([1000, 50], 1, ["1,000", "50"]),
    ],
)
def test_one_rule_for_a_column_of_figures(values, places, shown):
    assert column(values, places) == shown


def test_a_figure_s_unit_gives_its_decimals():
    assert [decimals(n) for n in ("p99 ms", "throughput req/s", "simulated s")] == [1, 1, 3]
    assert [decimals(n) for n in ("cache hit ratio", "gateway-5000 utilization")] == [3, 3]


def test_a_load_without_data_claims_no_cache_figures(capsys):
    # The cache is there, but a load of /process never reads it: no "0 misses, hit
    # ratio -" and no predicted speedup that nothing measured.
    assert main(["bench", "--mix", "process=1", "--requests", "10"]) == 0
    out = capsys.readouterr().out
    assert "cache       not read: this load sends no /data" in out
    assert "speedup" not in out and "hit ratio" not in out
    assert labsim.bench(mix={"process": 1}, requests=10).speedup is None
