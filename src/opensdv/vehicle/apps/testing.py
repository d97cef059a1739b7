"""Run an app against a real broker in the test's own event loop: ``async with app_broker() as b``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from opensdv.model.vss import VssCatalog, load_default_vss
from opensdv.vehicle.broker import Broker, BrokerServer, TokenVerifier
from opensdv.vehicle.safety import ActuationGuard, load_policy

__all__ = ["app_broker"]


@asynccontextmanager
async def app_broker(
    catalog: VssCatalog | None = None, verifier: TokenVerifier | None = None, safety: bool = True
) -> AsyncIterator[BrokerServer]:
    """A broker (with the shipped safety policy unless ``safety=False``) served on a free port."""
    guard = ActuationGuard(load_policy(), time.time) if safety else None
    server = BrokerServer(
        Broker(catalog or load_default_vss(), guard=guard), "127.0.0.1:0", authenticator=verifier
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop(0)
