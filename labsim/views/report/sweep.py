"""A sweep's result as text, CSV and an HTML page with the latency-versus-throughput curve.

Every view reads the same `Sweep`: one row per point (its settings, offered rate,
throughput, latencies per endpoint, failed, dropped and rejected requests, the busiest component),
theory's prediction and the deviation from it where theory applies, and the first
saturated point. No I/O.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from html import escape
from typing import Any

from ...run.sweep import SATURATED, Sweep, SweepPoint
from . import svg
from .common import column, decimals
from .html import grid, note, page
from .text import columns

_FIGURES = ("mean_ms", "p50_ms", "p99_ms")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _setting(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def title(sweep: Sweep) -> str:
    variant = f" (variant {sweep.variant!r})" if sweep.variant else ""
    return f"sweep of {sweep.scenario}{variant}"


def _points(sweep: Sweep) -> str:
    n = len(sweep.points)
    return f"{n} point" if n == 1 else f"{n} points"


def _endpoints(sweep: Sweep) -> list[str]:
    return list(dict.fromkeys(e for p in sweep.points for e in p.endpoints))


def _with_theory(sweep: Sweep) -> list[str]:
    return list(dict.fromkeys(e for p in sweep.points for e in p.theory))


def _slash(values: Sequence[str]) -> str:
    return " / ".join(values)


def _closed_theory(sweep: Sweep) -> bool:
    return any(p.theory_throughput_rps is not None for p in sweep.points)


def rows(sweep: Sweep) -> list[list[str]]:
    """The table of points, header first, as the text and HTML reports show it; each
    column's figures written one way (`common.column`)."""
    points = sweep.points
    endpoints, theory = _endpoints(sweep), _with_theory(sweep)
    header = [a.key for a in sweep.axes]
    cells = [[_setting(p.settings[key]) for p in points] for key in header]

    def add(name: str, values: Sequence[float | None]) -> None:
        header.append(name)
        cells.append(column(values, decimals(name)))

    add("offered/s", [p.offered_rps for p in points])
    add("done/s", [p.throughput_rps for p in points])
    if _closed_theory(sweep):
        add("theory done/s", [p.theory_throughput_rps for p in points])
        header.append("done/s deviation")
        cells.append([_percent(p.throughput_deviation) for p in points])
    for e in endpoints:
        for f in ("p50_ms", "p99_ms", "mean_ms"):
            add(
                f"{e} {f.removesuffix('_ms')} ms",
                [getattr(p.endpoints.get(e), f, None) for p in points],
            )
        if e in theory:
            parts = [
                column([getattr(p.theory.get(e), f, None) for p in points], decimals(f))
                for f in _FIGURES
            ]
            header += [f"{e} theory mean/p50/p99", f"{e} deviation"]
            cells.append([_slash(point) for point in zip(*parts, strict=True)])
            cells.append([_slash([_percent(p.deviation(e, f)) for f in _FIGURES]) for p in points])
    if _cached(sweep):
        add("hit ratio", [p.hit_ratio for p in points])
        if _cache_theory(sweep):
            add("theory hit ratio", [p.theory_hit_ratio for p in points])
            header.append("hit ratio deviation")
            cells.append([_points_off(p) for p in points])
        add("evictions", [p.evictions for p in points])
    for what in ("failed", "dropped", "rejected"):
        add(what, [getattr(p, what) for p in points])
    header.append("busiest")
    cells.append(
        [
            f"{p.busiest} {p.utilization:.0%}" if p.busiest and p.utilization is not None else "-"
            for p in points
        ]
    )
    return [header, *(list(row) for row in zip(*cells, strict=True))]


def _cached(sweep: Sweep) -> bool:
    """Whether the sweep's load reads keys through a cache: hit ratios to show."""
    return any(p.hit_ratio is not None for p in sweep.points)


def _cache_theory(sweep: Sweep) -> bool:
    return any(p.theory_hit_ratio is not None for p in sweep.points)


def _points_off(point: SweepPoint) -> str:
    """measured - theory of the hit ratio, in percentage points."""
    if point.hit_ratio is None or point.theory_hit_ratio is None:
        return "-"
    return f"{(point.hit_ratio - point.theory_hit_ratio) * 100:+.1f} pt"


def _cache_notes(sweep: Sweep) -> list[str]:
    if not _cached(sweep):
        return []
    out = []
    if _cache_theory(sweep):
        out.append(
            "theory hit ratio: over the run's /data reads from an empty cache, for "
            "independent reads of the keys' popularity: Che's approximation for lru "
            "(and ttl, the default), Martina et al.'s for fifo and random; "
            "deviation = measured - theory, in points"
        )
    out += [
        f"no hit ratio theory at {_where(p)}: {p.cache_theory_note}"
        for p in sweep.points
        if p.hit_ratio is not None and p.cache_theory_note
    ]
    return out


