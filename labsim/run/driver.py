"""The load: log in, then send the mix with at most `concurrency` requests in flight.

A closed model, as the lab's `load_test.py`: each of `concurrency` workers sends its next
request when the previous one is answered (after a think time, where the load has one).
Every answer is filed in the run's `Tally`, its latency measured on the run's clock.
Ctrl-C (when the run allows it) stops sending and gives what is in flight a moment to
finish. Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import signal
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..core.http import DownstreamError
from ..model.guide import forged_token
from ..model.latency import sampler
from ..model.load import ENDPOINTS, plan
from .session import BenchError, BenchOptions, Session
from .tally import Outcome, Tally

# Wall seconds that requests in flight get to finish after Ctrl-C.
INTERRUPT_GRACE = 2.0
# Wall seconds between two progress lines in a log (not a terminal).
PROGRESS_EVERY = 5.0

Show = Callable[[int, str, int | None, Any], None]
# How far a load has got, from the requests answered: the share done, and it in words.
Where = Callable[[int], tuple[float, str]]


async def login(session: Session) -> str:
    """A token for the scenario's first user, from the load balancer's `/login`."""
    # A remote topology's users are the scenario's too: `--scenario` says which they are.
    user, base = session.topology.users[0], session.base
    try:
        reply = await session.client.request(
            session.entry,
            "POST",
            f"{base}/login",
            json_body={"username": user.username, "password": user.password},
            check=False,
            within=session.request_timeout,
        )
    except DownstreamError as e:
        raise BenchError(f"cannot reach {base}: {e}") from None
    if reply.status != 200:
        raise BenchError(
            f"login at {base}/login failed with status {reply.status}: {reply.body[:200]!r}"
        )
    answer = json_or_text(reply.body)
    token = answer.get("token") if isinstance(answer, dict) else None
    # The token goes into a header: it must be one line of visible ASCII.
    if not isinstance(token, str) or not token.isascii() or not token.isprintable() or not token:
        raise BenchError(
            f'login at {base}/login answered 200 but not with {{"token": "..."}}: '
            f"{reply.body[:200]!r}"
        )
    return token


async def credentials(session: Session) -> str | None:
    """The token every request carries, as the load asks: from `/login`, forged with the
    course guide's public secret (`guide.py`), or none at all."""
    if session.options.auth == "forged":
        return forged_token()
    if session.options.auth == "none":
        return None
    return await login(session)


async def send_load(session: Session, token: str | None, tally: Tally) -> None:
    """Send every request of the mix; `tally.interrupted` if Ctrl-C stopped it early."""
    options = session.options
    sequence = _sequence(plan(options.requests, options.mix))
    show = printer(options, options.requests)
    stop = asyncio.Event()  # set by Ctrl-C: send nothing more
    think = thinking(session)

    async def worker() -> None:
        # The next request is taken before thinking, so no client thinks after the last.
        for turn, (number, endpoint) in enumerate(sequence):
            if turn and think is not None:
                await session.clock.sleep(think())
            if stop.is_set():
                return
            await one(session, token, number, endpoint, tally, show)

    count = min(options.concurrency, options.requests)
    workers = [asyncio.create_task(worker()) for _ in range(count)]
    with interrupts(options.interruptible, stop, workers):
        outcomes = await asyncio.gather(*workers, return_exceptions=True)
    finish(options, tally, stop, outcomes)


def thinking(session: Session) -> Callable[[], float] | None:
    """Draws of the closed load's think time (None: it has none), from a generator of
    their own, so that a think time leaves every other draw of the run as it was."""
    model = session.options.think
    if model.mean() <= 0:
        return None
    return sampler(model, random.Random(f"{session.topology.seed}:think"))


def finish(
    options: BenchOptions, tally: Tally, stop: asyncio.Event, outcomes: Sequence[object]
) -> None:
    """After the load: a bug in a sender surfaces; Ctrl-C is noted; the bar's line ends."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome  # a bug, not a request that failed: those are tallied
    tally.interrupted = stop.is_set()
    if options.progress == "bar":
        print(file=sys.stderr)


def _sequence(blocks: list[tuple[str, int]]) -> Iterator[tuple[int, str]]:
    names = itertools.chain.from_iterable(itertools.repeat(name, n) for name, n in blocks)
    return enumerate(names, start=1)


async def one(
    session: Session,
    token: str | None,
    number: int,
    endpoint: str,
    tally: Tally,
    show: Show,
    scheduled: float | None = None,
) -> None:
    """Send one request and file its answer; its latency counts from now. For an open
    load, how late it goes out against its `scheduled` time is filed apart as send lag:
    a client that cannot keep up is no slower system (zero on the virtual clock)."""
    method, _, _, body = ENDPOINTS[endpoint]
    path = session.path_of(endpoint)
    clock = session.clock
    sent = clock.now()
    started = sent if scheduled is None else scheduled
    if scheduled is not None:
        tally.send_lag.add(max(0.0, sent - scheduled))
    try:
        reply = await session.client.request(
            session.target_of(endpoint),
            method,
            session.url_of(endpoint) + path,
            headers={"Authorization": token} if token else None,
            json_body=body,
            check=False,
            within=session.request_timeout,
        )
        outcome = Outcome(
            reply.status, json_or_text(reply.body), served_by=reply.headers.get("X-Served-By")
        )
    except DownstreamError as e:
        outcome = Outcome(None, None, error=str(e))
    except asyncio.CancelledError:
        tally.cut += 1  # Ctrl-C, and it did not finish in time: not answered, not failed
        raise
    latency = clock.now() - sent
    tally.record(endpoint, outcome, latency, sent=started)  # when due: see core/intervals.py
    if session.samples is not None:
        session.samples.add(
            endpoint, started, sent, latency, outcome.status, outcome.served_by, outcome.answer
        )
    show(number, endpoint, outcome.status, outcome.error or outcome.answer)


def json_or_text(body: bytes) -> Any:
    """A reply's body as JSON, or as text where it is none (a proxy's HTML page)."""
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


@contextmanager
def interrupts(
    enabled: bool,
    stop: asyncio.Event,
    workers: Collection[asyncio.Task[None]],
    on_stop: Callable[[], object] = lambda: None,
) -> Iterator[None]:
    """While inside, Ctrl-C stops the load: nothing more is sent (`stop` is set and
    `on_stop` called), the `workers` in flight get INTERRUPT_GRACE seconds to finish, then
    are cut; a second Ctrl-C cuts them at once."""
    loop = asyncio.get_running_loop()
    cutter: list[asyncio.TimerHandle] = []

    def cut() -> None:
        for worker in list(workers):
            worker.cancel()

    def interrupted() -> None:
        if stop.is_set():
            cut()
            return
        stop.set()
        on_stop()
        in_flight = sum(not w.done() for w in workers)
        print(
            f"\nlabsim: interrupted: sending no more; waiting up to {INTERRUPT_GRACE:g} s for "
            f"{in_flight} request(s) in flight (Ctrl-C again to stop now)",
            file=sys.stderr,
            flush=True,
        )
        cutter.append(loop.call_later(INTERRUPT_GRACE, cut))

    if enabled:
        try:
            loop.add_signal_handler(signal.SIGINT, interrupted)
        except (NotImplementedError, RuntimeError):  # no signals here (Windows, a thread)
            enabled = False
    try:
        yield
    finally:
        if enabled:
            loop.remove_signal_handler(signal.SIGINT)
        for handle in cutter:
            handle.cancel()


def counted(total: int) -> Where:
    """Progress as the share of `total` requests answered."""

    def where(n: int) -> tuple[float, str]:
        return min(1.0, n / total), f"{n:,}/{total:,} requests answered"

    return where


def printer(options: BenchOptions, total: int, where: Where | None = None) -> Show:
    """What to show per answered request, of about `total` expected; how far the load has
    got is `where(answered)`: the share done (0 to 1) and the same in words."""
    where = where or counted(total)
    done = itertools.count(1)
    step = max(1, total // 200)
    began = time.monotonic()  # progress is for the person waiting: wall time
    next_line = [began + PROGRESS_EVERY]

    def show(number: int, endpoint: str, status: int | None, answer: Any) -> None:
        n = next(done)
        if options.verbose:
            print(f"[{endpoint.upper()}] Request {number}: Status {status}, Response: {answer}")
        if options.progress == "bar" and (n % step == 0 or n == total):
            share, text = where(n)
            filled = round(share * 30)
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r[{bar}] {text}  {pace(n, share)}", end="", file=sys.stderr, flush=True)
        elif options.progress == "lines" and n % step == 0 and time.monotonic() >= next_line[0]:
            next_line[0] = time.monotonic() + PROGRESS_EVERY
            share, text = where(n)
            print(
                f"labsim: {text} ({share:.0%}, {time.monotonic() - began:.0f} s, {pace(n, share)})",
                file=sys.stderr,
                flush=True,
            )

    def pace(n: int, share: float) -> str:
        """Answers a wall second so far, and the wall time left at the pace so far."""
        elapsed = max(time.monotonic() - began, 1e-9)
        left = elapsed * (1 - share) / share if share > 0 else 0.0
        return f"{n / elapsed:,.0f}/s, {_clock(left)} left"

    return show


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}:{seconds:02d}"
