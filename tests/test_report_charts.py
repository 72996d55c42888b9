"""What the charts must get right for a reader: every mark inside its chart, stacked bars
that add up to their counts, the traffic's own window, one colour per meaning, labels that
fit, one way to write a number."""

from __future__ import annotations

import asyncio
import html
import itertools
import re
import xml.etree.ElementTree as ET

import pytest

from labsim.model.topology import load_topology
from labsim.run import BenchOptions, BenchResult, run_bench
from labsim.run.axes import parse_axis
from labsim.run.sweep import run_sweep
from labsim.views.report import svg
from labsim.views.report.common import figure
from labsim.views.report.html import render_bench
from labsim.views.report.sweep import render_html as render_sweep

from .conftest import make_topology


@pytest.fixture(scope="module")
def lab() -> BenchResult:
    return asyncio.run(run_bench(load_topology(None), BenchOptions()))


def charts(page: str) -> dict[str, str]:
    return dict(re.findall(r'<svg [^>]*aria-label="([^"]+)"[^>]*>(.*?)</svg>', page, re.S))


def bar_heights(chart: str) -> dict[str, float]:
    found = re.findall(
        r'height="([\d.]+)" fill="[^"]+"><title>[^<]*: ([^<]+?) (\d+)</title>', chart
    )
    return {f"{name} {count}": float(h) for h, name, count in found}


@pytest.fixture(scope="module")
def failing() -> BenchResult:
    """A run with failures on two endpoints and four kinds of answer beside them."""
    tight = make_topology({"worker": {"concurrency": 1, "queue_size": 1, "task_duration": 10}})
    mix = {"data": 4, "longtask": 4, "process": 1, "db": 1}
    return asyncio.run(run_bench(tight, BenchOptions(requests=300, mix=mix, concurrency=20)))


def marks(chart: str) -> list[ET.Element]:
    """The chart's data marks: bars (a rect with a title), lines and dots."""
    root = ET.fromstring(f'<svg xmlns="">{chart}</svg>')
    bars = [e for e in root.iter("rect") if e.find("title") is not None]
    return [*bars, *root.iter("polyline"), *root.iter("circle")]


def inside(chart: str, width: float) -> None:
    """Every mark lies in the plot, every legend entry in the chart."""
    legend = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="10" height="10" fill="[^"]+"/>'
                        r'<text x="[\d.]+" y="[\d.]+">([^<]*)</text>', chart)  # fmt: skip
    assert legend, "every chart has a legend"
    top = max(float(y) for _, y, _ in legend) + 22  # the plot starts under the legend
    for x, _, name in legend:
        assert float(x) + 14 + svg.CHAR_WIDTH * len(html.unescape(name)) <= width - svg.RIGHT
    base = top + svg.PLOT_HEIGHT
    for mark in marks(chart):
        if mark.tag == "rect":
            x, y = float(mark.get("x")), float(mark.get("y"))
            box = [(x, y), (x + float(mark.get("width")), y + float(mark.get("height")))]
        elif mark.tag == "circle":
            box = [(float(mark.get("cx")), float(mark.get("cy")))]
        else:
            box = [tuple(map(float, p.split(","))) for p in mark.get("points").split()]
        for x, y in box:
            assert svg.LEFT - 0.1 <= x <= width - svg.RIGHT + 0.1, (mark.tag, x)
            assert top - 0.1 <= y <= base + 0.1, (mark.tag, mark.findtext("title"), y)


def stacks(chart: str) -> dict[float, list[tuple[float, float, int]]]:
    """Each stacked bar's parts, bottom first: (y, height, the count its title gives)."""
    parts: dict[float, list[tuple[float, float, int]]] = {}
    for bar in marks(chart):
        if bar.tag == "rect":
            count = int(bar.findtext("title").rsplit(" ", 1)[1].replace(",", ""))
            at = (float(bar.get("y")), float(bar.get("height")), count)
            parts.setdefault(float(bar.get("x")), []).append(at)
    return {x: sorted(bars, reverse=True) for x, bars in parts.items()}


def test_every_mark_lies_inside_its_chart(lab, failing):
    # Stacked on a log scale, the lab's 40 hits and 50 longtasks of 3 ms stood above the
    # chart (y="-97.4", over the legend); a legend of nine series ran off its right edge.
    for result in (lab, failing):
        for chart in charts(render_bench(result)).values():
            inside(chart, svg.WIDTH)
    assert len(charts(render_bench(failing))) == 9  # 3 over time per interval
    every = [
        f"{e} {kind}" for e in ("data", "longtask", "process", "db") for kind in ("", "failed")
    ]
    nine = {name.strip(): [3, 0, 1] for name in ["data hit", "data miss", *every[1:]]}
    inside(svg.histogram("all", [1, 2, 4, 8], nine, x_title="ms", y_label="n"), svg.WIDTH)


