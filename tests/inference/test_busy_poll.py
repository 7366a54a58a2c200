"""Tests of busy polling: the event loop polls without blocking for a window after a touch."""

from __future__ import annotations

import asyncio
import selectors
from typing import Any

import pytest

from inference.busy_poll import MAX_WINDOW_US, BusyPoll


class FakeClock:
    """A nanosecond clock the test moves by hand."""

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


async def spin(iterations: int) -> None:
    for _ in range(iterations):
        await asyncio.sleep(0)


def test_polls_until_the_window_has_passed() -> None:
    clock = FakeClock()
    poll = BusyPoll(100, clock_ns=clock)

    async def scenario() -> None:
        poll.touch()
        assert poll.active
        await spin(5)
        assert poll.active
        assert poll.ticks >= 4
        clock.now_ns = 100_000  # the window is 100 us
        await spin(2)
        assert not poll.active
        ticks = poll.ticks
        await spin(5)
        assert poll.ticks == ticks  # nothing left on the loop

    asyncio.run(scenario())


def test_a_touch_extends_the_window_without_a_second_chain() -> None:
    clock = FakeClock()
    poll = BusyPoll(100, clock_ns=clock)

    async def scenario() -> None:
        poll.touch()
        clock.now_ns = 90_000
        poll.touch()  # a request 90 us later: the window now ends at 190 us
        before = poll.ticks
        await spin(10)
        assert poll.ticks - before <= 11  # one tick per loop iteration, not two
        clock.now_ns = 150_000
        await spin(2)
        assert poll.active
        clock.now_ns = 190_000
        await spin(2)
        assert not poll.active

    asyncio.run(scenario())


def test_zero_window_never_schedules() -> None:
    poll = BusyPoll(0)

    async def scenario() -> None:
        poll.touch()
        assert not poll.active
        await spin(3)
        assert poll.ticks == 0

    asyncio.run(scenario())


def test_a_new_event_loop_gets_its_own_chain() -> None:
    clock = FakeClock()
    poll = BusyPoll(100, clock_ns=clock)

    async def touch_and_leave() -> None:
        poll.touch()  # the loop closes with the tick still pending

    asyncio.run(touch_and_leave())

    async def scenario() -> None:
        ticks = poll.ticks
        poll.touch()
        await spin(3)
        assert poll.ticks > ticks

    asyncio.run(scenario())


class RecordingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The default selector, remembering the timeout of every select call."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float | None] = []

    def select(self, timeout: float | None = None) -> Any:
        self.timeouts.append(timeout)
        return super().select(timeout)


def test_the_loop_polls_with_zero_timeout_while_active_and_blocks_after() -> None:
    selector = RecordingSelector()
    loop = asyncio.SelectorEventLoop(selector)
    poll = BusyPoll(20_000)  # 20 ms of real time

    async def scenario() -> None:
        poll.touch()
        await asyncio.sleep(0.01)
        busy = list(selector.timeouts)
        selector.timeouts.clear()
        await asyncio.sleep(0.05)  # the window ends during this sleep
        assert not poll.active
        selector.timeouts.clear()
        await asyncio.sleep(0.02)
        # While polling, the loop never blocks; after, it sleeps in select until its timer
        # (then one zero-timeout pass resumes this coroutine).
        assert len(busy) > 20
        assert all(timeout == 0 for timeout in busy)
        first = selector.timeouts[0]
        assert first is not None
        assert first > 0.01
        assert len(selector.timeouts) <= 3

    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


@pytest.mark.parametrize("window_us", [-1, MAX_WINDOW_US + 1])
def test_window_out_of_range_names_the_argument(window_us: int) -> None:
    with pytest.raises(ValueError, match=f"window_us must be within 0-{MAX_WINDOW_US}"):
        BusyPoll(window_us)
