"""What the charts must get right for a reader: a log scale where counts are far apart,
the traffic's own window, one colour per meaning, labels that fit, one way to write a number."""

from __future__ import annotations

import asyncio
import re
from xml.etree import ElementTree

import pytest

from labsim.config import load_topology
from labsim.report import svg
from labsim.report.common import figure
from labsim.report.html import render_bench
from labsim.report.sweep import render_html as render_sweep
from labsim.run import BenchOptions, BenchResult, run_bench
from labsim.run.axes import parse_axis
from labsim.run.sweep import run_sweep


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


def test_ten_misses_show_beside_forty_hits_on_a_log_scale(lab):
    latency = charts(render_bench(lab))["Latency distribution per endpoint"]
    heights = bar_heights(latency)
    misses, hits = heights["data miss 10"], heights["data hit 40"]
    # log10(1 + n) / log10(1 + top): 10 misses stand at about two thirds of 40 hits.
    assert misses / hits == pytest.approx(1.0413 / 1.6128, rel=0.01)
    assert ">100</text>" in latency and ">10</text>" in latency  # ticks at powers of ten
    assert "requests (log scale)" in latency


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
    root = ElementTree.fromstring(chart)
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
