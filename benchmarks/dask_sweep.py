"""A sweep of 20 points three ways: one process, a local pool of 2, a Dask cluster of 2
worker processes (`distributed.LocalCluster`); wall time of each and whether the outputs
are the same point for point. Needs the `cluster` extra.

    python benchmarks/dask_sweep.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distributed import LocalCluster

ROOT = Path(__file__).resolve().parent.parent
RATES = ",".join(str(r) for r in range(1, 11))
SWEEP = ["sweep", "scenarios/mm1.toml", "--set", f"load.rate={RATES}",
         "--set", "load.requests=2000,4000"]  # fmt: skip


def run(folder: str, name: str, *options: str) -> tuple[float, dict]:
    out = os.path.join(folder, f"{name}.json")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "labsim", *SWEEP, "--json", out, *options],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    data = json.loads(Path(out).read_text())
    data["points"] = [{k: v for k, v in p.items() if k != "wall_s"} for p in data["points"]]
    return wall, data


def main() -> int:
    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            one = run(folder, "one")
            pool = run(folder, "pool", "--jobs", "2")
            dask = run(folder, "dask", "--cluster", cluster.scheduler_address)
    finally:
        cluster.close()
    print("| how | wall s | same points as one process |")
    print("|---|---:|:---:|")
    for name, (wall, data) in (("1 process", one), ("--jobs 2", pool), ("Dask, 2 workers", dask)):
        print(f"| {name} | {wall:.1f} | {'yes' if data == one[1] else '**NO**'} |")
    print(f"\n{len(one[1]['points'])} points; measured with `python benchmarks/dask_sweep.py`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