def notes(sweep: Sweep) -> list[str]:
    """Theory's standing, the saturation point, in sentences."""
    out = _cache_notes(sweep)
    missing = [(p, p.theory_note) for p in sweep.points if p.theory_note]
    if missing and len(missing) == len(sweep.points) and len({n for _, n in missing}) == 1:
        out.append(f"no theory: {missing[0][1]}")
    else:
        if len(missing) < len(sweep.points):
            out.append(
                "theory: queueing theory's mean, p50 and p99 in ms for the same settings "
                "(- where not known); deviation = (measured - theory) / theory"
            )
        if _closed_theory(sweep):
            out.append(
                "theory done/s: a closed load's throughput, and its mean, from the closed "
                "network of its clients, think time and stations (exact; quantiles unknown)"
            )
        out += [f"no theory at {_where(p)}: {n}" for p, n in missing]
    curves = _curves(sweep)
    if len(curves) == 1:
        out.append(_saturation(sweep.points))
    else:  # one per curve, as the HTML marks them
        out += [f"{rest}: {_saturation(points)}" for rest, points in curves.items()]
    return out


def _where(point: SweepPoint) -> str:
    return ", ".join(f"{k}={_setting(v)}" for k, v in point.settings.items())


def _curves(sweep: Sweep) -> dict[str, list[SweepPoint]]:
    """The points of each curve: one per combination of the settings after the first."""
    groups: dict[str, list[SweepPoint]] = {}
    for p in sweep.points:
        rest = ", ".join(f"{k}={_setting(v)}" for k, v in list(p.settings.items())[1:])
        groups.setdefault(rest, []).append(p)
    return groups


def _saturation(points: list[SweepPoint]) -> str:
    p = next((p for p in points if p.saturated), None)
    if p is None:
        return f"saturation: no point (none {SATURATED:.0%} busy, rejecting, dropping or failing)"
    why = []
    if p.utilization is not None and p.utilization >= SATURATED:
        why.append(f"{p.busiest} {p.utilization:.0%} busy")
    for count, what in ((p.rejected, "rejected"), (p.dropped, "dropped"), (p.failed, "failed")):
        if count:
            why.append(f"{count} {what}")
    return f"saturation: from {_where(p)} ({', '.join(why)})"


def render_text(sweep: Sweep, wall_s: float) -> str:
    head = f"== {title(sweep)} ({sweep.source}), virtual clock, {_points(sweep)}"
    body = columns(rows(sweep))
    tail = [*notes(sweep), f"{_points(sweep)} in {wall_s:.1f} s wall"]
    return "\n".join([head, *body, *tail])


def render_csv(sweep: Sweep) -> str:
    """One row per point and endpoint: settings, the point's figures, the endpoint's."""
    keys = [a.key for a in sweep.axes]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    point_fields = ["offered_rps", "throughput_rps", "requests", "requests_failed", "dropped"]
    point_fields += ["rejected", "busiest", "utilization", "saturated", "theory_throughput_rps"]
    if _cached(sweep):
        point_fields += ["hit_ratio", "theory_hit_ratio", "evictions"]
    ep_fields = ["served", "failed", *_FIGURES]
    writer.writerow(
        [*keys, *point_fields, "endpoint", *ep_fields]
        + [f"theory_{f}" for f in _FIGURES]
        + [f"deviation_{f.removesuffix('_ms')}" for f in _FIGURES]
    )
    for p in sweep.points:
        for name, e in p.endpoints.items():
            t = p.theory.get(name)
            writer.writerow(
                [_setting(p.settings[k]) for k in keys]
                + [_csv(getattr(p, f.removeprefix("requests_"))) for f in point_fields]
                + [name, *(_csv(getattr(e, f)) for f in ep_fields)]
                + [_csv(getattr(t, f, None)) for f in _FIGURES]
                + [_csv(p.deviation(name, f)) for f in _FIGURES]
            )
    return out.getvalue()


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_html(sweep: Sweep, wall_s: float) -> str:
    axes = "; ".join(f"{a.key} = {', '.join(map(_setting, a.values))}" for a in sweep.axes)
    lead = f"{sweep.source}, on the virtual clock: {axes}. {_points(sweep)}."
    # A sweep of cache sizes draws against them; any other, against throughput.
    body = _cache_charts(sweep) or ["<h2>Latency against throughput</h2>", *_charts(sweep)]
    table = rows(sweep)
    body += ["<h2>Points</h2>", f'<div class="wide">{grid(table[0], table[1:])}</div>']
    body += [f"<p>{escape(line)}</p>" for line in notes(sweep)]
    body.append(note(f"{_points(sweep)} in {wall_s:.1f} s wall."))
    return page(title(sweep), lead, body)


