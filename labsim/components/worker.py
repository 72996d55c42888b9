"""The worker: takes long tasks (`POST /task`) and runs them in the background.

Up to `concurrency` tasks run at once, each for a draw of `task_duration` on the shared
clock (lab: 5 s); up to `queue_size` more wait. Past that, 503 with `Retry-After`.
`GET /task/<id>` tells a task's state; the last `history` finished tasks are remembered.
On shutdown, unfinished tasks are reported, never dropped silently.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass

from aiohttp import web

from .answers import JSONError, json_body
from .context import Context
from .middleware import base_app


@dataclass
class Task:
    task_id: str
    # What the client sent, as compact JSON, kept only while the task is queued or
    # running: the history keeps states and times, never bodies.
    payload: bytes | None
    submitted_at: float
    state: str = "queued"
    started_at: float | None = None
    finished_at: float | None = None


def make_app(ctx: Context) -> web.Application:
    app = base_app(ctx)
    settings, clock, counters = ctx.settings, ctx.clock, ctx.counters
    duration = ctx.sampler(settings.task_duration)
    slots = asyncio.Semaphore(settings.concurrency)  # FIFO: tasks start in arrival order
    active: dict[str, Task] = {}
    runners: set[asyncio.Task[None]] = set()
    finished: OrderedDict[str, Task] = OrderedDict()
    ids = itertools.count(1)

    async def submit(request: web.Request) -> web.Response:
        payload = await json_body(request, empty={})
        if len(active) >= settings.concurrency + settings.queue_size:
            counters["rejected"] += 1
            raise JSONError(
                503,
                f"{ctx.id} queue is full ({len(active)} tasks pending)",
                headers={"Retry-After": "1"},
                component=ctx.id,
            )
        compact = json.dumps(payload, separators=(",", ":")).encode()
        task = Task(f"task-{next(ids)}", compact, clock.now())
        active[task.task_id] = task
        counters["submitted"] += 1
        counters["queued"] += 1
        runner = asyncio.create_task(run(task))
        runners.add(runner)
        runner.add_done_callback(runners.discard)
        return web.json_response({"status": "Started", "task_id": task.task_id}, status=202)

    async def status(request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        task = active.get(task_id) or finished.get(task_id)
        if task is None:
            raise JSONError(404, f"no task {task_id!r} (unknown, or finished long ago)")
        body = asdict(task)
        del body["payload"]
        return web.json_response(body)

    async def run(task: Task) -> None:
        async with slots:
            task.state, task.started_at = "running", clock.now()
            counters["queued"] -= 1
            counters["running"] += 1
            try:
                await clock.sleep(duration())
            finally:
                counters["running"] -= 1
        task.state, task.finished_at, task.payload = "done", clock.now(), None
        counters["completed"] += 1
        del active[task.task_id]
        finished[task.task_id] = task
        if len(finished) > settings.history:
            finished.popitem(last=False)

    async def stop_tasks(app: web.Application) -> None:
        for runner in runners:
            runner.cancel()
        await asyncio.gather(*runners, return_exceptions=True)
        if active:
            running = sum(t.state == "running" for t in active.values())
            shown = ", ".join(list(active)[:10]) + (", ..." if len(active) > 10 else "")
            ctx.log.warning(
                "%s: %d task(s) unfinished at shutdown (%d running, %d queued): %s",
                ctx.id,
                len(active),
                running,
                len(active) - running,
                shown,
            )

    app.router.add_post("/task", submit)
    app.router.add_get("/task/{task_id}", status)
    app.on_shutdown.append(stop_tasks)
    return app
