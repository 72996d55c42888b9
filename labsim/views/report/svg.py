"""Small inline SVG charts for the HTML report: bars, a histogram and step lines.

Each function takes plain numbers and returns one `<svg>` element as text, sized by its
viewBox so it scales with the page. Every bar and line carries a `<title>`, which a
browser shows on hover, so exact values are one pointer away. No I/O, no dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH, PLOT_HEIGHT = 720, 194
LEFT, RIGHT, TOP = 56, 16, 30  # TOP: room above the plot for one row of legend
LEGEND_ROW = 16  # each further row of legend moves the plot down this much
CHAR_WIDTH = 6.2  # of an 11 px label, near enough to lay labels out
# No red in it: red means failure (see STATUS_SHADES).
PALETTE = ("#2f6fb0", "#e08a1e", "#3a9a5b", "#7a5cb0", "#8c6d3f", "#5aa9b5", "#4b5563")
# One colour per meaning, the same in every chart: a miss is never drawn as a failure.
MEANING = {
    "hit": "#3a9a5b",
    "miss": "#e08a1e",
    "ok": "#2f6fb0",
    "failed": "#c2413b",
    "waiting": "#7a5cb0",
    "running": "#5aa9b5",
}
# What the palette gives series of no particular meaning: none of the colours above.
OTHERS = ("#2f6fb0", "#8c6d3f", "#4b5563", "#b05c9a", "#6b8e23")
DASH = "6 4"  # a dashed series (a prediction), on the plot and in its legend alike
# Shades per status class, for the first, second, ... status seen of that class.
STATUS_SHADES = {
    "2": ("#2e8b57", "#8fd19e", "#1f5f3b"),
    "3": ("#5aa9b5", "#9fd3db"),
    "4": ("#e08a1e", "#f5c27a", "#a35f0a", "#f0a04b"),
    "5": ("#c2413b", "#ef9a95", "#7f1d1a", "#e0625c"),
}


def status_colours(statuses: Sequence[str]) -> dict[str, str]:
    """Green shades for 2xx, orange for 4xx, red for 5xx, grey for no answer at all."""
    seen: dict[str, int] = {}
    colours = {}
    for status in sorted(statuses):
        shades = STATUS_SHADES.get(status[:1], ("#888888",))
        n = seen[status[:1]] = seen.get(status[:1], -1) + 1
        colours[status] = shades[n % len(shades)]
    return colours


def nice_ticks(top: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `top` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) or abs(value) >= 100 else f"{value:.3g}"


@dataclass
class _Chart:
    """One chart being drawn: its y scale, its x labels' room, and its SVG elements."""

    label: str
    y_top: float
    bottom: float = 24  # room under the plot for the x labels (and an x axis title)
    top: float = TOP  # room above it, for the legend
    body: list[str] = field(default_factory=list)

    @property
    def base(self) -> float:
        return self.top + PLOT_HEIGHT

    def y(self, value: float) -> float:
        return self.base - value / self.y_top * PLOT_HEIGHT

    def add(self, element: str) -> None:
        self.body.append(element)

    def axes(
        self,
        ticks: list[float],
        y_label: str,
        legend: Sequence[tuple[str, str]],
        dashed: Collection[str] | None = None,
    ) -> None:
        """The legend along the top (in as many rows as it needs to stay inside the
        chart): a square per series, or, for a chart of lines (`dashed` given), a piece of
        each line as drawn, so a dashed series is told from the solid one of its colour;
        then the y axis with its grid, and the axis title."""
        x: float = LEFT
        for name, colour in legend:
            width = (24 if dashed is None else 42) + CHAR_WIDTH * len(name)
            if x > LEFT and x + width - 10 > WIDTH - RIGHT:  # the last gap may stick out
                x, self.top = LEFT, self.top + LEGEND_ROW
            y = 8 + self.top - TOP
            if dashed is None:
                self.add(
                    f'<rect x="{x}" y="{y}" width="10" height="10" fill="{colour}"/>'
                    f'<text x="{x + 14}" y="{y + 9}">{escape(name)}</text>'
                )
            else:
                self.add(f'<g class="key">{_line_key(x, y + 5, colour, name in dashed)}')
                self.add(f'<text x="{x + 30:.1f}" y="{y + 9}">{escape(name)}</text></g>')
            x += width
        for tick in ticks:
            y = self.y(tick)
            self.add(
                f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>'
            )
        middle = self.top + PLOT_HEIGHT / 2
        self.add(
            f'<text x="14" y="{middle:.0f}" text-anchor="middle" '
            f'transform="rotate(-90 14 {middle:.0f})">{escape(y_label)}</text>'
        )

    def x_labels(self, places: Sequence[tuple[float, str]], room: float) -> None:
        """Labels under the plot at x positions `room` apart; tilted when they would touch."""
        widest = max((len(text) for _, text in places), default=0) * CHAR_WIDTH
        every = max(1, math.ceil(len(places) / 13))  # more than 13 labels would crowd
        tilt = widest > room * every - 4
        if tilt:
            self.bottom = max(self.bottom, 28 + widest * 0.6)  # sin(35°) of the label
        y = self.base + 14
        shown = [p for i, p in enumerate(places) if i % every == 0 or i == len(places) - 1]
        for x, text in shown:
            turn = f' transform="rotate(-35 {x:.1f} {y:.1f})"' if tilt else ""
            anchor = "end" if tilt else "middle"
            self.add(
                f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{turn}>{escape(text)}</text>'
            )

    def svg(self, x_title: str = "") -> str:
        if x_title:
            self.bottom += 16
            x, y = LEFT + (WIDTH - LEFT - RIGHT) / 2, self.base + self.bottom - 6
            self.add(f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="middle">{escape(x_title)}</text>')
        height = self.base + self.bottom
        return (
            f'<svg viewBox="0 0 {WIDTH} {height:.0f}" role="img" '
            f'aria-label="{escape(self.label)}" class="chart">{"".join(self.body)}</svg>'
        )


def _line_key(x: float, y: float, colour: str, dashed: bool) -> str:
    """A legend's piece of line with its dot: solid and filled, or dashed and hollow.
    26 px of the dash (6 drawn, 4 not) show both gaps beside the dot, which hides the
    middle dash."""
    dash = f' stroke-dasharray="{DASH}"' if dashed else ""
    fill = "#fff" if dashed else colour
    return (
        f'<line x1="{x:.1f}" x2="{x + 26:.1f}" y1="{y}" y2="{y}" stroke="{colour}" '
        f'stroke-width="2"{dash}/>'
        f'<circle cx="{x + 13:.1f}" cy="{y}" r="3" fill="{fill}" stroke="{colour}"/>'
    )


def _bar(x: float, y: float, width: float, height: float, colour: str, title: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
        f'fill="{colour}"><title>{escape(title)}</title></rect>'
    )


def _colours(series: Mapping[str, object], given: dict[str, str] | None) -> dict[str, str]:
    return given or {n: OTHERS[i % len(OTHERS)] for i, n in enumerate(series)}


def bars(
    label: str,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    y_label: str,
    stacked: bool = False,
    colours: dict[str, str] | None = None,
) -> str:
    """One group of bars per category, a bar per series (or one stacked bar per category)."""
    colours = _colours(series, colours)
    names = list(series)
    if stacked:
        top = max((sum(series[n][i] for n in names) for i in range(len(categories))), default=0)
    else:
        top = max((v for values in series.values() for v in values), default=0)
    ticks = nice_ticks(top)
    chart = _Chart(label, ticks[-1])
    chart.axes(ticks, y_label, [(n, colours[n]) for n in names])
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(categories))
    per_slot = 1 if stacked else max(1, len(names))
    bar_w = min(48.0, slot * 0.8 / per_slot)
    for i, category in enumerate(categories):
        left = LEFT + i * slot + (slot - bar_w * per_slot) / 2
        base = chart.base
        for j, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            y = chart.y(value) - (chart.base - base)
            x = left if stacked else left + j * bar_w
            title = f"{category}: {name} {_number(value)}"
            chart.add(_bar(x, y, bar_w, base - y, colours[name], title))
            if stacked:
                base = y
    chart.x_labels([(LEFT + (i + 0.5) * slot, c) for i, c in enumerate(categories)], slot)
    return chart.svg()