def _size_axis(sweep: Sweep) -> str | None:
    """The cache size the sweep varies (`cache.maxsize`, `components.X.maxsize`), if any."""
    return next((a.key for a in sweep.axes if a.key.endswith(".maxsize")), None)


def _cache_charts(sweep: Sweep) -> list[str]:
    """Hit ratio and /data's mean latency against cache size: a line per combination of
    the other settings (each eviction policy, say), theory's hit ratio dashed beside it."""
    size = _size_axis(sweep)
    if size is None or not _cached(sweep):
        return []
    # A line per combination of the other settings that take several values.
    varied = [a.key for a in sweep.axes if a.key != size and len(a.values) > 1]
    lines: dict[str, list[SweepPoint]] = {}
    for p in sweep.points:
        shown = [_setting(p.settings[k]) for k in varied]
        # One setting varied besides the size (the policy, say): its value names a line.
        rest = (
            shown[0]
            if len(shown) == 1
            else ", ".join(f"{k}={v}" for k, v in zip(varied, shown, strict=True))
        )
        lines.setdefault(rest or "measured", []).append(p)
    ratio: dict[str, list[tuple[float, float]]] = {}
    latency: dict[str, list[tuple[float, float]]] = {}
    colours: dict[str, str] = {}
    dashed: list[str] = []
    for i, (name, points) in enumerate(lines.items()):
        colour = svg.PALETTE[i % len(svg.PALETTE)]
        ratio[name] = [
            (float(p.settings[size]), p.hit_ratio) for p in points if p.hit_ratio is not None
        ]
        colours[name] = colour
        theory = [
            (float(p.settings[size]), p.theory_hit_ratio)
            for p in points
            if p.theory_hit_ratio is not None
        ]
        if theory:
            ratio[f"{name} theory"] = theory
            colours[f"{name} theory"] = colour
            dashed.append(f"{name} theory")
        data = [(float(p.settings[size]), p.endpoints.get("data")) for p in points]
        latency[name] = [(x, e.mean_ms) for x, e in data if e is not None and e.mean_ms is not None]
    x_title = f"cache size ({size}), entries"
    return [
        "<h2>Hit ratio against cache size</h2>",
        svg.curve(
            "hit ratio against cache size",
            ratio,
            x_title=f"{x_title}; dashed: theory",
            y_label="hit ratio",
            colours=colours,
            dashed=dashed,
        ),
        "<h2>/data mean latency against cache size</h2>",
        svg.curve(
            "/data mean latency against cache size",
            latency,
            x_title=x_title,
            y_label="ms",
            colours={n: colours[n] for n in latency},
        ),
    ]


def _charts(sweep: Sweep) -> list[str]:
    """One chart per combination of the settings after the first: the first setting
    walks along each curve."""
    out = []
    for rest, points in _curves(sweep).items():
        if rest:
            out.append(f"<h3>{escape(rest)}</h3>")
        out.append(_chart(sweep, points))
    return out


def _chart(sweep: Sweep, points: list[SweepPoint]) -> str:
    series: dict[str, list[tuple[float, float]]] = {}
    colours: dict[str, str] = {}
    dashed: list[str] = []
    for i, e in enumerate(_endpoints(sweep)):
        for j, figure in enumerate(("p50_ms", "p99_ms")):
            name = f"{e} {figure.removesuffix('_ms')}"
            colour = svg.PALETTE[(2 * i + j) % len(svg.PALETTE)]
            measured = [
                (p.throughput_rps, getattr(p.endpoints[e], figure))
                for p in points
                if e in p.endpoints and p.throughput_rps is not None
            ]
            series[name] = [(x, y) for x, y in measured if y is not None]
            colours[name] = colour
            predicted = [
                (p.throughput_rps, getattr(p.theory[e], figure))
                for p in points
                if e in p.theory and p.throughput_rps is not None
            ]
            predicted = [(x, y) for x, y in predicted if y is not None]
            if predicted:
                series[f"{name} theory"] = predicted
                colours[f"{name} theory"] = colour
                dashed.append(f"{name} theory")
    saturated = next((p for p in points if p.saturated), None)
    marks = []
    if saturated is not None and saturated.throughput_rps is not None:
        marks.append((saturated.throughput_rps, f"saturation: {_where(saturated)}"))
    return svg.curve(
        "latency against throughput",
        series,
        x_title="throughput, requests per simulated second",
        y_label="ms",
        colours=colours,
        dashed=dashed,
        marks=marks,
    )
