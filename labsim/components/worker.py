"""The worker: takes long tasks (`POST /task`) and runs them in the background.

Up to `concurrency` tasks run at once, each for a draw of `task_duration` on the shared
clock (lab: 5 s); up to `queue_size` more wait. Past that, 503 with `Retry-After`.
`GET /task/<id>` tells a task's state, `GET /tasks` lists the newest (`?limit=`, at most
1000); the last `history` finished tasks are remembered. A task's times are Unix epoch
seconds; the durations between them are the shared clock's.
On shutdown, unfinished tasks are reported, never dropped silently.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

from aiohttp import web

from ..core.tasks import cancel_all
from ..model.config import WorkerConfig
from .answers import JSONError, json_body
from .context import Context, Station
from .figures import WorkerFigures
from .middleware import base_app

FIGURES = WorkerFigures  # the kind's own figures (`kinds.py`)


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


MAX_LISTED = 1000  # tasks in one answer of `GET /tasks`


def _described(task: Task, epoch: float) -> dict[str, object]:
    """A task as `GET /task/<id>` shows it; its times as Unix epoch seconds, `epoch` plus
    the time on the shared clock (so a task's durations are the clock's, as it ran)."""
    body = asdict(task)
    del body["payload"]  # what a client sent is not for others to read
    for name in ("submitted_at", "started_at", "finished_at"):
        if body[name] is not None:
            body[name] = round(epoch + body[name], 3)
    return body


def make_app(ctx: Context[WorkerConfig]) -> web.Application:
    worker = Worker(ctx)
    app = base_app(ctx, worker)
    app.router.add_post("/task", worker.submit)
    app.router.add_get("/task/{task_id}", worker.status)
    app.router.add_get("/tasks", worker.list_tasks)
    app.on_shutdown.append(worker.stop_tasks)
    return app


class Worker(Station[WorkerConfig, WorkerFigures]):
    """The worker's tasks: those waiting or running, and the last ones finished."""

    def __init__(self, ctx: Context[WorkerConfig]) -> None:
        super().__init__(ctx, WorkerFigures())
        self.duration = ctx.sampler(ctx.settings.task_duration)
        self.slots = asyncio.Semaphore(ctx.settings.concurrency)  # FIFO: in arrival order
        self.active: dict[str, Task] = {}
        self.runners: set[asyncio.Task[None]] = set()
        self.finished: OrderedDict[str, Task] = OrderedDict()
        self.ids = itertools.count(1)
        # Task times leave the simulation (a client reads them beside its own clock), so
        # they are told in wall-clock time: the clock's reading now is this wall moment.
        self.epoch = time.time() - self.clock.now()

    async def submit(self, request: web.Request) -> web.Response:
        payload = await json_body(request, empty={})
        active, settings = self.active, self.settings
        if len(active) >= settings.concurrency + settings.queue_size:
            self.figures.rejected += 1
            raise JSONError(
                503,
                f"{self.ctx.id} queue is full ({len(active)} tasks pending)",
                headers={"Retry-After": "1"},
                component=self.ctx.id,
            )
        compact = json.dumps(payload, separators=(",", ":")).encode()
        task = Task(f"task-{next(self.ids)}", compact, self.clock.now())
        active[task.task_id] = task
        self.figures.submitted += 1
        self.figures.queued += 1
        runner = asyncio.create_task(self.run(task))
        self.runners.add(runner)
        runner.add_done_callback(self.runners.discard)
        return web.json_response({"status": "Started", "task_id": task.task_id}, status=202)

    async def status(self, request: web.Request) -> web.Response:
        task_id = request.match_info["task_id"]
        task = self.active.get(task_id) or self.finished.get(task_id)
        if task is None:
            raise JSONError(404, f"no task {task_id!r} (unknown, or finished long ago)")
        return web.json_response(_described(task, self.epoch))

    async def list_tasks(self, request: web.Request) -> web.Response:
        """The newest tasks first, waiting, running or done; `?limit=` of them (100)."""
        limit = request.query.get("limit", "100")
        if not (limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LISTED):
            raise JSONError(400, f"limit must be a whole number from 1 to {MAX_LISTED}")
        tasks = itertools.chain(self.active.values(), self.finished.values())
        # Task numbers grow with each task (tasks finish in any order: sort by number).
        newest = heapq.nlargest(int(limit), tasks, key=lambda t: int(t.task_id[5:]))
        shown = [_described(t, self.epoch) for t in newest]
        total = len(self.active) + len(self.finished)
        return web.json_response({"tasks": shown, "total": total})

    async def run(self, task: Task) -> None:
        figures, clock = self.figures, self.clock
        async with self.slots:
            task.state, task.started_at = "running", clock.now()
            figures.queued -= 1
            figures.running += 1
            try:
                await clock.sleep(self.duration())
            finally:
                figures.running -= 1
        task.state, task.finished_at, task.payload = "done", clock.now(), None
        figures.completed += 1
        del self.active[task.task_id]
        self.finished[task.task_id] = task
        if len(self.finished) > self.settings.history:
            self.finished.popitem(last=False)

    async def stop_tasks(self, app: web.Application) -> None:
        await cancel_all(self.runners)
        active = self.active
        if active:
            running = sum(t.state == "running" for t in active.values())
            shown = ", ".join(list(active)[:10]) + (", ..." if len(active) > 10 else "")
            self.ctx.log.warning(
                "%s: %d task(s) unfinished at shutdown (%d running, %d queued): %s",
                self.ctx.id,
                len(active),
                running,
                len(active) - running,
                shown,
            )
