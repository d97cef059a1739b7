"""``VehicleApp``: the life cycle an app developer fills in.

    class ChargeLimitApp(VehicleApp):
        async def on_start(self) -> None:
            await self.vehicle.powertrain.traction_battery.charging.charge_limit.actuate(80)

        @on_change("Vehicle.Speed")
        async def speed_changed(self, values: dict[str, object]) -> None: ...

        @every(5.0)
        async def report(self) -> None: ...

``run()`` connects, calls ``on_start``, starts one task per ``on_change`` handler (each with its own
subscription, which survives broker restarts) and per ``every`` handler, and calls ``on_stop`` when
stopped. A handler that raises is logged and keeps running; only ``stop()`` ends the app.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from opensdv.vehicle.apps.client import VehicleClient
from opensdv.vehicle.apps.vehicle_model import Vehicle

__all__ = ["VehicleApp", "every", "on_change"]

F = TypeVar("F", bound=Callable[..., Awaitable[None]])
log = logging.getLogger("opensdv.apps")


def on_change(*paths: str) -> Callable[[F], F]:
    """Call the method with ``{path: value}`` whenever one of ``paths`` changes."""

    def mark(method: F) -> F:
        method._opensdv_on_change = paths  # type: ignore[attr-defined]
        return method

    return mark


def every(seconds: float) -> Callable[[F], F]:
    """Call the method every ``seconds`` (the first call after one period)."""
    if seconds <= 0:
        raise ValueError(f"every({seconds}): the period must be positive")

    def mark(method: F) -> F:
        method._opensdv_every = seconds  # type: ignore[attr-defined]
        return method

    return mark


class VehicleApp:
    """The base class of a vehicle app: override ``on_start``; read, subscribe and actuate through ``self.client``."""
    def __init__(self, client: VehicleClient, settings: Mapping[str, Any] | None = None) -> None:
        self.client = client
        self.settings: Mapping[str, Any] = settings or {}
        self.vehicle = Vehicle(client)
        self._stop = asyncio.Event()

    async def on_start(self) -> None:
        """Override: runs once after connecting."""

    async def on_stop(self) -> None:
        """Override: runs once when the app is stopped."""

    def stop(self) -> None:
        self._stop.set()

    def _handlers(self, marker: str) -> list[tuple[Any, Callable[..., Awaitable[None]]]]:
        found = []
        for _name, method in inspect.getmembers(self, inspect.iscoroutinefunction):
            value = getattr(method, marker, None)
            if value is not None:
                found.append((value, method))
        return found

    async def _watch(self, paths: tuple[str, ...], handler: Callable[..., Awaitable[None]]) -> None:
        async for update in self.client.subscribe(*paths):
            try:
                await handler(update)
            except Exception:
                log.exception("%s failed on %s", handler.__name__, update)

    async def _tick(self, period: float, handler: Callable[..., Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await handler()
            except Exception:
                log.exception("%s failed", handler.__name__)

    async def run(self) -> None:
        """Run until ``stop()``; the client is closed at the end."""
        tasks: list[asyncio.Task[None]] = []
        try:
            await self.on_start()
            tasks += [
                asyncio.create_task(self._watch(paths, h))
                for paths, h in self._handlers("_opensdv_on_change")
            ]
            tasks += [
                asyncio.create_task(self._tick(period, h)) for period, h in self._handlers("_opensdv_every")
            ]
            stopper = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done - {stopper}:
                task.result()  # a subscription that ended with an error ends the app with it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.on_stop()
            await self.client.close()
