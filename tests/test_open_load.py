"""The open model: arrivals at a rate, sent on schedule, late sends and dropped arrivals
apart from the latency, progress by the load's time."""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import itertools
import math
import random
import re
import statistics

import pytest

import labsim.run.driver
from labsim.cli import main
from labsim.model.result import Latency
from labsim.model.scenario import Stage
from labsim.run import BenchOptions, run_bench
from labsim.run.arrivals import arrival_times, expected_arrivals
from labsim.run.driver import credentials, one
from labsim.run.samples import SampleLog
from labsim.run.session import open_session
from labsim.run.tally import Tally
from labsim.views.report.text import render_text

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


def test_the_client_never_holds_an_open_load_back():
    # Round robin over a 1 ms gateway and a 2 s one at 100 arrivals a second: about 100
    # requests are in flight on the slow one. The bench's own pool once had 64
    # connections whatever the load, so past 64 in flight an arrival waited in the client
    # for a slow request to end, and the fast gateway's requests took 732 ms, not 1 ms.
    two = make_topology(
        {
            "gateways": {
                "ports": [5000, 5003],
                "latency": 0.001,
                "each": {"gateway-5003": {"service": 2.0}},
            }
        }
    )
    out = io.StringIO()
    options = BenchOptions(rate=100, arrivals="constant", duration=3, mix={"process": 1})
    asyncio.run(run_bench(two, options, samples=SampleLog(out)))
    samples = list(csv.DictReader(io.StringIO(out.getvalue())))
    spans = [(float(s["sent_s"]), float(s["latency_ms"]) / 1000) for s in samples]
    assert most_at_once(spans) > 64
    fast = [float(s["latency_ms"]) for s in samples if s["gateway"] == "gateway-5000"]
    assert len(fast) == 150 and max(fast) == pytest.approx(1.0, abs=0.01)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most (start, duration) spans that overlap at one time."""
    events = sorted([(t, 1) for t, _ in spans] + [(t + d, -1) for t, d in spans])
    return max(itertools.accumulate(change for _, change in events))


def test_a_late_send_is_send_lag_apart_from_the_latency():
    # A client that sends 50 ms after an arrival was due (a busy process on the real
    # clock) must not make the system look 50 ms slower: the lag is its own figure.
    async def late() -> Tally:
        options = BenchOptions(rate=1, mix={"process": 1})
        async with open_session(make_topology(), options) as session:

            async def send() -> Tally:
                tally, token = Tally(), await credentials(session)
                due = session.clock.now() - 0.05
                await one(session, token, 1, "process", tally, lambda *_: None, scheduled=due)
                return tally

            return await session.clock.run(send())

    tally = asyncio.run(late())
    assert tally.endpoints["process"].ok.max_us == 0  # no injected latency, no lag in it
    assert tally.send_lag.count == 1 and tally.send_lag.max_us == 50_000


def test_the_send_lag_is_reported_and_warned_of_when_material():
    r = asyncio.run(
        run_bench(make_topology(), BenchOptions(rate=20, duration=1, mix={"process": 1}))
    )
    assert r.send_lag is not None and r.send_lag.count == r.requests.total
    assert r.send_lag.max_ms == 0  # the virtual clock sends on time: no line for it
    assert "send lag" not in render_text(r) and r.as_dict()["send_lag"]["p99_ms"] == 0
    for p99, warned in ((4.5, False), (35.5, True)):
        lag = Latency(20, 2.0, 0.0, 1.2, 3.0, p99, 41.7)
        text = render_text(dataclasses.replace(r, clock="real", send_lag=lag))
        assert f"send lag    p50 1.2 ms, p99 {p99} ms, max 41.7 ms behind the schedule" in text
        assert ("warning     the client could not keep to the schedule" in text) == warned
    closed = asyncio.run(run_bench(make_topology(), BenchOptions(requests=5)))
    assert closed.send_lag is None and "send lag" not in render_text(closed)


def test_the_progress_of_a_timed_load_never_passes_100_percent(capsys, monkeypatch):
    # 50 Poisson arrivals a second for 5 s: 250 expected, and here more came. Progress
    # by count once printed "285/250 requests answered (114%, ..., -1:59 left)".
    monkeypatch.setattr(labsim.run.driver, "PROGRESS_EVERY", 0.0)  # a line at every step
    r = bench(rate=50, duration=5, mix={"process": 1}, progress="lines")
    assert r["requests"]["total"] > 250
    lines = capsys.readouterr().err.splitlines()
    shares = [int(re.search(r"\((\d+)%", line)[1]) for line in lines]
    assert shares == sorted(shares) and shares[-1] == 100
    assert all(re.search(r", \d+:\d\d left\)$", line) for line in lines)  # never negative
    last = f"labsim: {r['requests']['total']} requests answered, 5.0 of 5 s of arrivals (100%"
    assert lines[-1].startswith(last)
