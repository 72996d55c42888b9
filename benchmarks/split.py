"""The lab split into 3 processes on 3 loopback addresses against the lab in 1 process:
cache-hit `GET /data` at concurrency 10 (requests/s and p50, 3 interleaved rounds,
medians), and the lab's own `load_test.py` against each (with the lab's latencies).

    python benchmarks/split.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from throughput import PY, ROOT, load

PARTS = ("load-balancer,gateways", "cache,database", "worker,microservice")
HOSTS = """
[hosts]
load-balancer = "127.0.0.2"
gateway-{g1} = "127.0.0.2"
gateway-{g2} = "127.0.0.2"
gateway-{g3} = "127.0.0.2"
cache = "127.0.0.3"
database = "127.0.0.3"
"""
ENV = {**os.environ, "LABSIM_ADMIN_TOKEN": "bench-" + "a" * 40, "LABSIM_SECRET": "s" * 40}


def scenario(folder: str, base: str, offset: int) -> str:
    """`base` (a shipped scenario) moved by `offset` ports, with the split's hosts."""
    text = (ROOT / base).read_text()
    path = Path(folder) / f"{Path(base).stem}-{offset}.toml"
    path.write_text(text + HOSTS.format(g1=5000, g2=5003, g3=5006))  # --port-offset moves them
    return str(path)


@contextmanager
def up(path: str, offset: int, only: str | None) -> Iterator[None]:
    args = [PY, "-m", "labsim", "up", "--scenario", path, "--port-offset", str(offset)]
    args += ["--quiet", "--no-dashboard"] + (["--only", only] if only else [])
    proc = subprocess.Popen(args, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "Press Ctrl-C" not in (proc.stdout.readline() or "x"):
            pass
        yield
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def lab(folder: str, base: str, offset: int, split: bool) -> Iterator[str]:
    path = scenario(folder, base, offset)
    with up(path, offset, PARTS[0] if split else None):
        if not split:
            # One process: everything on one address (the [hosts] table only moves some).
            yield f"http://127.0.0.2:{8000 + offset}"
            return
        with up(path, offset, PARTS[1]), up(path, offset, PARTS[2]):
            yield f"http://127.0.0.2:{8000 + offset}"


def main() -> int:
    rounds: dict[str, list[dict]] = {"1 process": [], "3 processes": []}
    scripts: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(3):
            for name, split in (("1 process", False), ("3 processes", True)):
                with lab(
                    folder, "scenarios/zero-latency.toml", 20000 + r * 10 + split, split
                ) as url:
                    rounds[name].append(load(url, 10, 5.0, login=True))
                print(f"  round {r + 1} {name}: {rounds[name][-1]}", file=sys.stderr)
        for name, split in (("1 process", False), ("3 processes", True)):
            with lab(folder, "scenarios/lab.toml", 21000 + split, split) as url:
                started = time.perf_counter()
                done = subprocess.run(
                    [PY, str(ROOT / "tests/lab/load_test.py")],
                    env={**os.environ, "LAB_URL": url}, capture_output=True, text=True, check=True,
                )  # fmt: skip
                scripts[name] = time.perf_counter() - started
                assert done.stdout.count("'cached': True") == 40, done.stdout[-500:]
    print("| lab | cache hits/s, c=10 | p50 ms | the lab's load_test.py, s |")
    print("|---|---:|---:|---:|")
    for name, runs in rounds.items():
        rps = statistics.median(r["rps"] for r in runs)
        p50 = statistics.median(r["p50_ms"] for r in runs)
        print(f"| {name} | {rps:.0f} | {p50:.2f} | {scripts[name]:.2f} |")
    print("\nMeasured with `python benchmarks/split.py` (3 interleaved rounds of 5 s, medians).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
