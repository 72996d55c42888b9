"""The figures over time (issue 23): requests a second, p50/p99 and errors per interval
of the run's clock, filed by send time in bounded memory, checked against a second count
made from the run's own per-request log; the charts show each scenario's event where it
happened, and the fault's line at its moment."""

from __future__ import annotations

import io
import math
import random
import re
import xml.etree.ElementTree as ET

import pytest

import labsim
from labsim.cli import main
from labsim.core.intervals import AUTO_LIMIT, MAX_INTERVALS, PerInterval
from labsim.model.scenario import Fault, Scenario, load_scenarios
from labsim.run import BenchOptions, BenchResult, execute
from labsim.run.collect import _fault_text
from labsim.run.samples import SampleLog
from labsim.views.report import svg
from labsim.views.report.html import render_bench

from .test_report_charts import charts, inside


def run(path: str, variant: int, **load: float) -> tuple[BenchResult, list[dict[str, str]]]:
    """A scenario's variant run, with the line its `--samples` log writes per request."""
    scenario: Scenario = load_scenarios(path)[variant]
    out = io.StringIO()
    options = BenchOptions.of(scenario.load, **load)
    result = execute(scenario.topology, options, scenario.faults, SampleLog(out))
    lines = out.getvalue().splitlines()
    header = lines[0].split(",")
    return result, [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]


@pytest.fixture(scope="module")
def failure() -> tuple[BenchResult, list[dict[str, str]]]:
    return run("scenarios/gateway-failure.toml", 0)


@pytest.fixture(scope="module")
def stalled() -> dict[str, BenchResult]:
    closed, _ = run("scenarios/coordinated-omission.toml", 0)
    opened, _ = run("scenarios/coordinated-omission.toml", 1)
    return {"closed": closed, "open": opened}


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def recount(
    result: BenchResult, samples: list[dict[str, str]]
) -> list[tuple[int, int, list[float]]]:
    """Per interval from the per-request log: answered, failed, the served latencies."""
    step = result.intervals.interval_s
    out: list[tuple[int, int, list[float]]] = [(0, 0, []) for _ in result.intervals.start_s]
    for sample in samples:
        i = math.floor(float(sample["scheduled_s"]) / step + 1e-9)
        answered, failed, served = out[i]
        if sample["status"] == "200":
            served.append(float(sample["latency_ms"]))
        out[i] = (answered + 1, failed + (sample["status"] != "200"), served)
    return out


def test_per_interval_counts_and_percentiles_match_the_per_request_log(failure):
    result, samples = failure
    iv = result.intervals
    assert sum(iv.requests) == result.requests.total == len(samples) == 1000
    assert sum(iv.failed) == result.requests.failed > 100
    assert AUTO_LIMIT / 2 <= len(iv.start_s) <= AUTO_LIMIT
    assert math.log2(iv.interval_s).is_integer()  # a power of two seconds
    for i, (answered, failed, served) in enumerate(recount(result, samples)):
        assert (iv.requests[i], iv.failed[i]) == (answered, failed)
        for q, got in ((50, iv.p50_ms[i]), (99, iv.p99_ms[i])):
            if not served:
                assert got is None
            else:
                assert got == pytest.approx(nearest_rank(served, q), rel=0.005, abs=0.001)
    widths = [iv.interval_s] * (len(iv.start_s) - 1)
    widths.append(result.time.simulated_s - iv.start_s[-1])  # the last, cut at the end
    assert sum(r * w for r, w in zip(iv.rps, widths, strict=True)) == pytest.approx(1000, 0.001)


def test_the_gateway_failure_s_errors_begin_in_the_interval_of_its_moment(failure):
    iv = failure[0].intervals
    first = next(i for i, n in enumerate(iv.failed) if n)
    assert iv.start_s[first] == 1.0  # the interval that begins at t = 1 s
    assert [(e.at_s, e.text) for e in iv.events] == [(1.0, "gateway-5003 down")]
    # From then on one gateway in three is down: about a third of each interval fails.
    later = range(first, len(iv.start_s))
    assert sum(iv.failed[i] for i in later) / sum(iv.requests[i] for i in later) == (
        pytest.approx(1 / 3, abs=0.03)
    )


