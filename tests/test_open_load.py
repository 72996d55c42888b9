"""The open model: arrivals at a rate, latency from the scheduled time, dropped arrivals."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import statistics

import pytest

from labsim.cli import main
from labsim.run import BenchOptions, run_bench
from labsim.run.arrivals import arrival_times, expected_arrivals
from labsim.scenario import Stage

from .conftest import make_topology


def bench(topology=None, **options) -> dict:
    topology = topology or make_topology({"database": {"latency": 0.01}})
    return asyncio.run(run_bench(topology, BenchOptions(**options))).as_dict()


def test_constant_arrivals_are_evenly_spaced():
    times = list(arrival_times(10, 5, (), "constant", random.Random(1)))
    assert len(times) == 50 and times[0] == pytest.approx(0.1)
    assert all(b - a == pytest.approx(0.1) for a, b in itertools.pairwise(times))


def test_poisson_arrivals_have_exponential_gaps():
    times = list(arrival_times(100, 200, (), "poisson", random.Random(7)))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == pytest.approx(20_000, rel=0.03)
    assert statistics.mean(gaps) == pytest.approx(0.01, rel=0.03)
    # Exponential: the standard deviation equals the mean; P(gap > mean) = 1/e.
    assert statistics.stdev(gaps) == pytest.approx(0.01, rel=0.05)
    assert sum(g > 0.01 for g in gaps) / len(gaps) == pytest.approx(math.exp(-1), abs=0.02)


def test_stages_ramp_the_rate_linearly():
    stages = [Stage(10, 10), Stage(10, 10), Stage(10, 0)]
    # 0 -> 10/s over 10 s, 10/s for 10 s, then down to 0: 50 + 100 + 50 arrivals.
    assert expected_arrivals(0, None, stages) == 200
    times = list(arrival_times(0, None, stages, "constant", random.Random(1)))
    assert len(times) == 200
    assert times[0] == pytest.approx(math.sqrt(2))  # t²/2 = 1 at the first arrival
    assert sum(t <= 10 for t in times) == 50 and sum(t <= 20 for t in times) == 150


def test_below_saturation_throughput_equals_the_offered_rate():
    r = bench(rate=50, arrivals="constant", requests=2000, mix={"process": 1})
    assert r["load"] == {
        "model": "open",
        "rate": 50,
        "arrivals": "constant",
        "max_in_flight": 1000,
    }
    assert r["requests"]["ok"] == 2000 and r["dropped"] == 0
    assert r["offered_rps"] == pytest.approx(50, rel=0.001)
    assert r["throughput_rps"] == pytest.approx(r["offered_rps"], rel=0.01)


def test_arrivals_beyond_max_in_flight_are_dropped_not_sent():
    slow = make_topology({"microservice": {"latency": 1.0}})
    r = bench(slow, rate=100, arrivals="constant", duration=2, max_in_flight=10, mix={"process": 1})
    # Each request takes 1 s: at most 10 in flight, so 10 per second get through.
    assert r["requests"]["total"] + r["dropped"] == 200
    assert r["requests"]["total"] == 20 and r["dropped"] == 180


def test_latency_counts_from_the_scheduled_time_so_a_stall_shows():
    # A 1 s database stall with no cache: a closed client of 1 sends 1 request during it,
    # an open load keeps its schedule and every arrival during the stall waits.
    stalled = make_topology({"database": {"latency": 1.0}, "gateways": {"use_cache": False}})
    closed = bench(stalled, requests=20, concurrency=1, mix={"data": 1})
    opened = bench(stalled, rate=10, arrivals="constant", requests=20, mix={"data": 1})
    assert closed["endpoints"]["data"]["p50_ms"] == pytest.approx(1000, abs=5)
    # Open: each request still takes 1 s, and all are sent on time: 10 per second.
    assert opened["endpoints"]["data"]["p50_ms"] == pytest.approx(1000, abs=5)
    assert opened["time"]["simulated_s"] == pytest.approx(3.0, abs=0.01)
    assert closed["time"]["simulated_s"] == pytest.approx(20.0, abs=0.1)


def test_an_open_run_repeats_exactly():
    def once() -> dict:
        r = bench(rate=40, duration=10, mix={"data": 3, "process": 1})
        del r["time"]["wall_s"]
        return r

    first = once()
    assert first["requests"]["total"] > 300
    assert once() == first


def test_cli_open_load_options(capsys):
    assert main(["bench", "--rate", "20", "--duration", "5s", "--mix", "data=1"]) == 0
    out = capsys.readouterr().out
    assert "load        open: poisson arrivals at 20/s for 5 s, at most 1000 in flight" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--duration", "30"], "--duration needs --rate"),
        (["--rate", "0", "--duration", "30"], "--duration needs --rate"),  # 0: a closed load
        (["--rate", "-1"], "--rate"),
        (["--rate", "nan"], "--rate"),
        (["--rate", "5", "--duration", "2x"], "--duration"),
        (["--rate", "5", "--arrivals", "bursty"], "--arrivals"),
        (["--rate", "5", "--max-in-flight", "0"], "--max-in-flight"),
    ],
)
def test_bad_open_load_options_are_one_line_exit_2(capsys, args, named):
    try:
        code = main(["bench", *args])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("load", "named"),
    [
        (
            "rate = 5\nduration = 10\n[[load.stages]]\nduration = 5\nrate = 10\n",
            "stages have their own",
        ),
        ('rate = 5\narrivals = "bursty"\n', "load.arrivals: must be one of poisson, constant"),
        ("[[load.stages]]\nduration = 0\nrate = 10\n", "load.stages[0].duration"),
    ],
)
def test_bad_open_load_in_a_scenario_is_one_line_exit_2(tmp_path, capsys, load, named):
    path = tmp_path / "s.toml"
    path.write_text("[load]\n" + load)
    assert main(["bench", "--scenario", str(path)]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
