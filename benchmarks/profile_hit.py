"""Where a cache hit's microseconds go, now and at a named earlier commit, per kind of work.

Runs `python -m labsim bench --requests N --mix data=100 --concurrency 10` (virtual clock:
every request is a cache hit but the first ten) under cProfile, once for this checkout and
once for the baseline commit, and sorts each function's own time into kinds of work:
HTTP parsing, aiohttp's server, the HTTP client, transport and event loop, middleware,
clock, the components' own work, JSON, the bench client, start-up and report. Prints a
Markdown table of microseconds per request, side by side.

cProfile's own cost per call roughly doubles every figure and weighs most on small Python
functions: read the shares and the before/after, not the absolute microseconds.

    python benchmarks/profile_hit.py [--requests N] [--baseline REV]
"""

from __future__ import annotations

import argparse
import pstats
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from throughput import BASELINE, PY, Version, baseline_checkout

ROOT = Path(__file__).resolve().parent.parent

# (kind of work, fragments of a file path or a built-in's name); the first match wins.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "HTTP parsing (both ends)",
        ("http_parser", "feed_data", "data_received", "_parse_", "HttpRequestParser"),
    ),
    (
        "HTTP client (request, pool, reply)",
        (
            "labsim/http.py",
            "labsim/connections.py",
            "aiohttp/client",
            "aiohttp/connector",
            "aiohttp/tracing",
            "aiosignal",
            "yarl/",
            "multidict",
        ),
    ),
    (
        "aiohttp server (routing, request, response)",
        (
            "aiohttp/web_",
            "aiohttp/http_writer",
            "aiohttp/helpers",
            "aiohttp/streams",
            "aiohttp/base_protocol",
            "labsim/serving.py",
        ),
    ),
    ("middleware", ("labsim/components/middleware.py",)),
    ("clock", ("labsim/clock.py", "heapq", "_heapq")),
    (
        "components' own work",
        (
            "labsim/components/",
            "labsim/balancing",
            "labsim/auth",
            "labsim/metrics",
            "labsim/rate_limit",
            "cachetools",
            "jwt/",
        ),
    ),
    ("JSON", ("json/", "_json", "encode_basestring", "scanstring")),
    ("bench client and tally", ("labsim/run/driver", "labsim/run/tally", "labsim/run/sampling")),
    (
        "transport and event loop",
        (
            "asyncio/",
            "selectors",
            "'recv'",
            "'send'",
            "'poll'",
            "labsim/pipe.py",
            "contextvars",
            "_asyncio",
            "'run' of",
        ),
    ),
)
OTHER = "start-up, report and the rest"


def kind_of(where: str) -> str:
    for kind, fragments in KINDS:
        if any(f in where for f in fragments):
            return kind
    return OTHER


def profile(version: Version, requests: int) -> Counter[str]:
    """Seconds of own time per kind of work, for one profiled bench run of `version`."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "bench.prof"
        statement = f"main({_args(requests)!r})"
        code = "import cProfile; from labsim.cli import main; "
        code += f"cProfile.run({statement!r}, {str(out)!r})"
        subprocess.run(
            [PY, "-c", code],
            cwd=version.root,
            env=version.env(),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        stats = pstats.Stats(str(out))
    totals: Counter[str] = Counter()
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        totals[kind_of(f"{filename} {name}")] += row[2]  # own time (tottime)
    return totals


def _args(requests: int) -> list[str]:
    return ["bench", f"--requests={requests}", "--mix=data=100", "--concurrency=10"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--baseline", default=BASELINE)
    args = parser.parse_args(argv)
    now = Version("now", "now", ROOT)
    with baseline_checkout(args.baseline) as base:
        before = profile(base, args.requests)
    after = profile(now, args.requests)
    n = args.requests
    lines = [
        f"Own time per request under cProfile, `bench --requests {n} --mix data=100 "
        "--concurrency 10` (virtual clock, cache hits):",
        "",
        f"| kind of work | at {base.label} µs | share | now µs | share |",
        "|---|---:|---:|---:|---:|",
    ]
    kinds = [kind for kind, _ in KINDS] + [OTHER]
    total_before, total_after = sum(before.values()), sum(after.values())
    for kind in kinds:
        b, a = before[kind], after[kind]
        lines.append(
            f"| {kind} | {b / n * 1e6:.0f} | {b / total_before:.0%} "
            f"| {a / n * 1e6:.0f} | {a / total_after:.0%} |"
        )
    lines.append(
        f"| **all** | **{total_before / n * 1e6:.0f}** | | **{total_after / n * 1e6:.0f}** | |"
    )
    print("\n".join(lines))
    print(f"\nMeasured with `python benchmarks/profile_hit.py --requests {n}`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