def time_of(chart: str, x: float) -> float:
    """The time at `x` on a chart's time axis, read from its tick labels."""
    ticks = [float(t) for t in re.findall(r'text-anchor="middle">([\d.]+)</text>', chart)]
    return (x - svg.LEFT) / (svg.WIDTH - svg.LEFT - svg.RIGHT) * max(ticks)


def fault_lines(chart: str) -> dict[str, float]:
    root = ET.fromstring(f"<svg>{chart}</svg>")
    lines = [e for e in root.iter("line") if e.get("class") == "mark"]
    return {e.findtext("title"): time_of(chart, float(e.get("x1"))) for e in lines}


def bars(chart: str) -> list[tuple[float, str, float]]:
    """Each column part: the time its left edge stands at, its series, its value."""
    root = ET.fromstring(f"<svg>{chart}</svg>")
    out = []
    for rect in root.iter("rect"):
        title = rect.findtext("title")
        if title is not None:
            name, value = title.rsplit(": ", 1)[1].rsplit(" ", 1)
            out.append(
                (time_of(chart, float(rect.get("x"))), name, float(value.removesuffix("/s")))
            )
    return out


def test_the_time_charts_show_the_gateway_failure_at_one_second(failure):
    result = failure[0]
    page = charts(render_bench(result))
    titles = ("Requests per second over time", "Latency over time", "Errors over time")
    for title in titles:
        inside(page[title], svg.WIDTH)
        assert fault_lines(page[title]) == {"gateway-5003 down": pytest.approx(1.0, abs=0.005)}
    errors = bars(page["Errors over time"])
    assert sum(n for *_, n in errors) == result.requests.failed
    assert min(t for t, *_ in errors) == pytest.approx(1.0, abs=0.005)
    failed_rates = [
        t for t, name, _ in bars(page["Requests per second over time"]) if name == "failed"
    ]
    assert min(failed_rates) == pytest.approx(1.0, abs=0.005)
    served = [n for _, name, n in bars(page["Requests per second over time"]) if name == "served"]
    assert len(served) == sum(
        1 for n, f in zip(result.intervals.requests, result.intervals.failed, strict=True) if n > f
    )


def test_without_failures_the_errors_chart_says_so_and_the_fault_is_still_marked():
    protected, _ = run("scenarios/gateway-failure.toml", 1)
    assert sum(protected.intervals.failed) == 0
    text = render_bench(protected)
    page = charts(text)
    assert "Errors over time" not in page
    assert '<h3>Errors over time</h3>\n<p class="note">No request failed.</p>' in text
    assert fault_lines(page["Latency over time"]) == {
        "gateway-5003 down": pytest.approx(1.0, abs=0.005)
    }


def test_an_open_load_shows_the_stall_in_the_p99_of_every_interval_during_it(stalled):
    iv = stalled["open"].intervals
    during = [p for t, p in zip(iv.start_s, iv.p99_ms, strict=True) if 5 <= t < 6]
    others = [p for t, p in zip(iv.start_s, iv.p99_ms, strict=True) if not 5 <= t < 6]
    assert len(during) == round(1 / iv.interval_s) and all(p > 50 for p in during)
    assert max(during) > 900 and max(others) < 50
    # Sent on schedule throughout: no hole in the rate, the stall is in the latency.
    assert min(iv.rps[1:-1]) >= 90
    assert [(e.at_s, e.text) for e in iv.events] == [(5, "database hang"), (6, "database reset")]


