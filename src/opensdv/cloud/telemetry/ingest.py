"""MQTT ingest: every vehicle's telemetry, status and events into the telemetry store.

After each write the ingest confirms to every vehicle the sequence numbers now stored
(``telemetry-acks``; repeats too, since the car may have missed the first confirmation), and only
then may the car forget them: a broker's PUBACK means the broker has a batch, not the store.

A message that breaks the link contract (unknown topic, malformed payload, a VIN in the payload
that is not the topic's) is counted by reason and logged, never allowed to stop ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter

import aiomqtt

from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import (
    LinkError,
    TelemetryAck,
    TelemetryBatch,
    VehicleEvent,
    VehicleStatus,
    decode,
    decode_telemetry,
    encode,
    parse_topic,
    seq_ranges,
    topic,
    wildcard,
)
from opensdv.link.mqtt import mqtt_client

__all__ = ["Ingest"]

log = logging.getLogger("opensdv.ingest")


class Ingest:
    def __init__(
        self,
        url: str,
        store: TelemetryStore,
        identifier: str = "opensdv-cloud-ingest",
        *,
        durable: bool = True,
    ) -> None:
        """``durable``: the broker keeps this consumer's session (and queues for it) while it is
        away; one-off consumers (tests, benchmarks) should not leave such sessions behind."""
        self.url = url
        self.durable = durable
        self.store = store
        self.identifier = identifier
        self.stored = 0
        self.duplicates = 0
        self.unconfirmed = 0  # confirmations that could not be sent (the car sends those batches again)
        self.dropped: Counter[str] = Counter()
        self.subscribed = asyncio.Event()
        self.received = asyncio.Condition()
        self._pending: list[TelemetryBatch] = []
        self._statuses: list[VehicleStatus] = []
        self._events: list[VehicleEvent] = []
        self._due = asyncio.Event()  # enough is waiting: write before the period is up

    async def run(self, backoff_s: float = 0.5, flush_s: float = 0.05, max_batch: int = 500) -> None:
        """Subscribe and ingest until cancelled. What arrives is written every ``flush_s``, or as
        soon as ``max_batch`` messages wait, in a worker thread (DuckDB releases the GIL), so
        receiving and acknowledging go on while the previous write runs."""
        try:
            while True:
                try:
                    async with mqtt_client(self.url, self.identifier, durable=self.durable) as client:
                        for kind in ("telemetry", "status", "events"):
                            await client.subscribe(wildcard(kind), qos=1)
                        self.subscribed.set()
                        flusher = asyncio.create_task(self._flush_every(client, flush_s))
                        try:
                            async for message in client.messages:
                                self.handle(str(message.topic), bytes(message.payload))
                                if len(self._pending) + len(self._statuses) >= max_batch:
                                    self._due.set()
                        finally:
                            flusher.cancel()
                except aiomqtt.MqttError as exc:
                    self.subscribed.clear()
                    log.info("ingest link down (%s); retrying", exc)
                    await asyncio.sleep(backoff_s)
        finally:
            self.flush()  # stopped: what was received (and acknowledged) is still written

    def handle(self, name: str, payload: bytes) -> None:
        """Take one message for the next write, or count why it was dropped."""
        try:
            vin, kind = parse_topic(name)
            messages: list[TelemetryBatch] | list[VehicleStatus] | list[VehicleEvent]
            if kind == "telemetry":
                messages = decode_telemetry(payload, name)
            elif kind == "status":
                messages = [decode(VehicleStatus, payload, name)]
            elif kind == "events":
                messages = [decode(VehicleEvent, payload, name)]
            else:
                raise LinkError(f"{name}: vehicles do not publish {kind}")
            for message in messages:
                if message.vin != vin:
                    raise LinkError(f"{name}: payload is for vehicle {message.vin}")
        except LinkError as exc:
            reason = "topic" if "topic" in str(exc) and "is not" in str(exc) else "payload"
            self.dropped[reason] += 1
            log.warning("dropped: %s", exc)
            return
        for message in messages:
            if isinstance(message, TelemetryBatch):
                self._pending.append(message)
            elif isinstance(message, VehicleStatus):
                self._statuses.append(message)
            else:
                self._events.append(message)

    def flush(self) -> None:
        """Write now, in this thread, what was received since the last write."""
        self._write(*self._take())

    def _take(self) -> tuple[list[TelemetryBatch], list[VehicleStatus], list[VehicleEvent]]:
        taken = self._pending, self._statuses, self._events
        self._pending, self._statuses, self._events = [], [], []
        return taken

    def _write(
        self, batches: list[TelemetryBatch], statuses: list[VehicleStatus], events: list[VehicleEvent]
    ) -> None:
        if batches:
            stored, duplicates = self.store.add_many(batches, time.time())
            self.stored += stored
            self.duplicates += duplicates
        if statuses:
            self.store.set_statuses(statuses)
        if events:
            self.store.add_events(events)

    async def _flush_every(self, client: aiomqtt.Client, period_s: float) -> None:
        """One write at a time, in arrival order, off the event loop; then the confirmations."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), period_s)
            self._due.clear()
            taken = self._take()
            if any(taken):
                await asyncio.to_thread(self._write, *taken)
                await self._confirm(client, taken[0])
            async with self.received:
                self.received.notify_all()

    async def _confirm(self, client: aiomqtt.Client, batches: list[TelemetryBatch]) -> None:
        by_vin: dict[str, list[int]] = {}
        for batch in batches:
            by_vin.setdefault(batch.vin, []).append(batch.seq)
        acks = [TelemetryAck(vin=vin, stored=seq_ranges(seqs)) for vin, seqs in by_vin.items()]
        sent = await asyncio.gather(
            *(client.publish(topic(ack.vin, "telemetry-acks"), encode(ack), qos=1) for ack in acks),
            return_exceptions=True,
        )
        failed = [error for error in sent if isinstance(error, BaseException)]
        if failed:  # the link is going down: the cars send these batches again and hear then
            self.unconfirmed += len(failed)
            log.info("%d confirmations not sent (%s)", len(failed), failed[0])

    async def wait_for(self, predicate: object, timeout_s: float = 30.0) -> None:
        """Until ``predicate()`` holds (checked after every message): for tests and the demo."""
        async with asyncio.timeout(timeout_s), self.received:
            await self.received.wait_for(predicate)  # type: ignore[arg-type]
