"""MQTT ingest: every vehicle's telemetry, status and events into the telemetry store.

A message that breaks the link contract (unknown topic, malformed payload, a VIN in the payload
that is not the topic's) is counted by reason and logged, never allowed to stop ingest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

import aiomqtt

from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import (
    LinkError,
    TelemetryBatch,
    VehicleEvent,
    VehicleStatus,
    decode,
    parse_topic,
    wildcard,
)
from opensdv.link.mqtt import mqtt_client

__all__ = ["Ingest"]

log = logging.getLogger("opensdv.ingest")


_MODELS: dict[str, type[TelemetryBatch] | type[VehicleStatus] | type[VehicleEvent]] = {
    "telemetry": TelemetryBatch,
    "status": VehicleStatus,
    "events": VehicleEvent,
}


class Ingest:
    def __init__(self, url: str, store: TelemetryStore, identifier: str = "opensdv-cloud-ingest") -> None:
        self.url = url
        self.store = store
        self.identifier = identifier
        self.stored = 0
        self.duplicates = 0
        self.dropped: Counter[str] = Counter()
        self.subscribed = asyncio.Event()
        self.received = asyncio.Condition()
        self._pending: list[TelemetryBatch] = []

    async def run(self, backoff_s: float = 0.5, flush_s: float = 0.05, max_batch: int = 500) -> None:
        """Subscribe and ingest until cancelled; batches are written every ``flush_s`` or every
        ``max_batch`` batches, whichever comes first (one DuckDB transaction each)."""
        while True:
            try:
                async with mqtt_client(self.url, self.identifier) as client:
                    for kind in ("telemetry", "status", "events"):
                        await client.subscribe(wildcard(kind), qos=1)
                    self.subscribed.set()
                    flusher = asyncio.create_task(self._flush_every(flush_s))
                    try:
                        async for message in client.messages:
                            self.handle(str(message.topic), bytes(message.payload))
                            if len(self._pending) >= max_batch:
                                await self._flush()
                    finally:
                        flusher.cancel()
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                log.info("ingest link down (%s); retrying", exc)
                await asyncio.sleep(backoff_s)

    def handle(self, name: str, payload: bytes) -> None:
        """Store one message, or count why it was dropped."""
        try:
            vin, kind = parse_topic(name)
            model = _MODELS.get(kind)
            if model is None:
                raise LinkError(f"{name}: vehicles do not publish {kind}")
            message: TelemetryBatch | VehicleStatus | VehicleEvent = decode(model, payload, name)
            if message.vin != vin:
                raise LinkError(f"{name}: payload is for vehicle {message.vin}")
        except LinkError as exc:
            reason = "topic" if "topic" in str(exc) and "is not" in str(exc) else "payload"
            self.dropped[reason] += 1
            log.warning("dropped: %s", exc)
            return
        if isinstance(message, TelemetryBatch):
            self._pending.append(message)
        elif isinstance(message, VehicleStatus):
            self.store.set_status(message)
        elif isinstance(message, VehicleEvent):
            self.store.add_event(message)

    def flush(self) -> None:
        """Write the batches received since the last flush."""
        if self._pending:
            pending, self._pending = self._pending, []
            stored, duplicates = self.store.add_many(pending, time.time())
            self.stored += stored
            self.duplicates += duplicates

    async def _flush(self) -> None:
        self.flush()
        async with self.received:
            self.received.notify_all()

    async def _flush_every(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            await self._flush()

    async def wait_for(self, predicate: object, timeout_s: float = 30.0) -> None:
        """Until ``predicate()`` holds (checked after every message): for tests and the demo."""
        async with asyncio.timeout(timeout_s), self.received:
            await self.received.wait_for(predicate)  # type: ignore[arg-type]
