"""The servers the throughput benchmark talks to, each run in its own process.

    python benchmarks/_servers.py chain [SCENARIO]   # labsim's topology, real clock
    python benchmarks/_servers.py bare               # one aiohttp app: GET /data

Binds free ports on 127.0.0.1, prints the URL to send requests to on stdout, then serves
until SIGTERM, SIGINT or its stdin closes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from aiohttp import web

from labsim.core import loop

HOST = "127.0.0.1"
# The same shape and size as the gateway's cache-hit answer.
BARE_ANSWER = {"cached": True, "data": "Fetched fresh data from DB"}


async def _wait_for_stop() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    stdin = sys.stdin.fileno()

    def on_stdin() -> None:
        if not os.read(stdin, 4096):  # EOF: whoever started us has gone
            loop.remove_reader(stdin)
            stop.set()

    loop.add_reader(stdin, on_stdin)
    await stop.wait()


async def serve_bare() -> None:
    async def data(request: web.Request) -> web.Response:
        return web.json_response(BARE_ANSWER)

    app = web.Application()
    app.router.add_get("/data", data)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, 0).start()
        print(f"http://{HOST}:{runner.addresses[0][1]}", flush=True)
        await _wait_for_stop()
    finally:
        await runner.cleanup()


async def serve_chain(scenario: str) -> None:
    from labsim.components.cluster import Cluster
    from labsim.core.clock import RealClock
    from labsim.model.config import load_topology

    cluster = Cluster(load_topology(scenario), RealClock(), ephemeral=True)
    await cluster.start()
    try:
        print(cluster.url, flush=True)
        await _wait_for_stop()
    finally:
        await cluster.stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["bare"]:
        loop.run(serve_bare())  # the same event loop as labsim's, for a fair reference
    elif argv[:1] == ["chain"]:
        loop.run(serve_chain(argv[1] if len(argv) > 1 else "scenarios/zero-latency.toml"))
    else:
        print("usage: _servers.py bare | chain [SCENARIO]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
