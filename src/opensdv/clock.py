"""Time as a parameter: the real clock, and a fake one that tests move by hand.

Everything that waits or stamps time takes a ``Clock``: wall time in seconds since the epoch
(``time()``), a monotonic reading for intervals (``monotonic()``), an async ``sleep`` and a
``timeout`` scope. ``SYSTEM_CLOCK`` is the real one. ``FakeClock`` stands still until a test
advances it, so a 30-s outage or a 30-s confirmation timeout takes milliseconds and runs the same
way every time; it is meant for code whose other waits are in memory too (the link's in-memory
broker, not a socket).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, TypeVar

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]

T = TypeVar("T")


class Clock(Protocol):
    def time(self) -> float:
        """Seconds since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals and deadlines."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """A scope that raises ``TimeoutError`` when it is still open after ``seconds``."""
        ...


class SystemClock:
    """The machine's clocks and asyncio's sleep and timeout."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)


SYSTEM_CLOCK = SystemClock()


class _Timer:
    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False


class FakeClock:
    """A clock that moves only in ``advance`` and ``run``: each sleep or timeout due on the way fires
    in deadline order, and the event loop runs until every task waits again before time moves on."""

    def __init__(self, epoch_s: float = 1_767_225_600.0) -> None:  # 2026-01-01T00:00:00Z
        self._epoch_s = epoch_s
        self._elapsed_s = 0.0
        self._timers: list[tuple[float, int, _Timer]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self._epoch_s + self._elapsed_s

    def monotonic(self) -> float:
        return self._elapsed_s

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        timer = self._at(seconds, wake)
        try:
            await future
        finally:
            timer.cancelled = True

    @asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None, "timeout() outside a task"
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = self._at(max(seconds, 0.0), expire)
        try:
            yield
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:
                raise TimeoutError(f"still waiting after {seconds} s") from None
            raise
        finally:
            timer.cancelled = True

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing what falls due on the way."""
        until = self._elapsed_s + seconds
        await _settle()
        while self._timers and self._timers[0][0] <= until:
            self._fire_next()
            await _settle()
        self._elapsed_s = until
        await _settle()

    async def run(self, awaitable: Awaitable[T], within_s: float) -> T:
        """Await ``awaitable``, jumping from one deadline to the next whenever every task waits;
        ``TimeoutError`` if it has not finished ``within_s`` seconds of this clock's time."""
        task = asyncio.ensure_future(awaitable)
        deadline = self._elapsed_s + within_s
        try:
            while True:
                await _settle()
                if task.done():
                    return task.result()
                if not self._timers or self._timers[0][0] > deadline:
                    raise TimeoutError(f"not done within {within_s} s of fake time")
                self._fire_next()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _at(self, delay_s: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(callback)
        heapq.heappush(self._timers, (self._elapsed_s + delay_s, next(self._order), timer))
        return timer

    def _fire_next(self) -> None:
        due_s, _, timer = heapq.heappop(self._timers)
        self._elapsed_s = max(self._elapsed_s, due_s)
        if not timer.cancelled:
            timer.callback()


async def _settle(rounds: int = 100_000) -> None:
    """Let the event loop run until nothing is ready but this task (every other one waits)."""
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)  # CPython's run queue; without it, a fixed number of rounds
    for _ in range(rounds if ready is not None else 1_000):
        await asyncio.sleep(0)
        if ready is not None and not ready:
            await asyncio.sleep(0)  # one more round: a callback may have just scheduled another
            if not ready:
                return