def test_stacked_bars_add_up_to_their_counts(lab, failing):
    # On the log scale, a run's 159 failures stood at about 1,400 in one bin.
    for result in (lab, failing):
        page = charts(render_bench(result))
        latency = page["Latency distribution per endpoint"]
        series = result.latency_distribution["series"]
        assert sum(n for bars in stacks(latency).values() for *_, n in bars) == sum(
            map(sum, series.values())
        )
        for chart in (latency, page["Status codes per component"]):
            bars = [bar for stack in stacks(chart).values() for bar in stack]
            _, tallest, most = max(bars, key=lambda bar: bar[2])
            for _, h, n in bars:  # one height per request, whatever the bar
                assert h == pytest.approx(n * tallest / most, abs=0.11)
            for bars in stacks(chart).values():
                for (y, _, _), (y_above, h_above, _) in itertools.pairwise(bars):
                    assert y_above + h_above == pytest.approx(y, abs=0.15)  # no gap, no overlap
    hits, misses = stacks(charts(render_bench(lab))["Latency distribution per endpoint"]).values()
    assert {n for *_, n in hits} == {40, 50} and [n for *_, n in misses] == [10]
    assert "requests (log scale)" not in render_bench(lab)


def test_the_traffic_charts_end_with_the_traffic_and_the_worker_s_is_marked(lab):
    page = charts(render_bench(lab))
    last = lab.time.simulated_s
    for title in ("Cache hits and misses over time", "Requests completed over time"):
        labels = [
            float(x) for x in re.findall(r'text-anchor="middle">([\d.]+)</text>', page[title])
        ]
        assert max(labels) < 2 * last  # not the worker's 7 s of drain
        assert "last request answered" not in page[title]
    worker = page["Worker queue over time"]
    assert "last request answered" in worker
    tick_labels = re.findall(r'text-anchor="middle">([\d.]+)</text>', worker)
    assert max(float(x) for x in tick_labels) > last + 5  # the tasks' 5 s after it


def test_a_mark_near_the_right_edge_is_labelled_to_its_left():
    near_end = svg.steps("t", [0, 1, 2], {"a": [0, 1, 2]}, x_title="s", y_label="n",
                         marks=[(2.0, "last request answered")])  # fmt: skip
    assert re.search(r'text-anchor="end" y="\d+" class="mark">last request answered', near_end)
    early = svg.steps("t", [0, 1, 2], {"a": [0, 1, 2]}, x_title="s", y_label="n",
                      marks=[(0.2, "last request answered")])  # fmt: skip
    assert 'text-anchor="end" y' not in early


def test_one_colour_per_meaning_across_charts(lab):
    page = charts(render_bench(lab))
    hits_chart, done_chart = (
        page["Cache hits and misses over time"],
        page["Requests completed over time"],
    )
    assert f'stroke="{svg.MEANING["miss"]}"' in hits_chart
    assert f'stroke="{svg.MEANING["failed"]}"' in done_chart
    assert svg.MEANING["miss"] not in done_chart  # a failure is never drawn as a miss
    latency = page["Latency distribution per endpoint"]
    assert f'fill="{svg.MEANING["hit"]}"><title>' in latency
    assert len(set(svg.MEANING.values())) == len(svg.MEANING)
    assert not set(svg.OTHERS) & (set(svg.MEANING.values()) - {svg.MEANING["ok"]})


@pytest.mark.parametrize(
    ("value", "shown"),
    [(None, "-"), (3, "3"), (2.031, "2.031"), (49.2369, "49.237"), (0.95021, "0.95"),
     (0.0, "0"), (1004.0, "1,004"), (1515.15, "1,515"), (2e-05, "0")],
)  # fmt: skip
def test_every_report_writes_a_figure_the_same_way(value, shown):
    assert figure(value) == shown


def test_the_sweep_legend_draws_each_series_as_its_line_theory_dashed():
    axes = [parse_axis("load.rate=3,6"), parse_axis("load.requests=50")]
    sweep = run_sweep("scenarios/mm1.toml", axes)
    [chart] = re.findall(r"<svg .*?</svg>", render_sweep(sweep, 0.0), re.S)
    root = ET.fromstring(chart)
    keys = {g.findtext("text"): g for g in root.iter("g") if g.get("class") == "key"}
    lines = {line.findtext("title"): line for line in root.iter("polyline")}
    names = {"process p50", "process p50 theory", "process p99", "process p99 theory"}
    assert set(keys) == set(lines) == names
    for name, key in keys.items():
        swatch, dot = key.find("line"), key.find("circle")
        assert swatch.get("stroke") == lines[name].get("stroke") == dot.get("stroke")
        assert swatch.get("stroke-dasharray") == lines[name].get("stroke-dasharray")
        theory = name.endswith("theory")
        assert (swatch.get("stroke-dasharray") is not None) == theory
        assert (dot.get("fill") == "#fff") == theory  # hollow, as the predicted points
