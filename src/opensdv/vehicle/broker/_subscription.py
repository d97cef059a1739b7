"""A subscriber's bounded buffer: the newest updates win, dropped ones are counted."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Datapoint", "Subscription", "Update"]


@dataclass(frozen=True, slots=True)
class Datapoint:
    """A value and when it was produced (seconds since the epoch)."""

    value: Any
    timestamp: float


Update = Mapping[str, Datapoint | None]


class Subscription:
    """Async iterator of updates (path -> datapoint; ``None`` means no value yet).

    The first item holds the current value of every subscribed path; later items hold what changed.
    When the consumer falls behind by ``buffer_size`` items, the oldest item is dropped and
    ``dropped`` counts it: a slow subscriber never slows the publishers down.
    """

    def __init__(
        self, paths: tuple[str, ...], buffer_size: int, on_close: Callable[[Subscription], None]
    ) -> None:
        self.paths = paths
        self.unknown_paths: tuple[str, ...] = ()
        self.dropped = 0
        self._queue: deque[Update] = deque()
        self._buffer_size = buffer_size
        self._ready = asyncio.Event()
        self._closed = False
        self._on_close = on_close

    def push(self, update: Update) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._buffer_size:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(update)
        self._ready.set()

    def get_nowait(self) -> Update | None:
        """The oldest buffered update, or ``None`` if there is none."""
        if not self._queue:
            return None
        update = self._queue.popleft()
        if not self._queue:
            self._ready.clear()
        return update

    async def wait_update(self) -> Update:
        """Wait for the next update; ``StopAsyncIteration`` once the subscription is closed."""
        while True:
            update = self.get_nowait()
            if update is not None:
                return update
            if self._closed:
                raise StopAsyncIteration
            await self._ready.wait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Update:
        return await self.wait_update()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._ready.set()
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed
