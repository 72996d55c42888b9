"""The clocks: the virtual clock's ordering, quiet rule, exchange accounting and stalls."""

from __future__ import annotations

import asyncio

import pytest

from labsim.core.clock import RealClock, StalledError, VirtualClock


async def test_virtual_time_jumps_to_the_next_wake_up():
    clock = VirtualClock()

    async def main() -> float:
        await clock.sleep(3600)
        return clock.now()

    loop = asyncio.get_running_loop()
    wall = loop.time()
    assert await clock.run(main()) == 3600.0
    assert loop.time() - wall < 1


async def test_equal_wake_ups_fire_in_the_order_the_sleeps_were_taken():
    clock = VirtualClock()
    order: list[int] = []

    async def sleeper(n: int) -> None:
        await clock.sleep(1.0)
        order.append(n)

    async def main() -> None:
        await asyncio.gather(*(sleeper(n) for n in range(20)))

    await clock.run(main())
    assert order == list(range(20))


async def test_time_is_integer_nanoseconds_without_drift():
    clock = VirtualClock()

    async def main() -> float:
        for _ in range(10_000):
            await clock.sleep(0.0001)
        return clock.now()

    assert await clock.run(main()) == 1.0


async def test_time_does_not_advance_while_an_exchange_is_in_transit():
    clock = VirtualClock()
    woke_at: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(5)
        woke_at.append(clock.now())

    async def main() -> None:
        exchange = clock.exchanges.open()
        task = asyncio.create_task(sleeper())
        for _ in range(50):  # the loop is idle, but a request is "on the wire"
            await asyncio.sleep(0.001)
        assert woke_at == [] and clock.now() == 0
        clock.exchanges.parked(exchange)  # the server has it now and is parked
        await task
        clock.exchanges.close(exchange)

    await clock.run(main())
    assert woke_at == [5.0]


async def test_a_reply_nobody_waits_for_does_not_hold_time():
    clock = VirtualClock()

    async def main() -> float:
        exchange = clock.exchanges.open()
        clock.exchanges.parked(exchange)
        clock.exchanges.close(exchange)  # the caller gave up
        clock.exchanges.moving(exchange)  # the late reply must not count as in transit
        await clock.sleep(1)
        return clock.now()

    assert await clock.run(main()) == 1.0


async def test_a_deadlock_is_reported_not_hung():
    clock = VirtualClock(stall_grace=0.05)
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(StalledError):
        await clock.run(never)


async def test_cancelled_sleeps_are_skipped():
    clock = VirtualClock()

    async def main() -> float:
        doomed = asyncio.create_task(clock.sleep(1))
        await asyncio.sleep(0)
        doomed.cancel()
        await clock.sleep(2)
        return clock.now()

    assert await clock.run(main()) == 2.0


async def test_real_clock_sleeps_real_time():
    clock = RealClock()
    start = clock.now()
    await clock.sleep(0.01)
    assert clock.now() - start >= 0.01
    assert clock.exchanges.open() is None


async def test_barriers_release_in_exchange_order_whatever_order_they_came_in():
    clock = VirtualClock()
    order: list[int] = []

    async def arrive(exchange: int) -> None:
        await clock.exchanges.barrier(exchange)
        order.append(exchange)

    async def main() -> None:
        await asyncio.gather(*(arrive(n) for n in (5, 3, 9, 1, 7)))

    await clock.run(main())
    assert order == [1, 3, 5, 7, 9]
    assert clock.now() == 0  # a barrier takes no time


async def observe(clock: VirtualClock, every: float, wake_ups: list[float]) -> None:
    """What the bench's sampler does: note the time, sleep in the background, again."""
    while True:
        wake_ups.append(clock.now())
        await clock.sleep(every, background=True)


async def test_a_background_sleeper_does_not_keep_a_stalled_run_going():
    clock = VirtualClock(stall_grace=0.05)
    wake_ups = []
    watching = asyncio.create_task(observe(clock, 1, wake_ups))
    never = asyncio.get_running_loop().create_future()
    with pytest.raises(StalledError):
        await clock.run(never)
    watching.cancel()
    assert wake_ups == [0.0]


async def test_a_background_sleep_wakes_after_other_sleeps_due_at_once():
    clock = VirtualClock()
    order = []

    async def sleeper(name: str, background: bool) -> None:
        await clock.sleep(1, background=background)
        order.append(name)

    async def main() -> None:
        await asyncio.gather(sleeper("observer", True), sleeper("a", False), sleeper("b", False))

    await clock.run(main())
    assert order == ["a", "b", "observer"]
    assert clock.now() == 1.0


@pytest.mark.parametrize("ended", ["timeout", "cancelled sleep"])
async def test_work_that_can_no_longer_fire_does_not_keep_a_background_sleeper_going(ended):
    clock = VirtualClock(stall_grace=0.05)
    wake_ups = []

    async def main() -> None:
        if ended == "timeout":  # its alarm, due at 30 s, is cancelled when the block ends
            async with clock.timeout(30):
                await clock.sleep(1)
        else:
            sleeper = asyncio.create_task(clock.sleep(30))
            await clock.sleep(1)
            sleeper.cancel()
        await asyncio.get_running_loop().create_future()  # never done

    watching = asyncio.create_task(observe(clock, 0.5, wake_ups))
    with pytest.raises(StalledError):
        await clock.run(main())
    watching.cancel()
    assert clock.now() == 1.0 and wake_ups == [0.0, 0.5, 1.0]
