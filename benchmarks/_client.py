"""The load-generating client of the throughput benchmark, run in its own process.

    python benchmarks/_client.py URL --concurrency N --duration S [--max-requests M] [--login]

Logs in when asked (`POST URL/login`), sends one `GET URL/data` to warm the cache and one
round of N concurrent ones to open N keep-alive connections (neither is measured), then
N coroutines on one `aiohttp.ClientSession` send `GET URL/data` back to back until
S seconds have passed or M requests have been sent. Prints the figures as one JSON object.
A request counts as ok when it answers 200 with `"cached": true` in its body.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from typing import Any

import aiohttp

USER = {"username": "user1", "password": "password123"}
HIT_MARK = b'"cached": true'
REQUEST_TIMEOUT = 10.0  # seconds; a request slower than this counts as an error


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank q-th percentile of an already sorted, non-empty list."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def _get(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> bool:
    try:
        async with session.get(url, headers=headers) as resp:
            body = await resp.read()
            return resp.status == 200 and HIT_MARK in body
    except (aiohttp.ClientError, TimeoutError):
        return False


async def measure(
    base: str, concurrency: int, duration: float, max_requests: int, login: bool
) -> dict[str, Any]:
    """Run the load against `base` and return requests/s and latencies (ms)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        headers: dict[str, str] = {}
        if login:
            async with session.post(f"{base}/login", json=USER) as resp:
                resp.raise_for_status()
                headers["Authorization"] = (await resp.json())["token"]
        url = f"{base}/data"
        await _get(session, url, headers)  # warm the cache
        warm = await asyncio.gather(*(_get(session, url, headers) for _ in range(concurrency)))
        if not all(warm):
            raise RuntimeError(f"warm-up requests to {url} failed: not 200 cache hits")

        latencies: list[float] = []
        errors = 0
        sent = 0
        start = time.perf_counter()
        deadline = start + duration
        cpu_start = time.process_time()

        async def worker() -> None:
            nonlocal errors, sent
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1
                t0 = time.perf_counter()
                ok = await _get(session, url, headers)
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
        cpu = time.process_time() - cpu_start

    latencies.sort()
    ms = [x * 1000 for x in latencies]
    return {
        "concurrency": concurrency,
        "requests": len(ms),
        "errors": errors,
        "elapsed_s": round(elapsed, 3),
        "rps": round((len(ms) - errors) / elapsed, 1),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(ms[-1], 3),
        "client_cpu": round(cpu / elapsed, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--login", action="store_true")
    args = parser.parse_args(argv)
    run = measure(
        args.url.rstrip("/"), args.concurrency, args.duration, args.max_requests, args.login
    )
    # Bounded even if the server stops answering: the run, plus one request timeout, plus slack.
    result = asyncio.run(asyncio.wait_for(run, args.duration + 2 * REQUEST_TIMEOUT + 5))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