def test_a_closed_load_shows_the_stall_as_a_hole_in_the_rate(stalled):
    result = stalled["closed"]
    iv = result.intervals
    during = [i for i, t in enumerate(iv.start_s) if 5 < t < 6]
    assert during and all(iv.requests[i] == 0 and iv.p99_ms[i] is None for i in during)
    at_five = iv.start_s.index(5.0)
    assert iv.requests[at_five] == 1 and iv.p99_ms[at_five] > 900  # the one that waited
    chart = charts(render_bench(result))["Latency over time"]
    inside(chart, svg.WIDTH)
    lines = ET.fromstring(f"<svg>{chart}</svg>").findall("polyline")
    assert len(lines) == 4  # p50 and p99, each broken by the second nothing was sent
    assert fault_lines(chart) == {"database hang": pytest.approx(5, abs=0.01),
                                  "database reset": pytest.approx(6, abs=0.01)}  # fmt: skip


def drawn(chart: str, series: str) -> list[tuple[float, float]]:
    """The (time, value) points of a step line, read back through the chart's axes."""
    ticks = re.findall(r'<text x="[\d.]+" y="([\d.]+)" text-anchor="end">([\d,.]+)</text>', chart)
    # A tick's label stands 4 px under its grid line.
    (y0, v0), (y1, v1) = [
        (float(y) - 4, float(v.replace(",", ""))) for y, v in (ticks[0], ticks[-1])
    ]
    root = ET.fromstring(f"<svg>{chart}</svg>")
    points = []
    for line in root.iter("polyline"):
        if line.findtext("title").startswith(f"{series}:"):
            for point in line.get("points").split():
                x, y = map(float, point.split(","))
                points.append((time_of(chart, x), v0 + (y - y0) * (v1 - v0) / (y1 - y0)))
    return points


def test_the_latency_chart_draws_the_stall_where_it_happened(stalled):
    chart = charts(render_bench(stalled["open"]))["Latency over time"]
    p99 = drawn(chart, "p99")
    during = [v for t, v in p99 if 5.01 < t < 5.99]
    assert during and min(during) > 50 and max(during) == pytest.approx(1009, abs=5)
    assert max(v for t, v in p99 if t < 4.99 or t > 6.01) < 50


def test_labels_of_close_marks_go_on_rows_of_their_own(stalled):
    chart = charts(render_bench(stalled["open"]))["Latency over time"]
    ys = re.findall(r'y="([\d.]+)" class="mark">database', chart)
    assert len(set(ys)) == 2  # "database hang" would run over "database reset"
    apart = svg.steps("t", [0, 10], {"a": [1, 1]}, x_title="s", y_label="n",
                      marks=[(1, "one"), (9, "two")])  # fmt: skip
    assert len(set(re.findall(r'y="([\d.]+)" class="mark">', apart))) == 1


