"""Awaitable conditions without polling: an object that changes calls ``notify()``; whoever waits
for a condition on it (``wait_until``) re-checks it after each change. "Confirmed up to", "stored",
"a provider left" are all such conditions. Nothing is allocated while nobody waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

__all__ = ["Notifier"]


class Notifier:
    """Wakes every waiter on each change; each waiter re-checks its own condition."""
    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self) -> None:
        if self._waiters:
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
