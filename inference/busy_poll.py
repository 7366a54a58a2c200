"""Busy polling: keep a worker's event loop polling for a short while after each response.

A worker that waits for the next request in ``epoll_wait`` lets its CPU go idle; on a virtual
machine an idle vCPU halts, and waking it again (an interrupt through the hypervisor) plus the
caches it lost cost tens of microseconds on the next request. Linux offers guest halt-polling
(``cpuidle-haltpoll``) for this, but a container cannot switch it on. :class:`BusyPoll` does the
same in user space: after a response it keeps one callback ready on the event loop, so the loop
polls its sockets with a zero timeout instead of blocking, until ``window_us`` microseconds have
passed without a new request. Every request restarts the window.

The price is CPU time: at most one window per request, on a core that serves nothing else in
the meantime (one worker per core). It shows in ``CPUUtilization``; scale the endpoint on
``InvocationsPerInstance`` (see docs/adr/0007-busy-polling.md). ``window_us=0`` switches it off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

DEFAULT_WINDOW_US = 1_000
MAX_WINDOW_US = 1_000_000


def window_problem(window_us: int) -> str | None:
    """What is wrong with a busy-poll window in microseconds, or None (the caller names it)."""
    if 0 <= window_us <= MAX_WINDOW_US:
        return None
    return f"must be within 0-{MAX_WINDOW_US} (0 switches busy polling off), got {window_us}"


class BusyPoll:
    """Keep the running event loop polling (never blocking) for a window after each touch."""

    def __init__(self, window_us: int, clock_ns: Callable[[], int] = time.perf_counter_ns) -> None:
        problem = window_problem(window_us)
        if problem:
            raise ValueError(f"window_us {problem}")
        self.window_ns = window_us * 1_000
        self._clock_ns = clock_ns
        self._until_ns = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self.ticks = 0

    @property
    def active(self) -> bool:
        """True while a polling callback is scheduled on an event loop."""
        return self._loop is not None

    def touch(self) -> None:
        """Start (or extend) the window; call from a coroutine or callback on the loop."""
        if not self.window_ns:
            return
        self._until_ns = self._clock_ns() + self.window_ns
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            loop.call_soon(self._tick)

    def _tick(self) -> None:
        # A ready callback makes the next loop iteration poll with a zero timeout.
        self.ticks += 1
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            return  # a chain left on a loop that is no longer ours
        if self._clock_ns() < self._until_ns:
            loop.call_soon(self._tick)
        else:
            self._loop = None
