"""The model engine: a run on the virtual clock as a discrete-event simulation, no HTTP.

On the virtual clock a run's every figure follows from its scenario and seed, so this
engine replays what the HTTP engine does, step for step, without sockets: the same
per-component random streams (`model/latency.py`), drawn in the same order; the same
clock rules (`core/clock.py`): time in integer nanoseconds, wake-ups due at one time in
the order their sleeps were taken, and what arrives at one simulated time (a request at a
component, a reply at its caller) taken in the order its exchange was opened, once
everything else due then is done; the same stations (`components/capacity.py`): slots, a
FIFO line, the service drawn when the slot is granted. It fills the same `Tally`,
`Timeline` and station figures, so `collect.bench_result` makes the same report.

It covers what `model_support.py` lets through and refuses the rest with one line. It
imports no component's app and no aiohttp: it reads the model layer (topology, graph,
latency), and keeps a cache's entries with the cache's own `Entries`
(`components/cache_entries.py`), operation for operation, eviction policies included.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..components.cache_entries import Entries, Entry
from ..components.figures import CacheFigures
from ..core.intervals import PerInterval
from ..core.metrics import Histogram
from ..core.timeline import Timeline
from ..model.config import NO_TIME, StationConfig, Topology, replica_settings
from ..model.graph import Endpoint, Step
from ..model.latency import component_rng, sampler
from ..model.load import DIRECT, ENDPOINTS, plan
from ..model.result import BenchResult
from ..model.scenario import Fault
from ..model.station import CapacityFigures
from .arrivals import arrival_times
from .collect import Seen, bench_result
from .model_support import Unsupported, refuse, unsupported
from .samples import SampleLog
from .sampling import Observed
from .session import BenchOptions, key_drawer, path_of
from .tally import Outcome, Tally

_NS = 1_000_000_000
_SLEEP, _BACKGROUND = 1, 2  # as the virtual clock's heap kinds them (its barriers are 0)
# Connections a component keeps to each other it calls (`core/http.py`'s POOL_SIZE):
# beyond them a call waits for one, which this engine does not reproduce.
POOL_SIZE = 64
_DEFAULT_WAIT = 30.0  # a callee whose settings name no timeout (`components/steps.py`)
_DRAIN_POLL, _DRAIN_LIMIT = 0.5, 24 * 3600.0  # as `sampling.drain_worker` polls

Then = Callable[[], None]
# (status, the replica the answer names in X-Served-By, what of its body the caller reads)
Reply = Callable[[int, str, Any], None]


class _Loop:
    """The virtual clock's heap and the event loop's ready queue, without asyncio.

    `soon(f)` is a callback the loop runs next, in order (a task that yields, a future
    set); `sleep` and `barrier` push a wake-up on the heap as `VirtualClock` does, and
    every entry due at the earliest time is moved to the ready queue at once, in heap
    order, only when nothing is ready: then everything due now has been done.
    """

    def __init__(self) -> None:
        self.now_ns = 0
        self.heap: list[tuple[int, int, int, int, Then]] = []
        self.ready: deque[Then] = deque()
        self._seq = itertools.count()
        self._pushes = itertools.count()
        self._exchanges = itertools.count(1)
        self.waiting = 0  # entries on the heap that are not background ones
        # Barriers are always due now: kept apart from the heap, sorted when they fire
        # (before anything else due now, as their kind sorts first on the clock's heap).
        self.barriers: list[tuple[int, Then]] = []
        self.done = False

    def now(self) -> float:
        return self.now_ns / _NS

    def soon(self, then: Then) -> None:
        self.ready.append(then)

    def sleep(self, seconds: float, then: Then, background: bool = False) -> None:
        if seconds <= 0:  # the clock's asyncio.sleep(0): one turn of the loop
            self.ready.append(then)
            return
        kind = _BACKGROUND if background else _SLEEP
        self._push(self.now_ns + round(seconds * _NS), kind, next(self._seq), then)

    def exchange(self) -> int:
        return next(self._exchanges)

    def barrier(self, exchange: int, then: Then) -> None:
        self.barriers.append((exchange, then))

    def _push(self, due: int, kind: int, order: int, then: Then) -> None:
        heapq.heappush(self.heap, (due, kind, order, next(self._pushes), then))
        self.waiting += kind != _BACKGROUND

    def run(self) -> None:
        ready, heap = self.ready, self.heap
        while True:
            while ready:
                ready.popleft()()
            if self.done:
                return
            if self.barriers:
                batch, self.barriers = self.barriers, []
                if len(batch) == 1:
                    ready.append(batch[0][1])
                else:
                    batch.sort(key=_first)  # in the order their exchanges were opened
                    ready.extend(then for _, then in batch)
                now = self.now_ns
                while heap and heap[0][0] == now:  # sleeps due now too, after the barriers
                    entry = heapq.heappop(heap)
                    self.waiting -= entry[1] != _BACKGROUND
                    ready.append(entry[4])
                continue
            if not self.waiting:
                raise RuntimeError("model engine stalled: every request waits, none on the clock")
            due = heap[0][0]
            self.now_ns = max(self.now_ns, due)
            while heap and heap[0][0] == due:
                entry = heapq.heappop(heap)
                self.waiting -= entry[1] != _BACKGROUND
                ready.append(entry[4])


# The value a fill keeps (its size never decides an eviction: `model_support` refuses a
# cache whose bytes could fill).
_FILLED = b"null"
# What a gateway's read answers: whether it came from the cache.
_HIT, _MISS = {"cached": True}, {"cached": False}


def _refusal(status: int, replica: str, body: Any) -> tuple[int, str, dict[str, str]]:
    """What a component answers when a call it made failed with `status`, as
    `core/http.refusal` and `answers.answer_for` word it: 503 or 429 pass on, else 502."""
    detail = body.get("error") if isinstance(body, dict) else None
    message = f"{replica} answered {status}" + (f": {detail}" if detail else "")
    return (
        (status if status in (429, 503) else 502),
        replica,
        {
            "error": message,
            "component": replica,
        },
    )


def _first(pair: tuple[int, Then]) -> int:
    return pair[0]


class _Station:
    """A component's slots and FIFO line, as `components/capacity.py` keeps them."""

    def __init__(
        self, loop: _Loop, component: str, settings: StationConfig, service: Callable[[], float]
    ) -> None:
        self.loop, self.component = loop, component
        self.slots, self.queue_size = settings.concurrency, settings.queue_size
        self.for_service_only = settings.holds == "service"
        self.service = service
        self.busy = 0
        self.waiting: deque[Then] = deque()
        self.waits = Histogram()
        self.rejected = 0
        self.started = self._last = loop.now()
        self._busy_area = 0.0
        self._queue_area = 0.0

    def hold(self, handler: Callable[[Reply], None], reply: Reply) -> None:
        """`handler` in a slot after the service time; the slot let go as Capacity does."""

        def served() -> None:
            if self.for_service_only:
                self.release()
                handler(reply)
            else:

                def answered(status: int, served_by: str, body: Any) -> None:
                    self.release()
                    reply(status, served_by, body)

                handler(answered)

        def granted() -> None:
            seconds = self.service()
            if seconds > 0:
                self.loop.sleep(seconds, served)
            else:
                served()

        self.acquire(granted, reply)

    def spend(self, seconds: float, then: Then, reply: Reply) -> None:
        """`seconds` of work in a slot (a cpu step under `holds = "service"`); `reply`
        takes the 503 when none is to be had."""

        def granted() -> None:
            self.loop.sleep(seconds, done)  # Capacity.spend sleeps even for 0: one turn

        def done() -> None:
            self.release()
            then()

        self.acquire(granted, reply)

    def acquire(self, granted: Then, reply: Reply) -> None:
        if self.busy < self.slots:
            self._advance()
            self.busy += 1
            self.waits.add(0.0)
            granted()
            return
        if len(self.waiting) >= self.queue_size:  # 503, as Capacity._refuse words it
            self.rejected += 1
            message = (
                f"{self.component} is at capacity ({self.slots} of {self.slots} slots busy, "
                f"{len(self.waiting)} waiting; queue_size {self.queue_size})"
            )
            reply(503, self.component, {"error": message, "component": self.component})
            return
        self._advance()
        arrived = self.loop.now()

        def woken() -> None:
            self.waits.add(self.loop.now() - arrived)
            granted()

        self.waiting.append(woken)

    def release(self) -> None:
        self._advance()
        if self.waiting:
            self.loop.soon(self.waiting.popleft())  # the slot passes on: still busy
            return
        self.busy -= 1

    def _advance(self) -> None:
        now = self.loop.now()
        if now > self._last:
            span = now - self._last
            self._busy_area += self.busy * span
            self._queue_area += len(self.waiting) * span
            self._last = now

    def figures(self) -> CapacityFigures:
        self._advance()
        now = self.loop.now()
        span = max(0.0, now - self.started)
        waits = Histogram(
            self.waits.count,
            self.waits.total_us,
            self.waits.min_us,
            self.waits.max_us,
            Counter(self.waits.buckets),
        )
        return CapacityFigures(
            slots=self.slots,
            queue_size=self.queue_size,
            busy_now=self.busy,
            utilization=self._busy_area / (self.slots * span) if span > 0 else 0.0,
            busy_slot_seconds=self._busy_area,
            queue_length_now=len(self.waiting),
            queue_length_mean=self._queue_area / span if span > 0 else 0.0,
            queue_wait=waits,
            rejected=self.rejected,
            at_s=now,
            span_s=span,
        )


class _Node:
    """One replica: its delay, its station, its kind's handling, the statuses it answered."""

    def __init__(self, engine: _Engine, replica: str, name: str) -> None:
        graph = engine.graph
        component = graph.components[name]
        self.engine, self.loop, self.id, self.kind = engine, engine.loop, replica, component.kind
        self.component = component
        settings = self.settings = replica_settings(component, replica)
        self.rng = component_rng(engine.topology.seed, replica)
        self.delay = sampler(settings.latency, self.rng)
        self.station: _Station | None = None
        if isinstance(settings, StationConfig):
            service = sampler(settings.service, self.rng)
            if settings.concurrency > 0:
                self.station = _Station(self.loop, replica, settings, service)
            elif settings.service != NO_TIME:
                latency = self.delay
                self.delay = lambda: latency() + service()
        self.statuses: Counter[int] = Counter()
        self.counters: Counter[str] = Counter()  # its kind's figures that the report reads
        if component.kind == "cache":
            self.cache_figures = CacheFigures()
            name = f"{engine.topology.seed}:{replica}"
            self.entries = Entries(settings, self.cache_figures, self.loop.now, name)
        if component.kind == "worker":
            self.duration = sampler(settings.task_duration, self.rng)
            self.free_slots = settings.concurrency
            self.task_waiters: deque[Then] = deque()
            self.active = self.tasks = 0
        # A component of several replicas that this one calls: its replicas in turn.
        self.turns = {
            n: itertools.cycle([r.id for r in graph.replicas(n)]) for n in graph.components
        }
        self.draws: dict[int, Callable[[], float]] = {}
        self.endpoints = {(e.method, e.path): e for e in component.endpoints}
        if component.kind == "load_balancer":
            self.backends = [r.id for n in component.backends for r in graph.replicas(n)]
            self.turn = 0
            self.in_flight = dict.fromkeys(self.backends, 0)
            self.weights = dict(
                zip(self.backends, settings.weights or [1] * len(self.backends), strict=True)
            )
            self.scores = dict.fromkeys(self.backends, 0)  # smooth weighted round robin
            self.timeout = settings.timeout

    def serve(self, method: str, path: str, reply: Reply) -> None:
        """A request that has just passed its barrier here: the middleware, then the kind."""
        seconds = self.delay()

        def slot() -> None:
            handler = self._handler(method, path)
            if self.station is not None:
                self.station.hold(handler, self._answered(reply))
            else:
                handler(self._answered(reply))

        if seconds > 0:
            self.loop.sleep(seconds, slot)
        else:
            slot()

    def figures(self) -> dict[str, int]:
        """Its kind's figures that the report reads: a cache's all of them, as the cache's."""
        if self.kind == "cache":
            return {**self.counters, **self.cache_figures.counts()}
        return dict(self.counters)

    def _answered(self, reply: Reply) -> Reply:
        def answered(status: int, served_by: str, body: Any) -> None:
            self.statuses[status] += 1
            reply(status, served_by, body)

        return answered

    def _handler(self, method: str, path: str) -> Callable[[Reply], None]:
        if self.kind == "load_balancer":
            return lambda reply: self._proxy(method, path, reply)
        if self.kind == "gateway" and (method, path) == ("POST", "/login"):
            return lambda reply: reply(200, self.id, None)
        if self.kind == "cache":
            return lambda reply: self._cache(method, path, reply)
        if self.kind == "database":
            return lambda reply: self._database(reply)
        if self.kind == "worker":
            return lambda reply: self._submit(reply)
        route, _, query = path.partition("?")
        endpoint = self.endpoints.get((method, route))
        assert endpoint is not None  # model_support refused any other route
        # A read's `?key=` (the load's keys, always well formed): as `Steps.cache_path`.
        key = query.removeprefix("key=") if query.startswith("key=") else None
        return lambda reply: self._steps(endpoint, 0, 200, None, reply, key)

    def _proxy(self, method: str, path: str, reply: Reply) -> None:
        backend = self._pick()
        self.in_flight[backend] += 1

        def relayed(status: int, served_by: str, body: Any) -> None:
            self.in_flight[backend] -= 1
            reply(status, served_by, body)  # the gateway's answer passes on, X-Served-By too

        self.engine.call(self.id, backend, method, path, self.timeout, relayed)

    def _pick(self) -> str:
        strategy = self.settings.strategy
        if strategy == "random":
            return self.backends[self.rng.randrange(len(self.backends))]
        if strategy == "least_connections":
            return min(self.backends, key=lambda b: self.in_flight[b])
        if strategy == "power_of_two":
            if len(self.backends) == 1:
                return self.backends[0]
            i, j = self.rng.sample(range(len(self.backends)), 2)
            first, second = self.backends[i], self.backends[j]
            return first if self.in_flight[first] <= self.in_flight[second] else second
        if strategy == "weighted":  # nginx's smooth weighted round robin, as balancing.py
            best = None
            for candidate in self.backends:
                self.scores[candidate] += self.weights[candidate]
                if best is None or self.scores[candidate] > self.scores[best]:
                    best = candidate
            assert best is not None
            self.scores[best] -= sum(self.weights.values())
            return best
        backend = self.backends[self.turn]
        self.turn = (self.turn + 1) % len(self.backends)
        return backend

    def _call(self, component: str, method: str, path: str, then: Reply) -> None:
        """A call to the next replica of `component` in turn, waiting its `timeout`;
        `then(status, the replica called, body)`."""
        wait = getattr(self.engine.graph.components[component].settings, "timeout", None)
        target = next(self.turns[component])

        def replied(status: int, _served_by: str, body: Any) -> None:
            then(status, target, body)

        self.engine.call(
            self.id, target, method, path, _DEFAULT_WAIT if wait is None else wait, replied
        )

    def _checked(self, component: str, method: str, path: str, then: Then, fail: Reply) -> None:
        """A call whose error status fails the endpoint (`check=True`): `fail` gets the
        answer `core/http.refusal` makes of it; else `then()`."""

        def replied(status: int, replica: str, body: Any) -> None:
            if status >= 400:
                fail(*_refusal(status, replica, body))
            else:
                then()

        self._call(component, method, path, replied)

    def _read_through(
        self, step: Step, key: str | None, answer: Callable[[int, Any], None], fail: Reply
    ) -> None:
        """Cache-aside, as `Steps.read_through`: the cache, and on a miss the source and a
        fill; the answer says whether it was `cached`."""
        source = step.source
        assert source is not None

        def read_source(then: Then) -> None:
            self._checked(source.target, source.method, source.path, then, fail)

        if not step.target or not getattr(self.settings, "use_cache", True):
            read_source(lambda: answer(200, _MISS))
            return
        path = f"/cache/{step.key if key is None else key}"

        def looked_up(status: int, replica: str, value: Any) -> None:
            if status >= 400:
                fail(*_refusal(status, replica, value))
            elif value is not None:
                answer(200, _HIT)
            else:
                read_source(
                    lambda: self._checked(
                        step.target, "POST", path, lambda: answer(200, _MISS), fail
                    )
                )

        self._call(step.target, "GET", path, looked_up)

    def _cache(self, method: str, path: str, reply: Reply) -> None:
        """`GET` and `POST /cache/<key>`, as `components/cache.py` without its patterns
        (coalescing, stale-while-revalidate: refused), on the same `Entries`."""
        key, now = path.removeprefix("/cache/"), self.loop.now()
        if method == "GET":
            entry = self.entries.lookup(key)
            if entry is not None and now < entry.expires_at:
                self.cache_figures.hits += 1
                reply(200, self.id, True)
                return
            self.entries.missed(key)  # stale entries: refused (stale_while_revalidate)
            reply(200, self.id, None)
            return
        self.entries.put(key, Entry(_FILLED, now + self.settings.ttl))
        reply(200, self.id, None)

    def _database(self, reply: Reply) -> None:
        self.counters["db_calls"] += 1
        reply(200, self.id, None)

    def _submit(self, reply: Reply) -> None:
        """`POST /task`, as `components/worker.py`: 202 at once, the task run after, in
        one of `concurrency` slots taken first come first served."""
        settings, counters = self.settings, self.counters
        if self.active >= settings.concurrency + settings.queue_size:
            counters["rejected"] += 1
            message = f"{self.id} queue is full ({self.active} tasks pending)"
            reply(503, self.id, {"error": message, "component": self.id})
            return
        self.active += 1
        self.tasks += 1
        counters["submitted"] += 1
        counters["queued"] += 1
        self.loop.soon(self._run_task)
        reply(202, self.id, f"task-{self.tasks}")

    def _run_task(self) -> None:
        counters, loop = self.counters, self.loop

        def start() -> None:
            counters["queued"] -= 1
            counters["running"] += 1
            loop.sleep(self.duration(), finish)

        def finish() -> None:
            counters["running"] -= 1
            if self.task_waiters:  # the semaphore passes straight to the longest waiter
                loop.soon(self.task_waiters.popleft())
            else:
                self.free_slots += 1
            counters["completed"] += 1
            self.active -= 1

        if self.free_slots > 0 and not self.task_waiters:
            self.free_slots -= 1
            start()
        else:
            self.task_waiters.append(start)

    def _steps(
        self,
        endpoint: Endpoint,
        i: int,
        status: int,
        body: Any,
        reply: Reply,
        key: str | None = None,
    ) -> None:
        """The endpoint's steps from the `i`th, as `components/steps.py` runs them; the
        last call, read or task decides the answer (`status`, `body`); `key`: the
        request's `?key=`, which its reads ask the cache for."""
        if i == len(endpoint.steps):
            reply(status, self.id, body)
            return
        step = endpoint.steps[i]

        def next_step() -> None:
            self._steps(endpoint, i + 1, status, body, reply, key)

        def answer(status: int, body: Any) -> None:
            self._steps(endpoint, i + 1, status, body, reply, key)

        def fail(status: int, _replica: str, body: Any) -> None:
            reply(status, self.id, body)  # the endpoint ends, the middleware answers it

        if step.kind == "call":

            def called(status: int, replica: str, body: Any) -> None:
                if status >= 500:
                    fail(*_refusal(status, replica, body))
                elif status >= 400:  # a refusal ends the endpoint, passed on as it came
                    reply(status, self.id, body)
                else:
                    answer(status, body)

            self._call(step.target, step.method, step.path, called)
            return
        if step.kind == "read_through":
            self._read_through(step, key, answer, fail)
            return
        if step.kind == "enqueue":
            assert step.target
            queued = {"status": "Task queued"}

            def handed(status: int, replica: str, task: Any) -> None:
                if status >= 400 and not step.ignore_status:
                    fail(*_refusal(status, replica, task))
                else:
                    answer(202, queued if step.ignore_status else queued | {"task_id": task})

            self._call(step.target, "POST", "/task", handed)
            return
        draw = self.draws.get(id(step))
        if draw is None:
            draw = self.draws[id(step)] = sampler(step.time, self.rng)
        seconds = draw()
        if step.kind == "cpu" and self.station is not None and self.station.for_service_only:
            self.station.spend(seconds, next_step, reply)
        else:
            self.loop.sleep(seconds, next_step)


