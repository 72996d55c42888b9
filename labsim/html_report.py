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

from . import __version__, svg
from .report import COMPARISON, figure

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
details > summary { cursor: pointer; font-weight: 600; font-size: 1.15em; margin-top: 1em; }
footer { margin-top: 3em; color: #6b7280; font-size: 0.85em; }
"""


def _page(title: str, lead: str, body: list[str]) -> str:
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


def _grid(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="n"' if i else ""
        text = "-" if value is None else (f"{value:g}" if isinstance(value, float) else value)
        return f"<{tag}{cls}>{escape(str(text))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _settings(result: dict[str, Any]) -> str:
    mix = ", ".join(f"{k}={v}" for k, v in result["mix"].items())
    rows: list[tuple[str, Any]] = [
        ("scenario", result["scenario"] or "the running topology's"),
        ("clock", result["clock"]),
        ("seed", "the running topology's" if result["seed"] is None else result["seed"]),
        ("requests", result["requests"]["total"]),
        ("concurrency", result["concurrency"]),
        ("mix", mix),
    ]
    if result["target"]:
        rows.append(("target", result["target"]))
    rows += list((result.get("settings") or {}).items())
    return _rows(rows)


def _summary(result: dict[str, Any]) -> str:
    req, t, cache = result["requests"], result["time"], result["cache"]
    statuses = ", ".join(f"{k}: {v}" for k, v in req["by_status"].items())
    speed = result["speedup"]
    rows: list[tuple[str, Any]] = [
        ("requests", f"{req['total']} total, {req['ok']} ok, {req['failed']} failed ({statuses})"),
        (
            "time",
            f"{t['simulated_s']:.3f} s on the {result['clock']} clock, {t['wall_s']:.2f} s wall",
        ),
        ("throughput", f"{result['throughput_rps'] or 0:.1f} requests/s"),
        (
            "cache",
            f"{cache['hits']} hits, {cache['misses']} misses, hit ratio "
            + ("-" if cache["hit_ratio"] is None else f"{cache['hit_ratio']:.2f}"),
        ),
        (
            "database calls",
            "unknown (remote topology)" if result["db_calls"] is None else result["db_calls"],
        ),
        (
            "speedup (hit vs miss)",
            f"measured {_times(speed['measured'])}, predicted {_times(speed['predicted'])}",
        ),
        (
            "worker",
            f"{result['worker']['queued']} tasks queued, "
            f"{_known(result['worker']['completed'])} completed",
        ),
    ]
    for part, label in (("coalesced", "coalesced"), ("stale", "served stale")):
        if cache.get(part):
            rows.append((f"cache {label}", cache[part]))
    for key, value in result.get("load_balancer", {}).items():
        if value:
            rows.append((key.replace("_", " "), value))
    if result.get("rate_limited"):
        rows.append(("rate limited (429)", result["rate_limited"]))
    return _rows(rows)


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def _known(value: Any) -> str:
    return "unknown" if value is None else str(value)


def _endpoints(result: dict[str, Any]) -> str:
    rows = []
    for name, s in result["endpoints"].items():
        rows.append(_endpoint_row(name, s, s["failed"]))
        for part in ("hits", "misses"):
            if part in s and s[part]["count"]:
                rows.append(_endpoint_row(f"{name}: {part}", s[part], None))
    header = ("endpoint", "requests", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "failed")
    return _grid(header, rows)


def _endpoint_row(name: str, s: dict[str, Any], failed: int | None) -> list[Any]:
    figures = (s[k] for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"))
    return [name, s["count"], *figures, failed]


def _failures(result: dict[str, Any]) -> str:
    if not result["failures"]:
        return "<p>No request failed.</p>"
    rows = [
        (f["endpoint"], f["status"] or "no answer", f["error"], f["count"])
        for f in result["failures"]
    ]
    return _grid(("endpoint", "status", "error", "requests"), rows)


def _charts(result: dict[str, Any]) -> list[str]:
    out = ["<h3>Latency distribution per endpoint</h3>"]
    dist = result["latency_distribution"]
    if dist["series"]:
        edges = dist["edges_ms"]
        out.append(
            svg.histogram(
                "Latency distribution per endpoint",
                edges,
                dist["series"],
                x_title="latency in ms (log-spaced bins)",
                y_label="requests",
                colours=_latency_colours(dist["series"]),
            )
        )
        out.append(
            '<p class="note">Cache hits and misses of GET /data apart; failed requests '
            "apart from each endpoint's answered ones.</p>"
        )
    else:
        out.append('<p class="note">No request was answered.</p>')

    out.append("<h3>Requests per gateway</h3>")
    if result["gateways"]:
        gateways = result["gateways"]
        out.append(
            svg.bars(
                "Requests per gateway",
                list(gateways),
                {"requests": list(gateways.values())},
                y_label="requests answered",
            )
        )
    else:
        out.append('<p class="note">No gateway answered.</p>')

    timeline = result["timeline"]
    x_title = f"seconds since the first request ({result['clock']} clock)"
    # The timeline may go on after the last request, while the worker finishes its tasks.
    end = [(result["time"]["simulated_s"], "last request answered")]

    def over_time(title: str, series: dict[str, list[int]], y_label: str) -> list[str]:
        xs = timeline["t_s"]
        chart = svg.steps(title, xs, series, x_title=x_title, y_label=y_label, marks=end)
        return [f"<h3>{title}</h3>", chart]

    hits = {"hits so far": timeline["hits"], "misses so far": timeline["misses"]}
    out += over_time("Cache hits and misses over time", hits, "GET /data answers")
    done = {"ok so far": timeline["ok"], "failed so far": timeline["failed"]}
    out += over_time("Requests completed over time", done, "requests")
    if "worker_queued" not in timeline:
        out += [
            "<h3>Worker queue over time</h3>",
            _note("Not known for a topology in another process."),
        ]
    elif not any(timeline["worker_running"]) and not any(timeline["worker_queued"]):
        out += ["<h3>Worker queue over time</h3>", _note("The worker had no task in this run.")]
    else:
        tasks = {"waiting": timeline["worker_queued"], "running": timeline["worker_running"]}
        out += over_time("Worker queue over time", tasks, "tasks")
        if result["clock"] == "virtual":
            out.append(_note("Sampled through the run and until the worker finished its tasks."))
        else:
            out.append(_note("Sampled until the last request was answered."))

    out.append("<h3>Status codes per component</h3>")
    components = result.get("components")
    if components:
        names = list(components)
        statuses = sorted({s for c in components.values() for s in c["statuses"]})
        series = {s: [components[c]["statuses"].get(s, 0) for c in names] for s in statuses}
        colours = svg.status_colours(statuses)
        out.append(
            svg.bars(
                "Status codes per component",
                names,
                series,
                y_label="requests served",
                stacked=True,
                colours=colours,
            )
        )
        out.append(
            _note(
                "Everything each component served, health checks included; dropped: "
                "requests that got no answer (the component was down, or its caller gave "
                "up first)."
            )
        )
    else:
        by_status = result["requests"]["by_status"]
        out.append(
            '<p class="note">Per component only for a topology in this process; '
            "what the load balancer answered:</p>"
        )
        out.append(_grid(("status", "requests"), list(by_status.items())))
    return out


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _latency_colours(series: dict[str, Any]) -> dict[str, str]:
    # Answered requests in the palette's colours, failed ones in reds, whatever the mix.
    answered = [name for name in series if not name.endswith(" failed")]
    colours = {name: svg.PALETTE[i % len(svg.PALETTE)] for i, name in enumerate(answered)}
    reds = svg.STATUS_SHADES["5"]
    failed = [name for name in series if name.endswith(" failed")]
    colours |= {name: reds[i % len(reds)] for i, name in enumerate(failed)}
    return colours


def _run(result: dict[str, Any]) -> list[str]:
    return [
        "<h2>Settings</h2>",
        _settings(result),
        "<h2>Summary</h2>",
        _summary(result),
        _endpoints(result),
        "<h2>Failures</h2>",
        _failures(result),
        "<h2>Charts</h2>",
        *_charts(result),
    ]


def render_bench(result: dict[str, Any]) -> str:
    """The page for one `labsim bench` run."""
    where = result["target"] or f"scenario {result['scenario']}"
    return _page(
        f"labsim bench: {where}",
        f"{result['requests']['total']} requests on the {result['clock']} clock.",
        _run(result),
    )


def render_scenario(
    path: str,
    description: str,
    results: Sequence[tuple[str, dict[str, Any]]],
    checks: Sequence[tuple[str, str, bool, float | None]],
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
    return _page(f"labsim run: {path}", description or "A labsim scenario.", body)


def _checks(checks: Sequence[tuple[str, str, bool, float | None]]) -> str:
    if not checks:
        return "<p>This scenario states no expectations.</p>"
    rows = "".join(
        f'<tr><td class="{"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</td>'
        f"<td>{escape(where)}</td><td><code>{escape(text)}</code></td>"
        f'<td class="n">{"not measured" if measured is None else f"{measured:g}"}</td></tr>'
        for where, text, passed, measured in checks
    )
    head = '<tr><th>result</th><th>variant</th><th>expected</th><th class="n">measured</th></tr>'
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _comparison(results: Sequence[tuple[str, dict[str, Any]]]) -> str:
    rows = []
    for label, path in COMPARISON:
        values = [figure(r, tuple(path.split("."))) for _, r in results]
        if any(v not in (None, 0) for v in values) or label == "requests failed":
            rows.append([label, *values])
    for g in sorted({g for _, r in results for g in r["gateways"]}):
        rows.append([g, *(r["gateways"].get(g, 0) for _, r in results)])
    return _grid(["", *(name for name, _ in results)], rows)


def render_index(entries: Sequence[tuple[str, str, int, int]]) -> str:
    """The page linking each scenario's page: (file name, scenario path, passed, checks)."""
    rows = "".join(
        f'<tr><td><a href="{escape(quote(page))}">{escape(path)}</a></td>'
        f'<td class="{"pass" if passed == total else "fail"}">{passed} of {total} passed</td></tr>'
        for page, path, passed, total in entries
    )
    return _page(
        "labsim run",
        f"{len(entries)} scenario files.",
        [f"<table><tbody>{rows}</tbody></table>"],
    )
