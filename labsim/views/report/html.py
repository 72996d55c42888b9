"""Turns bench results into one self-contained HTML page each: tables and inline SVG charts.

The page needs nothing beyond itself (no scripts, no fonts, no network), so it opens
offline and can be mailed or handed in. A run on the virtual clock gives the same page
every time but for the wall-clock figure. Touches nothing but the text it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import quote

from ...core.version import __version__
from ...model.result import BenchResult, Check
from . import common, intervals, status, svg
from .flows import flow_tables

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1d2530; margin: 0 auto;
  max-width: 980px; padding: 1.5em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.8em; font-size: 1.25em; }
h3 { margin-top: 1.4em; font-size: 1.05em; } .lead { color: #4b5563; margin-top: 0; }
table { border-collapse: collapse; margin: 0.6em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #e3e6ea; text-align: left;
  vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #24743f; font-weight: 600; } .fail { color: #b3261e; font-weight: 600; }
.chart { width: 100%; height: auto; max-width: 720px; display: block; }
.chart text { font-size: 11px; fill: #374151; } .chart .grid { stroke: #e5e7eb; }
.chart line.mark { stroke: #6b7280; stroke-dasharray: 4 3; } .chart text.mark { fill: #6b7280; }
.note { color: #6b7280; font-style: italic; }
.wide { overflow-x: auto; } .wide td, .wide th { white-space: nowrap; }
details > summary { cursor: pointer; font-weight: 600; font-size: 1.15em; margin-top: 1em; }
footer { margin-top: 3em; color: #6b7280; font-size: 0.85em; }
"""


def page(title: str, lead: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="lead">{escape(lead)}</p>',
            *body,
            f"<footer>Made by labsim {escape(__version__)}. Times are on the run's clock "
            "(simulated seconds on the virtual clock) unless marked wall.</footer>",
            "</body></html>",
            "",
        ]
    )