def test_a_saturating_station_shows_p99_climbing_and_the_cache_keeps_it_flat():
    saturated, _ = run("scenarios/saturation.toml", 0)
    iv = saturated.intervals
    p99 = [p for p in iv.p99_ms if p is not None]
    assert p99[0] < 1000 < 1500 < min(p99[len(p99) // 4 :])  # the queue fills, then stays
    first_failed = next(t for t, n in zip(iv.start_s, iv.failed, strict=True) if n)
    assert 1 < first_failed < 5  # refused once the queue of 40 is full, not before
    chart = charts(render_bench(saturated))["Latency over time"]
    late = [v for t, v in drawn(chart, "p99") if t > 5]
    assert drawn(chart, "p99")[0][1] < 1000 and min(late) > 1500  # as drawn, too
    cached, _ = run("scenarios/saturation.toml", 1)
    assert max(p for p in cached.intervals.p99_ms[1:] if p is not None) < 50


def test_a_given_interval_is_kept_and_a_boundary_goes_to_the_interval_it_starts():
    result, _ = run("scenarios/gateway-failure.toml", 0, interval=0.1)
    iv = result.intervals
    assert iv.interval_s == 0.1 and iv.start_s[10] == 1.0 and iv.failed[9] == 0 < iv.failed[10]
    tally = PerInterval.every(0.1)
    for t in (0.0, 0.29999, 0.3, 0.7):
        tally.add(t, 0.01, failed=False)
    assert [i.answered for i in tally.intervals] == [1, 0, 1, 1, 0, 0, 0, 1]


def test_memory_stays_bounded_however_long_the_run_and_merged_intervals_count_right():
    rng = random.Random(7)
    tally = PerInterval()
    sent = sorted(rng.uniform(0, 3600) for _ in range(20_000))
    latencies = [rng.lognormvariate(-3, 2) for _ in sent]
    for t, latency in zip(sent, latencies, strict=True):
        tally.add(t, latency, failed=latency > 1)
    assert AUTO_LIMIT / 2 <= len(tally.intervals) <= AUTO_LIMIT
    step = tally.step
    assert step == 2.0 ** round(math.log2(step)) and 3600 / AUTO_LIMIT <= step < 3600 / (
        AUTO_LIMIT / 2
    )
    for i, interval in enumerate(tally.intervals):  # as if filed with the last step at once
        mine = [
            lat for t, lat in zip(sent, latencies, strict=True) if i * step <= t < (i + 1) * step
        ]
        served = [lat * 1000 for lat in mine if lat <= 1]
        assert interval.answered == len(mine) and interval.failed == len(mine) - len(served)
        assert interval.served.percentile(99) == pytest.approx(nearest_rank(served, 99), rel=0.005)
        # Three significant digits: at most 1,000 exact values and 900 a decade above.
        assert len(interval.served.buckets) <= 1000 + 900 * 4
    given = PerInterval.every(0.001)
    for t in range(5000):
        given.add(t * 0.01, 0.001, failed=False)  # 50 s: 50,000 intervals of 1 ms
    assert MAX_INTERVALS / 2 <= len(given.intervals) <= MAX_INTERVALS
    assert sum(i.answered for i in given.intervals) == 5000


def test_the_interval_is_a_scenario_key_and_a_keyword(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[load]\nrequests = 20\ninterval = 0.25\n")
    assert labsim.bench(path).intervals.interval_s == 0.25
    result = labsim.bench(path, interval=0.5)
    assert result.intervals.interval_s == 0.5 and sum(result.intervals.requests) == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "0.0001"], "--interval: must be 0 (chosen from the run's length) or "
                                   "seconds from 0.001 to 3,600 (got 0.0001)"),
        (["--interval", "2h"], "--interval: must be 0 (chosen from the run's length) or seconds"),
        (["--interval", "soon"], "--interval: must be a duration such as 30, 30s, 2m or 1h"),
    ],
)  # fmt: skip
def test_a_bad_interval_is_one_line_exit_2(capsys, args, message):
    try:
        code = main(["bench", *args])
    except SystemExit as e:  # argparse's own refusal
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err


def test_a_bad_interval_in_a_scenario_is_refused_naming_the_key(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text("[load]\ninterval = -1\n")
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "load.interval: must be 0" in err


@pytest.mark.parametrize(
    ("fault", "text"),
    [
        (Fault(1, "gateway-5003", {"down": True}), "gateway-5003 down"),
        (Fault(2, "db", {"latency": 0.5, "jitter": 0.1}), "db latency 0.5 s, jitter 0.1 s"),
        (Fault(3, "cache", {"error_rate": 0.25}, reset=True), "cache reset, error_rate 0.25"),
        (Fault(4, "database", {"hang": False}), "database hang off"),
    ],
)  # fmt: skip
def test_a_fault_is_marked_in_a_few_words(fault, text):
    assert _fault_text(fault) == text


@pytest.mark.parametrize("rate", [None, 2.0])
def test_a_flow_load_s_requests_are_in_its_intervals(rate):
    # Every request of every step of a flow, closed or open, is in the figures over time.
    scenario = load_scenarios("scenarios/user-flow.toml")[0]
    load = {"rate": rate} if rate else {}
    result = execute(scenario.topology, BenchOptions.of(scenario.load, **load), scenario.faults)
    assert result.intervals is not None
    assert sum(result.intervals.requests) == result.requests.total > 20
    assert sum(result.intervals.failed) == result.requests.failed
