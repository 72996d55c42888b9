"""The model engine beside the HTTP engine: simulated requests per wall second, same run.

M/M/1 (`scenarios/mm1.toml`, rate 9/s) and M/M/3 (`scenarios/mmc.toml`, rate 27/s), both at
utilization 0.9, open Poisson load, and the lab's own run (`scenarios/lab.toml`: 10
clients, `data=50,longtask=50`, the cache, the database, the worker), on the virtual
clock. Each round runs every point by both engines in turn (interleaved, so a busy machine
slows both alike) with the same scenario, seed and number of requests, and checks that
both reports are the same (every figure but wall time); each figure is the median over
the rounds. Markdown on stdout.

    python benchmarks/model_engine.py [--requests N] [--rounds R] [--profile]

`--profile` adds where the model engine's time goes (cProfile, the top functions).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from labsim.model.load_changes import changed_load  # noqa: E402
from labsim.model.scenario import Scenario, load_scenarios  # noqa: E402
from labsim.run import BenchOptions, execute  # noqa: E402
from labsim.run.model_engine import execute_model  # noqa: E402

# name -> (scenario file, its load's changes besides the number of requests)
POINTS: dict[str, tuple[str, dict[str, Any]]] = {
    "M/M/1 at rho 0.9": ("mm1.toml", {"rate": 9.0}),
    "M/M/3 at rho 0.9": ("mmc.toml", {"rate": 27.0}),
    "the lab's mix, 10 clients": ("lab.toml", {}),
}


def _point(file: str, changes: dict[str, Any], requests: int) -> tuple[Scenario, BenchOptions]:
    scenario = load_scenarios(ROOT / "scenarios" / file)[0]
    load = changed_load(scenario.load, changes | {"requests": requests})
    return scenario, BenchOptions.of(load)


def _masked(report: dict[str, Any]) -> dict[str, Any]:
    report["time"]["wall_s"] = None
    return report


def _timed(run: Any, *args: Any) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    result = run(*args)
    return time.perf_counter() - start, _masked(result.as_dict())


def measure(requests: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {p: {"http": [], "model": []} for p in POINTS}
    for r in range(rounds):
        for name, (file, changes) in POINTS.items():
            scenario, options = _point(file, changes, requests)
            http_s, http = _timed(execute, scenario.topology, options)
            model_s, model = _timed(execute_model, scenario.topology, options)
            same = http == model
            print(
                f"round {r + 1} {name}: http {http_s:.2f} s, model {model_s:.3f} s, "
                f"reports {'equal' if same else 'DIFFERENT'}",
                file=sys.stderr,
                flush=True,
            )
            if not same:
                raise SystemExit(f"{name}: the two engines' reports differ")
            figures[name]["http"].append(requests / http_s)
            figures[name]["model"].append(requests / model_s)
    return figures


def profile(requests: int) -> str:
    scenario, options = _point(*POINTS["M/M/3 at rho 0.9"], requests)
    profiler = cProfile.Profile()
    profiler.runcall(execute_model, scenario.topology, options)
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    figures = measure(args.requests, args.rounds)
    print(
        f"{args.requests:,} requests a run, median of {args.rounds} interleaved rounds, "
        f"Python {platform.python_version()} on {platform.machine()}\n"
    )
    print("| point | HTTP engine req/s | model engine req/s | ratio | reports |")
    print("|---|---:|---:|---:|---|")
    for name, by in figures.items():
        http, model = statistics.median(by["http"]), statistics.median(by["model"])
        print(f"| {name} | {http:,.0f} | {model:,.0f} | {model / http:.1f}x | equal |")
    if args.profile:
        print("\n```\n" + profile(50_000) + "```")


if __name__ == "__main__":
    main()