def _rows(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def grid(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="n"' if i else ""
        text = common.figure(value) if value is None or isinstance(value, float) else value
        return f"<{tag}{cls}>{escape(str(text))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _settings(result: BenchResult) -> str:
    mix = ", ".join(f"{k}={v}" for k, v in result.mix.items())
    rows: list[tuple[str, Any]] = [
        ("scenario", result.scenario or "the running topology's"),
        ("clock", result.clock),
        ("seed", "the running topology's" if result.seed is None else result.seed),
        ("requests", result.requests.total),
        ("load", common.load(result)),
        ("flows", result.load.flows) if result.load.flows else ("mix", mix),
    ]
    if result.target:
        rows.append(("target", result.target))
    rows += list((result.settings or {}).items())
    return _rows(rows)


def _summary(result: BenchResult) -> str:
    t = result.time
    rows: list[tuple[str, Any]] = [
        ("requests", common.requests_line(result, " ")),
        ("time", f"{t.simulated_s:.3f} s on the {result.clock} clock, {t.wall_s:.2f} s wall"),
        ("throughput", f"{result.throughput_rps or 0:.1f} requests/s"),
    ]
    lag = common.send_lag(result)
    if lag is not None:
        rows.append(("send lag", lag))
        warning = common.send_lag_warning(result)
        if warning:
            rows.append(("warning", warning))
    rows += [("cache", common.cache(result)), ("database calls", common.db_calls(result))]
    speedup = common.speedup(result)
    if speedup:
        rows.append(("speedup (hit vs miss)", speedup))
    rows.append(("worker", common.worker(result)))
    rows += [(f"cache {label}", n) for label, n in common.cache_patterns(result)]
    rows += [(f"capacity: {name}", text) for name, text in common.stations(result)]
    rows += common.balancer(result)
    if result.rate_limited:
        rows.append(("rate limited (429)", result.rate_limited))
    return _rows(rows)


def _endpoints(result: BenchResult) -> str:
    table = common.endpoint_table(result, lambda name, part: f"{name}: {part}")
    return grid(table[0], table[1:])


def _flows(result: BenchResult) -> list[str]:
    """A load of flows: a table per flow, a row per step (nothing for a load of the mix)."""
    body = []
    for title, table in flow_tables(result):
        body += [f"<h3>{escape(title)}</h3>", grid(table[0], table[1:])]
    return ["<h2>Flows</h2>", *body] if body else []


def _failures(result: BenchResult) -> str:
    if not result.failures:
        return "<p>No request failed.</p>"
    rows = [
        (f.endpoint, common.failure_status(f.status), f.error, f.count) for f in result.failures
    ]
    return grid(("endpoint", "status", "error", "requests"), rows)


def _charts(result: BenchResult) -> list[str]:
    return [
        *_latency_chart(result),
        *_gateway_chart(result),
        *_timeline_charts(result),
        *intervals.charts(result),
        *_status_chart(result),
    ]


def _latency_chart(result: BenchResult) -> list[str]:
    out = ["<h3>Latency distribution per endpoint</h3>"]
    dist = result.latency_distribution
    if not dist["series"]:
        return [*out, '<p class="note">No request was answered.</p>']
    chart = svg.histogram(
        "Latency distribution per endpoint",
        dist["edges_ms"],
        dist["series"],
        x_title="latency in ms (log-spaced bins)",
        y_label="requests",
        colours=_latency_colours(dist["series"]),
    )
    if result.cache is None:
        told = "Failed requests apart from each endpoint's served ones."
    else:
        told = (
            "Cache hits and misses of GET /data apart; failed requests apart from each "
            "endpoint's served ones."
        )
    return [*out, chart, note(told)]


def _gateway_chart(result: BenchResult) -> list[str]:
    out = ["<h3>Requests per gateway</h3>"]
    gateways = result.gateways
    if not gateways:
        return [*out, '<p class="note">No gateway answered.</p>']
    requests = {"requests": list(gateways.values())}
    chart = svg.bars("Requests per gateway", list(gateways), requests, y_label="requests answered")
    return [*out, chart]


def _timeline_charts(result: BenchResult) -> list[str]:
    timeline = result.timeline
    x_title = f"seconds since the first request ({result.clock} clock)"
    # The timeline may go on after the last request, while the worker finishes its tasks:
    # the traffic's charts show the traffic's window, the worker's the whole, marked.
    last = result.time.simulated_s
    end = [(last, "last request answered")]
    xs = timeline["t_s"]
    # The samples up to the end of traffic, and the first one at or after it.
    window = next((i + 1 for i, t in enumerate(xs) if t >= last), len(xs))

    def over_time(
        title: str, series: dict[str, list[int]], y_label: str, colours: dict[str, str] | None
    ) -> list[str]:
        shown = {name: values[:window] for name, values in series.items()}
        chart = svg.steps(
            title, xs[:window], shown, x_title=x_title, y_label=y_label, colours=colours
        )
        return [f"<h3>{title}</h3>", chart]

    queues = {k.removeprefix("queue "): v for k, v in timeline.items() if k.startswith("queue ")}
    out_queue = (
        over_time("Queue length over time", queues, "requests waiting", None) if queues else []
    )
    hits = {"hits so far": timeline["hits"], "misses so far": timeline["misses"]}
    hit_colours = {"hits so far": svg.MEANING["hit"], "misses so far": svg.MEANING["miss"]}
    if result.cache is None:
        out = [
            *out_queue,
            "<h3>Cache hits and misses over time</h3>",
            note("No cache: every /data reads the database (gateways.use_cache = false)."),
        ]
    else:
        out = out_queue + over_time(
            "Cache hits and misses over time", hits, "GET /data answers", hit_colours
        )
    done = {"ok so far": timeline["ok"], "failed so far": timeline["failed"]}
    done_colours = {"ok so far": svg.MEANING["ok"], "failed so far": svg.MEANING["failed"]}
    out += over_time("Requests completed over time", done, "requests", done_colours)
    if "worker_queued" not in timeline:
        return [
            *out,
            "<h3>Worker queue over time</h3>",
            note("Not known for a topology in another process."),
        ]
    if not any(timeline["worker_running"]) and not any(timeline["worker_queued"]):
        return [
            *out,
            "<h3>Worker queue over time</h3>",
            note("The worker had no task in this run."),
        ]
    tasks = {"waiting": timeline["worker_queued"], "running": timeline["worker_running"]}
    task_colours = {"waiting": svg.MEANING["waiting"], "running": svg.MEANING["running"]}
    worker = svg.steps(
        "Worker queue over time",
        xs,
        tasks,
        x_title=x_title,
        y_label="tasks",
        marks=end,
        colours=task_colours,
    )
    out += ["<h3>Worker queue over time</h3>", worker]
    if result.clock == "virtual":
        return [*out, note("Sampled through the run and until the worker finished its tasks.")]
    return [*out, note("Sampled until the last request was answered.")]


def _status_chart(result: BenchResult) -> list[str]:
    out = ["<h3>Status codes per component</h3>"]
    components = result.components
    if not components:
        return [
            *out,
            '<p class="note">Per component only for a topology in this process; '
            "what the load balancer answered:</p>",
            grid(("status", "requests"), list(result.requests.by_status.items())),
        ]
    names = list(components)
    statuses = sorted({s for c in components.values() for s in c.statuses})
    series = {s: [components[c].statuses.get(s, 0) for c in names] for s in statuses}
    chart = svg.bars(
        "Status codes per component",
        names,
        series,
        y_label="requests served",
        stacked=True,
        colours=svg.status_colours(statuses),
    )
    explained = note(
        "Everything each component served, health checks included; dropped: "
        "requests that got no answer (the component was down, or its caller gave "
        "up first)."
    )
    return [*out, chart, explained]


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _latency_colours(series: dict[str, Any]) -> dict[str, str]:
    # Hits and misses in their colours, other answers in the others, failures in reds.
    answered = [n for n in series if not n.endswith((" failed", " hit", " miss"))]
    colours = {name: svg.OTHERS[i % len(svg.OTHERS)] for i, name in enumerate(answered)}
    colours |= {
        n: svg.MEANING[n.rsplit(" ", 1)[1]] for n in series if n.endswith((" hit", " miss"))
    }
    reds = svg.STATUS_SHADES["5"]
    failed = [name for name in series if name.endswith(" failed")]
    colours |= {name: reds[i % len(reds)] for i, name in enumerate(failed)}
    return colours


def _run(result: BenchResult) -> list[str]:
    return [
        "<h2>Settings</h2>",
        _settings(result),
        "<h2>Summary</h2>",
        _summary(result),
        *([_endpoints(result)] if result.endpoints or not result.flows else []),
        *_flows(result),
        "<h2>Failures</h2>",
        _failures(result),
        "<h2>Charts</h2>",
        *_charts(result),
        *_status_log(result),
    ]


def _status_log(result: BenchResult) -> list[str]:
    """The course's Lab 5 report (`report_generator.py`) of the run's status log, when it
    has one: total requests per service, status codes per service (2xx green, any other
    red), and its text summary in two columns."""
    log = result.status
    if log is None:
        return []
    services = list(log)
    totals = status.totals(log)
    requests = {"requests": [totals[s] for s in services]}
    total_chart = svg.bars(
        "Total requests per service",
        services,
        requests,
        y_label="Number of Requests",
        colours={"requests": svg.MEANING["ok"]},
    )
    codes = sorted({code for answered in log.values() for code in answered})
    series = {code: [log[s].get(code, 0) for s in services] for code in codes}
    code_chart = svg.bars(
        "Status codes per service",
        services,
        series,
        y_label="Count",
        colours=_ok_or_red(codes),
    )
    left, right = status.summary_columns(log)
    columns = "".join(f'<pre style="margin:0">{escape(text)}</pre>' for text in (left, right))
    return [
        "<h2>Status log</h2>",
        note(
            "What each service answered on its work routes, by status code, as the "
            "course's Lab 5 status tracker counts it (status_log.json), and its report: "
            "a browser prints this page to PDF."
        ),
        "<h3>Total requests per service</h3>",
        total_chart,
        "<h3>Status codes per service</h3>",
        code_chart,
        note("2xx green; every other code red, as in the guide's report."),
        "<h3>Status report summary</h3>",
        f'<div class="summary" style="display:flex;flex-wrap:wrap;gap:2em">{columns}</div>',
    ]


def _ok_or_red(codes: Sequence[str]) -> dict[str, str]:
    """A green shade for each 2xx code, a red one for any other (the guide's colours)."""
    greens, reds = svg.STATUS_SHADES["2"], svg.STATUS_SHADES["5"]
    good = [c for c in codes if status.ok(c)]
    bad = [c for c in codes if not status.ok(c)]
    return {c: greens[i % len(greens)] for i, c in enumerate(good)} | {
        c: reds[i % len(reds)] for i, c in enumerate(bad)
    }


def render_bench(result: BenchResult) -> str:
    """The page for one `labsim bench` run."""
    where = result.target or f"scenario {result.scenario}"
    about = f"{result.description.rstrip('.')}. " if result.description else ""
    return page(
        f"labsim bench: {where}",
        f"{about}{result.requests.total} requests on the {result.clock} clock.",
        _run(result),
    )


def render_scenario(
    path: str,
    description: str,
    results: Sequence[tuple[str, BenchResult]],
    checks: Sequence[Check],
) -> str:
    """The page for one scenario file of `labsim run`: expectations, then each variant."""
    body = ["<h2>Expectations</h2>", _checks(checks)]
    if len(results) > 1:
        body += ["<h2>Variants side by side</h2>", _comparison(results)]
        for name, result in results:
            body.append(f"<details open><summary>Variant: {escape(name)}</summary>")
            body += _run(result)
            body.append("</details>")
    else:
        body += _run(results[0][1])
    return page(f"labsim run: {path}", description or "A labsim scenario.", body)


def _measured(value: float | None) -> str:
    return "not measured" if value is None else common.figure(value)


def _checks(checks: Sequence[Check]) -> str:
    if not checks:
        return "<p>This scenario states no expectations.</p>"
    rows = "".join(
        f'<tr><td class="{"pass" if c.passed else "fail"}">{"PASS" if c.passed else "FAIL"}</td>'
        f"<td>{escape(c.variant)}</td><td><code>{escape(c.text)}</code></td>"
        f'<td class="n">{_measured(c.measured)}</td></tr>'
        for c in checks
    )
    head = '<tr><th>result</th><th>variant</th><th>expected</th><th class="n">measured</th></tr>'
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _comparison(results: Sequence[tuple[str, BenchResult]]) -> str:
    return grid(["", *(name for name, _ in results)], common.comparison(results))


def render_index(entries: Sequence[tuple[str, str, str, int, int]]) -> str:
    """The page linking each scenario's page: (file name, scenario path, description,
    passed, checks)."""
    rows = "".join(
        f'<tr><td><a href="{escape(quote(page))}">{escape(path)}</a></td>'
        f"<td>{escape(description)}</td>"
        f'<td class="{"pass" if passed == total else "fail"}">{passed} of {total} passed</td></tr>'
        for page, path, description, passed, total in entries
    )
    return page(
        "labsim run",
        f"{len(entries)} scenario files.",
        [f"<table><tbody>{rows}</tbody></table>"],
    )