class _Engine:
    """One run: the replicas, the bench's load and its tally, the sampler."""

    def __init__(
        self, topology: Topology, options: BenchOptions, samples: SampleLog | None
    ) -> None:
        self.topology, self.options, self.samples = topology, options, samples
        self.loop = _Loop()
        graph = self.graph = topology.graph()
        # In start order (callees first), as the cluster lists them.
        self.nodes = {
            r.id: _Node(self, r.id, name)
            for name in graph.start_order()
            for r in graph.replicas(name)
        }
        self.entry = graph.entry_replica()
        self.workers = [n for n in self.nodes.values() if n.kind == "worker"]
        self.watching = True  # the sampler, until the run is over
        self.pools: Counter[tuple[str, str]] = Counter()
        self.timeline = Timeline()
        self.tally = Tally()
        self.draw_key = key_drawer(options, topology.seed)
        self.start = 0.0
        self.in_flight = 0  # an open load's requests unanswered
        self.senders = 0  # a closed load's clients still sending, or the open scheduler

    # -- exchanges ------------------------------------------------------------------------

    def call(
        self, caller: str, callee: str, method: str, path: str, wait: float | None, then: Reply
    ) -> None:
        """`caller` sends `method path` to `callee`; `then(status, served_by)` once the
        reply has passed its barrier at the caller."""
        loop = self.loop
        exchange = loop.exchange()
        pool = (caller, callee)
        self.pools[pool] += 1
        if self.pools[pool] > POOL_SIZE:
            raise refuse(
                f"more than {POOL_SIZE} requests at once from {caller} to {callee} "
                "(a wait for a pooled connection)"
            )
        due = None if wait is None else loop.now_ns + round(wait * _NS)

        def replied(status: int, served_by: str, body: Any) -> None:
            self.pools[pool] -= 1

            def read() -> None:
                if due is not None and loop.now_ns >= due:
                    raise refuse(f"a timeout ({callee} did not answer {caller} within {wait:g}s)")
                then(status, served_by, body)

            loop.barrier(exchange, read)

        node = self.nodes[callee]
        loop.barrier(exchange, lambda: node.serve(method, path, replied))

    def send(self, method: str, path: str, then: Reply, to: str = "") -> None:
        """The bench's own request to the entry, or `to` (its pool never makes it wait)."""
        loop = self.loop
        exchange = loop.exchange()
        node = self.nodes[to or self.entry]

        def replied(status: int, served_by: str, body: Any) -> None:
            loop.barrier(exchange, lambda: then(status, served_by, body))

        loop.barrier(exchange, lambda: node.serve(method, path, replied))

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Seen:
        loop = self.loop
        self.send("POST", "/login", lambda status, _, __: self._begin(status))
        loop.run()
        self.elapsed = loop.now() - self.start
        self.ended = self._capacities()  # the load's window, not the worker's drain
        loop.done = False
        self._drain(0.0)
        loop.run()
        self.watching = False
        return self._seen()

    def _drain(self, waited: float) -> None:
        """Let the worker finish its tasks, polling as `sampling.drain_worker` does."""
        busy = sum(n.counters["queued"] + n.counters["running"] for n in self.workers)
        if not busy or waited >= _DRAIN_LIMIT:
            self.loop.done = True
            self.watching = False
            return
        self.loop.sleep(_DRAIN_POLL, lambda: self._drain(waited + _DRAIN_POLL))

    def _begin(self, status: int) -> None:
        if status != 200:  # model_support lets through only a load whose login succeeds
            raise refuse(f"a login answered {status}")
        loop, options = self.loop, self.options
        self.start = start = loop.now()
        self.tally = Tally(
            cached=self.graph.reads_cache(),
            entry=self.entry,
            start=start,
            per_interval=PerInterval.every(options.interval),
        )
        if self.samples is not None:
            self.samples.start = start
        self.began = self._capacities()
        loop.soon(self._sample)
        if options.open:
            self.senders = 1
            loop.soon(self._schedule)
        else:
            sequence = _sequence(plan(options.requests, options.mix))
            think = None
            if options.think.mean() > 0:
                think = sampler(options.think, random.Random(f"{self.topology.seed}:think"))
            count = min(options.concurrency, options.requests)
            self.senders = count
            for _ in range(count):
                loop.soon(self._worker(sequence, think))

    def _sample(self) -> None:
        if not self.watching:  # cancelled at the end, though due at that very moment
            return
        self._take()
        loop = self.loop
        loop.sleep(self.start + self.timeline.next_at() - loop.now(), self._sample, background=True)

    def _take(self) -> None:
        tally = self.tally
        values = {
            "ok": tally.ok,
            "failed": tally.failed,
            "hits": tally.hits,
            "misses": tally.misses,
        }
        for replica, node in self.nodes.items():
            if node.station is not None:
                values[f"queue {replica}"] = len(node.station.waiting)
        queued = running = 0
        for node in self.workers:
            queued += node.counters["queued"]
            running += node.counters["running"]
        values |= {"worker_queued": queued, "worker_running": running}
        self.timeline.add(self.loop.now() - self.start, values)

    def _worker(
        self, sequence: Iterator[tuple[int, str]], think: Callable[[], float] | None
    ) -> Then:
        loop = self.loop
        turn = itertools.count()

        def step() -> None:
            n = next(turn)
            taken = next(sequence, None)
            if taken is None:
                self._sender_done()
                return
            _, endpoint = taken
            if n and think is not None:
                loop.sleep(think(), lambda: self._one(endpoint, None, step))
            else:
                self._one(endpoint, None, step)

        return step

    def _schedule(self) -> None:
        loop, options = self.loop, self.options
        start = loop.now()
        arrivals = _arrivals(options, self.topology.seed)
        tally = self.tally

        def wait() -> None:
            taken = next(arrivals, None)
            if taken is None:
                tally.offered_for = loop.now() - start
                self._sender_done()
                return
            at, endpoint = taken
            loop.sleep(start + at - loop.now(), lambda: arrive(at, endpoint))

        def arrive(at: float, endpoint: str) -> None:
            tally.arrived += 1
            if self.in_flight >= options.max_in_flight:
                tally.dropped += 1
            else:
                self.in_flight += 1
                loop.soon(lambda: self._one(endpoint, start + at, self._answered))
            wait()

        wait()

    def _answered(self) -> None:
        self.in_flight -= 1
        if not self.in_flight and not self.senders:
            self.loop.done = True

    def _sender_done(self) -> None:
        self.senders -= 1
        if not self.senders and not self.in_flight:
            self.loop.done = True

    def _one(self, endpoint: str, scheduled: float | None, then: Then) -> None:
        """Send one request of the mix and file its answer, as `driver.one` does."""
        loop, tally = self.loop, self.tally
        method = ENDPOINTS[endpoint][0]
        path = path_of(endpoint, self.draw_key)
        sent = loop.now()
        started = sent if scheduled is None else scheduled
        if scheduled is not None:
            tally.send_lag.add(max(0.0, sent - scheduled))

        def answered(status: int, served_by: str, body: Any) -> None:
            latency = loop.now() - sent
            tally.record(
                endpoint, Outcome(status, body, served_by=served_by), latency, sent=started
            )
            if self.samples is not None:
                self.samples.add(endpoint, started, sent, latency, status, served_by, body)
            then()

        direct = DIRECT.get(endpoint)  # `db`: straight to the first database
        self.send(method, path, answered, self.graph.of_kind(direct)[0] if direct else "")

    def _capacities(self) -> dict[str, CapacityFigures]:
        return {r: n.station.figures() for r, n in self.nodes.items() if n.station is not None}

    def _seen(self) -> Seen:
        elapsed, ended = self.elapsed, self.ended
        self._take()
        observed = Observed(
            counters={r: n.figures() for r, n in self.nodes.items()},
            statuses={r: _statuses(n.statuses) for r, n in self.nodes.items()},
            kinds={r: n.kind for r, n in self.nodes.items()},
            capacity={r: (self.began[r], ended[r]) for r in self.began},
        )
        return Seen(self.topology, self.options, self.tally, elapsed, 0.0, observed, self.timeline)


