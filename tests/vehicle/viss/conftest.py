"""A broker with a VISS v3 server on a real port, in its own thread and event loop; clients under
test (the ``websockets`` sync client, httpx, Chromium) talk to it as other processes would."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from opensdv.model.vss import load_default_vss
from opensdv.vehicle.broker import ActuationCheck, AllowAll, Broker, TokenVerifier
from opensdv.vehicle.viss import VissServer, VissService
from tests.background_loop import call_on, start_loop

T = TypeVar("T")


@dataclass
class RunningViss:
    broker: Broker
    server: VissServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def http(self) -> str:
        return self.server.url.replace("ws", "http", 1)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` on the broker's loop (the core is not thread-safe)."""
        return call_on(self.loop, fn, *args, **kwargs)

    def wait_until(self, predicate: Callable[[Broker], bool], timeout_s: float = 10.0) -> None:
        waiting = self.broker.changed.wait_until(lambda: predicate(self.broker))
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(waiting, timeout_s), self.loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def start_viss(
    *,
    verifier: TokenVerifier | None = None,
    guard: ActuationCheck | None = None,
    tls: tuple[Path, Path] | None = None,
    host: str = "127.0.0.1",
) -> RunningViss:
    async def boot() -> tuple[Broker, VissServer]:
        broker = Broker(load_default_vss(), guard=guard)
        service = VissService(broker, verifier or AllowAll(), requires_token=verifier is not None)
        cert, key = tls if tls else (None, None)
        server = VissServer(service, f"{host}:0", tls_cert=cert, tls_key=key)
        await server.start()
        return broker, server

    (broker, server), loop, thread = start_loop(boot, "viss")
    return RunningViss(broker, server, loop, thread)


@pytest.fixture
def viss() -> Iterator[RunningViss]:
    handle = start_viss()
    yield handle
    handle.stop()