def histogram(
    label: str,
    edges: Sequence[float],
    series: dict[str, Sequence[int]],
    *,
    x_title: str,
    y_label: str,
    colours: dict[str, str] | None = None,
) -> str:
    """Stacked counts per bin, bins side by side; the x labels are the bins' edges.

    The count scale is linear: stacked on a log scale, a bar's parts would add up to
    more than its count, and a small part would look as large as a big one."""
    colours = _colours(series, colours)
    bins = len(edges) - 1
    top = max((sum(v[i] for v in series.values()) for i in range(bins)), default=0)
    ticks = nice_ticks(top)
    chart = _Chart(label, ticks[-1])
    chart.axes(ticks, y_label, list(colours.items()))
    width = (WIDTH - LEFT - RIGHT) / max(1, bins)
    for i in range(bins):
        base = chart.base
        for name, counts in series.items():
            if not counts[i]:
                continue
            y = chart.y(counts[i]) - (chart.base - base)
            title = f"{_number(edges[i])} to {_number(edges[i + 1])}: {name} {counts[i]}"
            chart.add(_bar(LEFT + i * width + 0.5, y, width - 1, base - y, colours[name], title))
            base = y
    chart.x_labels([(LEFT + i * width, _number(e)) for i, e in enumerate(edges)], width)
    return chart.svg(x_title)


def steps(
    label: str,
    xs: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    x_title: str,
    y_label: str,
    marks: Sequence[tuple[float, str]] = (),
    colours: dict[str, str] | None = None,
) -> str:
    """Each series as a step line over `xs` (a value holds until the next sample); a None
    value leaves a gap until the next number.

    `marks` are (x, text) vertical lines, such as the moment the last request ended; a
    label that would run past the plot's right edge is written to the left of its line.
    """
    colours = _colours(series, colours)
    top = max((v for values in series.values() for v in values if v is not None), default=0)
    ticks = nice_ticks(top)
    x_ticks = nice_ticks(max([*xs, *(x for x, _ in marks)], default=0), 6)
    chart = _Chart(label, ticks[-1])
    chart.axes(ticks, y_label, list(colours.items()))
    x_at = _time_axis(chart, x_ticks)
    _marks(chart, x_at, marks)
    for name, values in series.items():
        lines: list[list[str]] = [[]]
        for k, (x, y) in enumerate(zip(xs, values, strict=True)):
            if y is None:
                lines.append([])
                continue
            lines[-1].append(f"{x_at(x):.1f},{chart.y(y):.1f}")
            if k + 1 < len(xs):  # held until the next sample, whatever comes then
                lines[-1].append(f"{x_at(xs[k + 1]):.1f},{chart.y(y):.1f}")
        known = [v for v in values if v is not None]
        end = _number(known[-1]) if known else 0
        for points in (line for line in lines if line):
            chart.add(
                f'<polyline points="{" ".join(points)}" fill="none" stroke="{colours[name]}" '
                f'stroke-width="2"><title>{escape(name)}: {end} at the end</title></polyline>'
            )
    return chart.svg(x_title)


def columns(
    label: str,
    starts: Sequence[float],
    width: float,
    series: Mapping[str, Sequence[float]],
    *,
    x_title: str,
    y_label: str,
    titles: Sequence[str],
    marks: Sequence[tuple[float, str]] = (),
    colours: dict[str, str] | None = None,
    unit: str = "",
) -> str:
    """Stacked columns on a time axis, one per interval of `width` from each of `starts`;
    each part's hover text is its column's `titles` entry, the series and its value (in
    `unit`).
    `marks` are (x, text) vertical lines, as for `steps`."""
    colours = _colours(series, colours)
    top = max((sum(v[i] for v in series.values()) for i in range(len(starts))), default=0)
    ticks = nice_ticks(top)
    end = starts[-1] + width if starts else 0
    x_ticks = nice_ticks(max([end, *(x for x, _ in marks)]), 6)
    chart = _Chart(label, ticks[-1])
    chart.axes(ticks, y_label, list(colours.items()))
    x_at = _time_axis(chart, x_ticks)
    for i, start in enumerate(starts):
        left, right = x_at(start), x_at(start + width)
        base = chart.base
        for name, values in series.items():
            if not values[i]:
                continue
            y = chart.y(values[i]) - (chart.base - base)
            title = f"{titles[i]}: {name} {_number(values[i])}{unit}"
            chart.add(_bar(left, y, max(0.5, right - left - 0.5), base - y, colours[name], title))
            base = y
    _marks(chart, x_at, marks)  # over the columns, so that they never hide a line
    return chart.svg(x_title)


def _time_axis(chart: _Chart, x_ticks: list[float]) -> Callable[[float], float]:
    """The x labels of a plot from 0 to `x_ticks[-1]`; where on it an x lies."""
    plot_w = WIDTH - LEFT - RIGHT

    def x_at(x: float) -> float:
        return LEFT + x / x_ticks[-1] * plot_w

    chart.x_labels([(x_at(t), _number(t)) for t in x_ticks], plot_w / max(1, len(x_ticks) - 1))
    return x_at


def _marks(
    chart: _Chart, x_at: Callable[[float], float], marks: Sequence[tuple[float, str]]
) -> None:
    """Labelled vertical lines; a label that would touch the one before it goes a row
    lower (a fault set at 5 s and cleared at 6 s), one past the right edge to the left of
    its line."""
    rows: list[float] = []  # where each row's last label ends
    for x, text in sorted(marks):
        at = x_at(x)
        span = CHAR_WIDTH * len(text)
        fits = at + 4 + span <= WIDTH - RIGHT
        place = f'x="{at + 4:.1f}"' if fits else f'x="{at - 4:.1f}" text-anchor="end"'
        begins, ends = (at + 4, at + 4 + span) if fits else (at - 4 - span, at - 4)
        row = next((i for i, end in enumerate(rows) if begins > end + 4), len(rows))
        rows[row : row + 1] = [ends]
        chart.add(
            f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{chart.top}" y2="{chart.base}" '
            f'class="mark"><title>{escape(text)}</title></line>'
            f'<text {place} y="{chart.top + 10 + 12 * row}" class="mark">{escape(text)}</text>'
        )


def curve(
    label: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_title: str,
    y_label: str,
    colours: dict[str, str],
    dashed: Sequence[str] = (),
    marks: Sequence[tuple[float, str]] = (),
) -> str:
    """Each series as (x, y) points joined by a line, a dot on each point; the `dashed`
    series (a prediction, say) dashed, with hollow dots. `marks` are labelled lines."""
    ys = [y for points in series.values() for _, y in points]
    xs = [x for points in series.values() for x, _ in points]
    ticks = nice_ticks(max(ys, default=0))
    x_ticks = nice_ticks(max([*xs, *(x for x, _ in marks)], default=0), 6)
    chart = _Chart(label, ticks[-1])
    chart.axes(ticks, y_label, [(n, colours[n]) for n in series], dashed)
    plot_w = WIDTH - LEFT - RIGHT

    def x_at(x: float) -> float:
        return LEFT + x / x_ticks[-1] * plot_w

    chart.x_labels([(x_at(t), _number(t)) for t in x_ticks], plot_w / max(1, len(x_ticks) - 1))
    for x, text in marks:
        # Labels go left of a mark in the right half, so they are never cut at the edge.
        right = x_at(x) > LEFT + plot_w / 2
        anchor, shift = ("end", -4) if right else ("start", 4)
        chart.add(
            f'<line x1="{x_at(x):.1f}" x2="{x_at(x):.1f}" y1="{chart.top}" y2="{chart.base}" '
            f'class="mark"><title>{escape(text)}</title></line>'
            f'<text x="{x_at(x) + shift:.1f}" y="{chart.top + 10}" text-anchor="{anchor}" '
            f'class="mark">{escape(text)}</text>'
        )
    for name, points in series.items():
        colour = colours[name]
        line = " ".join(f"{x_at(x):.1f},{chart.y(y):.1f}" for x, y in points)
        dash = f' stroke-dasharray="{DASH}"' if name in dashed else ""
        chart.add(
            f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
            f"<title>{escape(name)}</title></polyline>"
        )
        # Measured points filled, predicted ones hollow (seen even where a line has one).
        fill = "#fff" if name in dashed else colour
        for x, y in points:
            chart.add(
                f'<circle cx="{x_at(x):.1f}" cy="{chart.y(y):.1f}" r="3" fill="{fill}" '
                f'stroke="{colour}"><title>{escape(name)}: {_number(y)} at {_number(x)}'
                "</title></circle>"
            )
    return chart.svg(x_title)