def _statuses(counts: Counter[int]) -> dict[str, int]:
    served = Counter({str(status): n for status, n in counts.items()})
    return {status: n for status, n in sorted(served.items()) if n}


def _sequence(blocks: list[tuple[str, int]]) -> Iterator[tuple[int, str]]:
    """The closed load's requests in turn, as `driver._sequence` numbers them."""
    names = itertools.chain.from_iterable(itertools.repeat(name, n) for name, n in blocks)
    return enumerate(names, start=1)


def _arrivals(options: BenchOptions, seed: int) -> Iterator[tuple[float, str]]:
    """(seconds from the start, endpoint) of each arrival, as `open_load._arrivals`."""
    rng = random.Random(f"{seed}:arrivals")
    times = arrival_times(
        options.rate, options.duration or None, options.stages, options.arrivals, rng
    )
    names, weights = zip(*options.mix.items(), strict=True)
    counted = not (options.duration or options.stages)
    for count, at in enumerate(times):
        if counted and count >= options.requests:
            return
        yield at, rng.choices(names, weights)[0]


def execute_model(
    topology: Topology,
    options: BenchOptions,
    faults: Sequence[Fault] = (),
    samples: SampleLog | None = None,
) -> BenchResult:
    """The run's result by the model engine; `Unsupported` (one line) for what it cannot
    reproduce exactly."""
    reason = unsupported(topology, options, faults)
    if reason is not None:
        raise Unsupported(reason)
    wall_start = time.perf_counter()
    seen = _Engine(topology, options, samples).run()
    wall = time.perf_counter() - wall_start
    return bench_result(dataclasses.replace(seen, wall=wall))
