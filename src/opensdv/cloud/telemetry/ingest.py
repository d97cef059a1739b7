"""MQTT ingest: every vehicle's telemetry, status, events and campaign states into the telemetry store.

Every ``confirm_s`` the ingest confirms to each vehicle the sequence numbers stored since the last
confirmation (``telemetry-acks``; repeats too, since the car may have missed the first
confirmation), and only then may the car forget them: a broker's PUBACK means the broker has a
batch, not the store. Confirmations go at QoS 0 and are gathered over ``confirm_s``: one lost with a
connection only costs a resend after the car's timeout, and at fleet scale each message to each car
costs CPU on both ends.

A message that breaks the link contract (unknown topic, malformed payload, a VIN in the payload
that is not the topic's) is counted by reason and logged, never allowed to stop ingest. A message
is stored only under the VIN of its topic, which the broker lets only that car's identity publish
to (``link.identity``); the ingest checks the payload against the topic again, and drops whatever
a revoked identity still gets through (a connection opened before the revocation).

The ingest talks to a ``Connector`` and waits on a ``Clock``; ``subscribed`` and ``written`` (a
``Notifier`` after every write) are what a caller awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.telemetry.store import TelemetryStorage
from opensdv.link.campaigns import CampaignStates
from opensdv.link.connection import Connection, Connector, LinkDown
from opensdv.link.fleet import (
    LinkError,
    TelemetryAck,
    TelemetryBatch,
    TopicError,
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
from opensdv.notify import Notifier
from opensdv.storage import StorageError

__all__ = ["Ingest", "IngestStatistics"]

log = logging.getLogger("opensdv.ingest")
DropReason = Literal["topic", "payload", "revoked", "store"]  # store: the database refused the write


@dataclass(frozen=True, slots=True)
class IngestStatistics:
    stored: int  # batches written
    duplicates: int  # batches already stored (QoS 1 repeats, resends)
    dropped: dict[DropReason, int]  # messages refused, by reason
    waiting: int  # messages received, not yet written
    lag_s: float  # in the last write: from the oldest batch's newest sample to its row (0 before any)


async def _in_thread(write: Callable[..., None], *args: Any) -> None:
    await asyncio.to_thread(write, *args)


async def _inline(write: Callable[..., None], *args: Any) -> None:
    write(*args)


class Ingest:
    """Every vehicle's telemetry, status and events from the link into the telemetry store, confirmed back per car."""
    def __init__(
        self,
        connector: Connector,
        store: TelemetryStorage,
        identifier: str = "opensdv-ingest",
        *,
        durable: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        write_in_thread: bool = True,
        revoked: Callable[[], frozenset[str]] = frozenset,
        share_group: str | None = None,
    ) -> None:
        """``durable``: the broker keeps this consumer's session (and queues for it) while it is
        away; one-off consumers (tests, benchmarks) should not leave such sessions behind.
        ``share_group``: subscribe as one of the group's workers (MQTT shared subscriptions,
        ``$share/<group>/...``): the broker hands each message to one worker of the group, so N
        workers with one store share the cars' traffic; each confirms what it stored itself.
        ``write_in_thread=False`` writes on the event loop (deterministic tests on a fake clock)."""
        self.connector = connector
        self.revoked = revoked  # the identities no longer trusted (e.g. RevokedSubjects.current)
        self.clock = clock
        self._offload = _in_thread if write_in_thread else _inline
        self.durable = durable
        self.store = store
        self.identifier = identifier
        self.share_group = share_group
        self.stored = 0
        self.duplicates = 0
        self.lag_s = 0.0
        self.dropped: Counter[DropReason] = Counter()
        self.subscribed = asyncio.Event()
        self.written = Notifier()
        self._pending: list[TelemetryBatch] = []
        self._statuses: list[VehicleStatus] = []
        self._events: list[VehicleEvent] = []
        self._campaign_states: list[CampaignStates] = []
        self._due = asyncio.Event()  # enough is waiting: write before the period is up
        # per vehicle: when the oldest unconfirmed write was, and the sequence numbers written since
        self._stored: dict[str, tuple[float, list[int]]] = {}

    async def run(
        self, backoff_s: float = 0.5, flush_s: float = 0.05, max_batch: int = 500, confirm_s: float = 2.0
    ) -> None:
        """Subscribe and ingest until cancelled. What arrives is written every ``flush_s``, or as
        soon as ``max_batch`` messages wait, in a worker thread (DuckDB releases the GIL), so
        receiving and acknowledging go on while the previous write runs."""
        try:
            while True:
                try:
                    async with self.connector.connect(self.identifier, durable=self.durable) as client:
                        for kind in ("telemetry", "status", "events", "campaign-states"):
                            await client.subscribe(self._filter(wildcard(kind)), qos=1)
                        self.subscribed.set()
                        helpers = [
                            asyncio.create_task(self._flush_every(flush_s)),
                            asyncio.create_task(self._confirm_every(client, confirm_s)),
                        ]
                        try:
                            async for message in client.messages():
                                self.handle(message.topic, message.payload)
                                if len(self._pending) + len(self._statuses) >= max_batch:
                                    self._due.set()
                        finally:
                            for helper in helpers:
                                helper.cancel()
                except LinkDown as exc:
                    self.subscribed.clear()
                    log.info("ingest link down (%s); retrying", exc)
                    await self.clock.sleep(backoff_s)
        finally:
            try:
                self.flush()  # stopped: what was received (and acknowledged) is still written
            except StorageError as exc:
                log.warning("not stored at stop (the cars will send again): %s", exc)

    def _filter(self, pattern: str) -> str:
        return f"$share/{self.share_group}/{pattern}" if self.share_group else pattern

    def handle(self, name: str, payload: bytes) -> None:
        """Take one message for the next write, or count why it was dropped."""
        try:
            vin, kind = parse_topic(name)
            if vin in self.revoked():
                self.dropped["revoked"] += 1
                return
            messages: list[TelemetryBatch] | list[VehicleStatus] | list[VehicleEvent] | list[CampaignStates]
            if kind == "telemetry":
                messages = decode_telemetry(payload, name)
            elif kind == "status":
                messages = [decode(VehicleStatus, payload, name)]
            elif kind == "events":
                messages = [decode(VehicleEvent, payload, name)]
            elif kind == "campaign-states":
                messages = [decode(CampaignStates, payload, name)]
            else:
                raise TopicError(f"{name}: vehicles do not publish {kind}")
            for message in messages:
                if message.vin != vin:
                    raise LinkError(f"{name}: payload is for vehicle {message.vin}")
        except LinkError as exc:
            self.dropped["topic" if isinstance(exc, TopicError) else "payload"] += 1
            log.warning("dropped: %s", exc)
            return
        for message in messages:
            if isinstance(message, TelemetryBatch):
                self._pending.append(message)
            elif isinstance(message, VehicleStatus):
                self._statuses.append(message)
            elif isinstance(message, CampaignStates):
                self._campaign_states.append(message)
            else:
                self._events.append(message)

    def flush(self) -> None:
        """Write now, in this thread, what was received since the last write."""
        self._write(*self._take())

    def _take(
        self,
    ) -> tuple[list[TelemetryBatch], list[VehicleStatus], list[VehicleEvent], list[CampaignStates]]:
        taken = self._pending, self._statuses, self._events, self._campaign_states
        self._pending, self._statuses, self._events, self._campaign_states = [], [], [], []
        return taken

    def _write(
        self, batches: list[TelemetryBatch], statuses: list[VehicleStatus], events: list[VehicleEvent],
        campaign_states: list[CampaignStates],
    ) -> None:  # fmt: skip
        if batches:
            stored, duplicates = self.store.add_many(batches, self.clock.time())
            self.stored += stored
            self.duplicates += duplicates
        if statuses:
            self.store.set_statuses(statuses)
        if events:
            self.store.add_events(events)
        if campaign_states:
            self.store.set_campaign_states(campaign_states)

    async def _flush_every(self, period_s: float) -> None:
        """One write at a time, in arrival order, off the event loop."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with self.clock.timeout(period_s):
                    await self._due.wait()
            self._due.clear()
            taken = self._take()
            if any(taken):
                try:
                    await self._offload(self._write, *taken)
                except StorageError as exc:  # unconfirmed, so the cars send these batches again
                    self.dropped["store"] += sum(len(part) for part in taken)
                    log.warning("not stored (the cars will send again): %s", exc)
                    continue
                newest = [batch.samples[-1].ts for batch in taken[0] if batch.samples]
                if newest:
                    self.lag_s = max(self.clock.time() - min(newest), 0.0)
                for batch in taken[0]:
                    self._stored.setdefault(batch.vin, (self.clock.monotonic(), []))[1].append(batch.seq)
                self.written.notify()

    async def _confirm_every(self, client: Connection, period_s: float) -> None:
        """Each vehicle's confirmation ``period_s`` after its first unconfirmed write: the cars
        send at their own phases, so confirmations spread over time instead of coming in bursts."""
        while True:
            await self.clock.sleep(min(period_s, 0.1))
            due = self.clock.monotonic() - period_s
            try:
                for vin in [vin for vin, (since, _) in self._stored.items() if since <= due]:
                    ack = TelemetryAck(vin=vin, stored=seq_ranges(self._stored.pop(vin)[1]))
                    await client.publish(topic(vin, "telemetry-acks"), encode(ack), qos=0)
            except LinkDown:
                return  # the link is going down; the cars send those batches again and hear then

    def statistics(self) -> IngestStatistics:
        waiting = len(self._pending) + len(self._statuses) + len(self._events) + len(self._campaign_states)
        return IngestStatistics(self.stored, self.duplicates, dict(self.dropped), waiting, self.lag_s)
