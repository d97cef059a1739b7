"""An event loop in a thread of its own, for servers the tests talk to as separate processes would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


def start_loop(boot: Callable[[], Awaitable[T]], name: str) -> tuple[T, asyncio.AbstractEventLoop, threading.Thread]:
    """Run ``boot()`` on a new loop in a new thread and return its result once it has started."""
    loop = asyncio.new_event_loop()
    ready: Future[T] = Future()

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def booting() -> None:
            try:
                ready.set_result(await boot())
            except BaseException as exc:  # handed back to the test thread
                ready.set_exception(exc)

        task = loop.create_task(booting())
        loop.run_forever()
        task.cancel()
        loop.close()

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    return ready.result(timeout=10), loop, thread


def call_on(loop: asyncio.AbstractEventLoop, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args)`` on ``loop`` (what runs there is not thread-safe), its result here."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)

    loop.call_soon_threadsafe(run)
    return future.result(timeout=10)
