"""Small inline SVG charts for the HTML report: bars (grouped or stacked) and step lines.

Each function takes plain numbers and returns one `<svg>` element as text, sized by its
viewBox so it scales with the page. Every bar and point carries a `<title>`, which a
browser shows on hover, so exact values are one pointer away. No I/O, no dependencies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 30, 56
# No red in it: red means failure (see STATUS_SHADES).
PALETTE = ("#2f6fb0", "#e08a1e", "#3a9a5b", "#7a5cb0", "#8c6d3f", "#5aa9b5", "#4b5563")
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
    return f"{value:,.0f}" if value == int(value) else f"{value:,.3g}"


def _frame(ticks: list[float], y_label: str, legend: Sequence[tuple[str, str]]) -> list[str]:
    """The y axis with its grid, the axis label and the legend along the top."""
    plot_h = HEIGHT - TOP - BOTTOM
    out = []
    for tick in ticks:
        y = TOP + plot_h - tick / ticks[-1] * plot_h
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>'
        )
    out.append(
        f'<text x="14" y="{TOP + plot_h / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.0f})">{escape(y_label)}</text>'
    )
    x = LEFT
    for name, colour in legend:
        out.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="17">{escape(name)}</text>'
        )
        x += 24 + 7 * len(name)
    return out


def _svg(label: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}" '
        f'class="chart">{"".join(body)}</svg>'
    )


def bars(
    label: str,
    categories: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    y_label: str,
    x_label: str = "",
    stacked: bool = False,
    colours: dict[str, str] | None = None,
) -> str:
    """One group of bars per category, a bar per series (or one stacked bar per category)."""
    colours = colours or {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(series)}
    names = list(series)
    if stacked:
        top = max((sum(series[n][i] for n in names) for i in range(len(categories))), default=0)
    else:
        top = max((v for values in series.values() for v in values), default=0)
    ticks = nice_ticks(top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(1, len(categories))
    per_slot = 1 if stacked else max(1, len(names))
    bar_w = min(48.0, slot * 0.8 / per_slot)
    body = _frame(ticks, y_label, [(n, colours[n]) for n in names])
    tilt = len(categories) > 8 or max((len(c) for c in categories), default=0) * 6 > slot
    label_every = math.ceil(len(categories) / 12)  # more labels than that would overlap
    for i, category in enumerate(categories):
        left = LEFT + i * slot + (slot - bar_w * per_slot) / 2
        base = TOP + plot_h
        for j, name in enumerate(names):
            value = series[name][i]
            if not value:
                continue
            h = value / ticks[-1] * plot_h
            x = left if stacked else left + j * bar_w
            y = base - h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colours[name]}"><title>{escape(category)}: {escape(name)} '
                f"{_number(value)}</title></rect>"
            )
            if stacked:
                base = y
        cx, cy = LEFT + (i + 0.5) * slot, TOP + plot_h + 14
        if i % label_every:
            continue
        if tilt:
            body.append(
                f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
                f'transform="rotate(-35 {cx:.1f} {cy:.1f})">{escape(category)}</text>'
            )
        else:
            body.append(
                f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle">{escape(category)}</text>'
            )
    if x_label:
        body.append(_x_label(x_label))
    return _svg(label, body)


def _x_label(text: str) -> str:
    return (
        f'<text x="{LEFT + (WIDTH - LEFT - RIGHT) / 2:.0f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(text)}</text>'
    )


def steps(
    label: str,
    xs: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    x_label: str,
    y_label: str,
) -> str:
    """Each series as a step line over `xs` (a value holds until the next sample)."""
    colours = {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(series)}
    ticks = nice_ticks(max((v for values in series.values() for v in values), default=0))
    x_ticks = nice_ticks(xs[-1] if xs else 0, 6)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    body = _frame(ticks, y_label, list(colours.items()))

    def at(x: float, y: float) -> str:
        return f"{LEFT + x / x_ticks[-1] * plot_w:.1f},{TOP + plot_h - y / ticks[-1] * plot_h:.1f}"

    for tick in x_ticks:
        x = LEFT + tick / x_ticks[-1] * plot_w
        body.append(
            f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">{_number(tick)}</text>'
        )
    body.append(_x_label(x_label))
    for name, values in series.items():
        points = []
        for k, (x, y) in enumerate(zip(xs, values, strict=True)):
            if k:
                points.append(at(x, values[k - 1]))
            points.append(at(x, y))
        body.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{colours[name]}" '
            f'stroke-width="2"><title>{escape(name)}: {_number(values[-1]) if values else 0} '
            f"at the end</title></polyline>"
        )
    return _svg(label, body)
