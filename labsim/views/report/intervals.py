"""The HTML report's figures over time: requests a second, p50 and p99, and errors, per
interval of the run's clock, with the scenario's faults marked where they happened.

Reads a `BenchResult`'s `intervals` (see core/intervals.py for how requests are filed);
returns HTML text, touches nothing else.
"""

from __future__ import annotations

from html import escape

from ...model.result import BenchResult
from . import svg


def charts(result: BenchResult) -> list[str]:
    """Three charts on one time axis, each marking the faults: requests answered a second
    (served and failed stacked), the served ones' p50 and p99, and failures per interval."""
    iv = result.intervals
    out = ["<h3>Requests per second over time</h3>"]
    if not iv.start_s:
        return [*out, _note("No request was answered.")]
    step = iv.interval_s
    marks = [(e.at_s, e.text) for e in iv.events]
    x_title = f"seconds since the first request ({result.clock} clock)"
    titles = [
        f"{t:g} to {t + step:g} s ({n:,} sent)"
        for t, n in zip(iv.start_s, iv.requests, strict=True)
    ]
    # Each interval's rate split by its answers (the last interval's rate is over what
    # it lasted, cut at the run's end).
    shares = [(rps / n if n else 0.0) for n, rps in zip(iv.requests, iv.rps, strict=True)]
    rates = {
        "served": [(n - f) * k for n, f, k in zip(iv.requests, iv.failed, shares, strict=True)],
        "failed": [f * k for f, k in zip(iv.failed, shares, strict=True)],
    }
    colours = {"served": svg.MEANING["ok"], "failed": svg.MEANING["failed"]}
    out.append(
        svg.columns(
            "Requests per second over time",
            iv.start_s,
            step,
            rates,
            x_title=x_title,
            y_label="a second, by when sent",
            titles=titles,
            marks=marks,
            colours=colours,
            unit="/s",
        )
    )
    xs = [*iv.start_s, iv.start_s[-1] + step]  # the last interval's value holds to its end
    latency = {
        "p50": [*iv.p50_ms, iv.p50_ms[-1]],
        "p99": [*iv.p99_ms, iv.p99_ms[-1]],
    }
    out += [
        "<h3>Latency over time</h3>",
        svg.steps(
            "Latency over time",
            xs,
            latency,
            x_title=x_title,
            y_label="ms (served requests)",
            marks=marks,
            colours=None,
        ),
    ]
    out.append("<h3>Errors over time</h3>")
    if not any(iv.failed):
        out.append(_note("No request failed."))
    else:
        out.append(
            svg.columns(
                "Errors over time",
                iv.start_s,
                step,
                {"failed": [float(n) for n in iv.failed]},
                x_title=x_title,
                y_label=f"failed per {step:g} s",
                titles=titles,
                marks=marks,
                colours={"failed": svg.MEANING["failed"]},
            )
        )
    when = "due" if result.load.model == "open" else "sent"
    told = (
        f"Intervals of {step:g} s. A request counts in the interval it was {when} in, so a "
        "stall shows in every request sent during it; a gap in a latency line: no request "
        "was served in that interval."
    )
    return [*out, _note(told)]


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'
