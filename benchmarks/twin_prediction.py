"""What labsim's twin of the lab (`scenarios/seed.toml`) predicts, next to what was measured.

    python benchmarks/twin_prediction.py [--measured twin.json]

Runs `python -m labsim bench --scenario scenarios/seed.toml` on the virtual clock: cache
hits only (`--mix data=100 --db-latency 0`, 20,000 requests) at each concurrency the
measurement used, and the lab's own load (100 requests, cold cache). With `--measured`
(the JSON that `benchmarks/twin.py --json` writes) it prints prediction beside measurement
with the deviation of each; `benchmarks/twin.py` calls it after measuring.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "scenarios/seed.toml"
HIT_REQUESTS = 20_000
TARGET = 0.10  # the bar: within 10 % of the deployment
# Each stage's service in SCENARIO: uniform from 1.7 to 3.7 ms, 2.7 ms on average.
STAGE_LOW, STAGE_HIGH, STAGE_S = 0.0017, 0.0037, 0.0027


def _bench(scenario: str, *args: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        command = [sys.executable, "-m", "labsim", "bench", "--scenario", scenario, *args]
        subprocess.run(
            [*command, "--json", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=600
        )
        return json.loads(out.read_text())


def predict(concurrencies: list[int], scenario: str = SCENARIO) -> dict[str, Any]:
    """The twin's cache-hit requests/s and p50 per concurrency, and its lab run's time."""
    hits = {}
    for n in concurrencies:
        r = _bench(
            scenario,
            "--mix", "data=100", "--db-latency", "0", "--requests", str(HIT_REQUESTS),
            "--concurrency", str(n),
        )  # fmt: skip
        hits[n] = {"rps": r["throughput_rps"], "p50_ms": r["endpoints"]["data"]["p50_ms"]}
        print(f"twin at concurrency {n}: {hits[n]}", file=sys.stderr)
    lab = _bench(scenario)
    return {"hits": hits, "lab_run_s": lab["time"]["simulated_s"]}


def recalibrated(measured: dict[str, Any]) -> dict[str, Any]:
    """The twin calibrated anew from this run's own two ends, as `scenarios/seed.toml` was
    from an idle machine: each of the two stages takes 1 / (2 X(1)) at concurrency 1 and
    N / (N + 1) / X(N) at the top concurrency N; the stage time is the mean of the two
    (its spread scaled with it).
    The concurrencies in between then test the model's shape apart from the machine's
    speed on the day, which moves by 10 to 20 % from run to run on a shared machine."""
    summary = {int(n): f for n, f in measured["throughput_summary"].items()}
    top = max(summary)
    stage = (1 / (2 * summary[min(summary)]["rps"]) + top / (top + 1) / summary[top]["rps"]) / 2
    scale = stage / STAGE_S
    text = (
        (ROOT / SCENARIO)
        .read_text()
        .replace(
            f"low = {STAGE_LOW}, high = {STAGE_HIGH}",
            f"low = {STAGE_LOW * scale:.6f}, high = {STAGE_HIGH * scale:.6f}",
        )
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seed-now.toml"
        path.write_text(text)
        predicted = predict(sorted(summary), str(path))
    return predicted | {"stage_ms": stage * 1000}


def _deviation(predicted: float, measured: float) -> str:
    change = predicted / measured - 1
    mark = "" if abs(change) <= TARGET else " (over 10 %)"
    return f"{change * 100:+.1f} %{mark}"


def compare(measured: dict[str, Any], predicted: dict[str, Any], title: str = "") -> str:
    """Markdown: prediction beside measurement, per concurrency and for the lab run."""
    lines = [
        title
        or f"Prediction of `{SCENARIO}` (virtual clock) beside the Flask deployment's figures:",
        "",
        "| concurrency | measured req/s | predicted | deviation | measured p50 ms "
        "| predicted | deviation |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    hits = {int(n): figures for n, figures in predicted["hits"].items()}
    for n, seen in measured["throughput_summary"].items():
        twin = hits[int(n)]
        lines.append(
            f"| {n} | {seen['rps']:.0f} | {twin['rps']:.0f} "
            f"| {_deviation(twin['rps'], seen['rps'])} "
            f"| {seen['p50_ms']:.1f} | {twin['p50_ms']:.1f} "
            f"| {_deviation(twin['p50_ms'], seen['p50_ms'])} |"
        )
    runs = sorted(r["cold"]["script_s"] for r in measured["lab_runs"] if r["cold"]["script_s"])
    if runs:
        seen = runs[len(runs) // 2]
        lab = predicted["lab_run_s"]
        lines += [
            "",
            f"The lab's own script, cold: measured {seen:.2f} s (median of {len(runs)}), "
            f"predicted {lab:.2f} s ({_deviation(lab, seen)}).",
        ]
    return "\n".join(lines)


def compare_recalibrated(measured: dict[str, Any], predicted: dict[str, Any]) -> str:
    levels = [int(n) for n in measured["throughput_summary"]]
    title = (
        f"The same twin calibrated from this run's concurrency {min(levels)} "
        f"and {max(levels)} figures (two stages of "
        f"{predicted['stage_ms']:.2f} ms each; `{SCENARIO}` has 2.7 ms):"
    )
    return compare(measured, predicted, title)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, metavar="PATH", help="twin.py's JSON")
    args = parser.parse_args()
    measured = json.loads(args.measured.read_text()) if args.measured else None
    concurrencies = (
        [int(n) for n in measured["throughput_summary"]] if measured else [1, 5, 10, 20, 50]
    )
    predicted = predict(concurrencies)
    if measured:
        print(compare(measured, predicted))
        print()
        print(compare_recalibrated(measured, recalibrated(measured)))
    else:
        print(json.dumps(predicted, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
