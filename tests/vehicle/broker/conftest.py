"""A real broker on a real gRPC port, in its own thread and event loop.

Clients under test (``kuksa-client``'s sync and aio ``VSSClient``, raw stubs) run in the test's
thread, exactly as separate processes would talk to the databroker.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from opensdv.model.vss import VssCatalog, load_default_vss
from opensdv.vehicle.broker import (
    ActuationCheck,
    Broker,
    BrokerServer,
    TlsConfig,
    TokenVerifier,
    generate_key_pair,
    write_dev_pki,
)
from tests.background_loop import call_on, start_loop

T = TypeVar("T")


@dataclass
class RunningBroker:
    broker: Broker
    server: BrokerServer
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    keys: dict[str, bytes] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return self.server.target

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the broker's loop (the core is not thread-safe) and return its result."""
        return call_on(self.loop, fn, *args, **kwargs)

    def wait_until(self, predicate: Callable[[Broker], bool], timeout_s: float = 10.0) -> None:
        """Block until ``predicate(broker)`` holds, re-checked on the broker's loop after each change."""
        waiting = self.broker.changed.wait_until(lambda: predicate(self.broker))
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(waiting, timeout_s), self.loop).result()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def start_broker(
    catalog: VssCatalog | None = None,
    *,
    verifier: TokenVerifier | None = None,
    tls: TlsConfig | None = None,
    address: str = "127.0.0.1:0",
    guard: ActuationCheck | None = None,
) -> RunningBroker:
    async def boot() -> tuple[Broker, BrokerServer]:
        broker = Broker(catalog or load_default_vss(), guard=guard)
        server = BrokerServer(broker, address, authenticator=verifier, tls=tls, enable_sdv_v1=True)
        await server.start()
        return broker, server

    (broker, server), loop, thread = start_loop(boot, "broker")
    return RunningBroker(broker, server, loop, thread)


@pytest.fixture
def running() -> Iterator[RunningBroker]:
    handle = start_broker()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[bytes, bytes]:
    return generate_key_pair("RS256")


@pytest.fixture(scope="session")
def ec_keys() -> tuple[bytes, bytes]:
    return generate_key_pair("ES256")


@pytest.fixture
def secured(rsa_keys: tuple[bytes, bytes], ec_keys: tuple[bytes, bytes]) -> Iterator[RunningBroker]:
    """A broker that requires tokens signed by either test key."""
    handle = start_broker(verifier=TokenVerifier([rsa_keys[1], ec_keys[1]]))
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return write_dev_pki(Path(tmp_path_factory.mktemp("pki")))
