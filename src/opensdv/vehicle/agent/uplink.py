"""One vehicle's MQTT link: telemetry out of the spool in order, status with a last will, events,
and remote commands in.

A telemetry batch leaves the spool only when the cloud confirms it stored it (``telemetry-acks``).
Up to ``window`` messages of ``bundle`` batches each may wait for that confirmation; when none
comes for ``ack_timeout_s`` (the broker restarted without the cloud's subscription, or the cloud
crashed between the broker's PUBACK and its store), the unconfirmed batches go out again, and the
cloud drops the repeats by sequence number. The connection is re-opened after any failure with a
growing back-off; whatever is unconfirmed then goes out first, in sequence order.

The uplink talks to a ``Connector`` (real MQTT, or the in-memory broker in tests) and waits on a
``Clock``; ``connected``, ``disconnected`` and ``wait_confirmed``/``wait_sent`` are what a caller
awaits instead of polling.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.link.campaigns import CampaignStates
from opensdv.link.connection import Connection, Connector, LinkDown, Will
from opensdv.link.fleet import (
    MAX_BUNDLE,
    CampaignTag,
    CommandResult,
    LinkError,
    Sample,
    TelemetryAck,
    TelemetryBatch,
    VehicleEvent,
    VehicleStatus,
    decode,
    encode,
    topic,
)
from opensdv.notify import Notifier
from opensdv.vehicle.agent.spool import LaneLimit, Spool

__all__ = ["Uplink", "UplinkStatistics"]

log = logging.getLogger("opensdv.agent")
CommandHandler = Callable[[bytes], Awaitable[CommandResult]]  # a SignedCommand's bytes -> its result
CampaignsHandler = Callable[[bytes], None]  # a SignedCampaignSet's bytes (the handler reports states)


@dataclass(frozen=True, slots=True)
class UplinkStatistics:
    published: int  # batches the broker acknowledged, repeats included
    confirmed: int  # batches the cloud confirmed stored
    resent: int  # times the unconfirmed batches went out again for want of a confirmation
    reconnects: int
    spooled: int  # batches waiting in the spool


class Uplink:
    """One vehicle's MQTT link: spooled telemetry out, confirmations and commands in (see the module docstring)."""
    def __init__(
        self,
        connector: Connector,
        status: VehicleStatus,
        spool: Spool,
        on_command: CommandHandler | None = None,
        window: int = 32,
        bundle: int = 50,
        backoff_s: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        ack_timeout_s: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.connector = connector
        self.clock = clock
        self.vin = status.vin
        self.status = status
        self.spool = spool
        self.on_command = on_command
        self.window = window
        self.bundle = min(bundle, MAX_BUNDLE)
        self.backoff_s = backoff_s
        self.ack_timeout_s = ack_timeout_s
        self.connected = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.published = 0  # batches the broker acknowledged, repeats included
        self.confirmed = 0  # batches the cloud confirmed stored
        self.resent = 0  # times the unconfirmed batches went out again for want of a confirmation
        self.reconnects = 0
        self._wake = asyncio.Event()  # a new batch, or a confirmation
        self._progress = Notifier()  # sent or confirmed more
        self._sent_seq = -1  # the highest sequence number the broker has acknowledged
        self._in_flight: set[int] = set()  # sent on the current connection, not confirmed yet
        self._heard_at = 0.0  # when the cloud last confirmed, or the link last sent
        self._window_full = False  # the sender waits for confirmations before it may send more
        self._status_changed = asyncio.Event()
        self._events: asyncio.Queue[VehicleEvent] = asyncio.Queue()
        self.on_campaigns: CampaignsHandler | None = None
        self._campaign_states: CampaignStates | None = None
        self._states_changed = asyncio.Event()

    def record(self, samples: list[Sample]) -> int:
        """Spool one telemetry batch (it is sent as soon as the link allows); returns its sequence."""
        seq = self.spool.add(lambda n: encode(TelemetryBatch(vin=self.vin, seq=n, samples=samples)))
        assert seq is not None  # the telemetry's lane has no limit
        self._wake.set()
        return seq

    def record_campaign(
        self, samples: list[Sample], tag: CampaignTag, priority: int, limit: LaneLimit
    ) -> int | None:
        """Spool what a data collection campaign collected in its own lane (``limit`` while
        offline); ``None`` if the limit keeps the older batches instead."""
        seq = self.spool.add(
            lambda n: encode(TelemetryBatch(vin=self.vin, seq=n, samples=samples, campaign=tag)),
            priority=priority, lane=tag.id, limit=limit,
        )  # fmt: skip
        self._wake.set()
        return seq

    def set_software(self, software: dict[str, str]) -> None:
        """New installed versions (after an OTA install): the retained status is published again."""
        if software != self.status.software:
            self.status = self.status.model_copy(update={"software": dict(software), "at": self.clock.time()})
            self._status_changed.set()

    def set_campaign_states(self, states: CampaignStates) -> None:
        """The car's data collection campaigns changed state: published (retained) as soon as it can."""
        self._campaign_states = states
        self._states_changed.set()

    def event(self, kind: str, detail: str = "") -> None:
        self._events.put_nowait(VehicleEvent(vin=self.vin, kind=kind, detail=detail, at=self.clock.time()))

    def statistics(self) -> UplinkStatistics:
        return UplinkStatistics(
            self.published, self.confirmed, self.resent, self.reconnects, len(self.spool)
        )

    async def wait_sent(self, seq: int) -> None:
        """Until the broker has acknowledged every batch up to ``seq`` (at least once)."""
        await self._progress.wait_until(lambda: self._sent_seq >= seq)

    async def wait_confirmed(self, seq: int | None = None) -> None:
        """Until the cloud has confirmed every batch up to ``seq`` (default: all recorded so far)."""
        upto = self.spool.next_seq - 1 if seq is None else seq

        def confirmed() -> bool:
            first = self.spool.first()
            return first is None or first > upto

        await self._progress.wait_until(confirmed)

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        failures = 0
        offline = VehicleStatus(**{**self.status.model_dump(), "online": False})
        will = Will(topic(self.vin, "status"), encode(offline), qos=1, retain=True)
        while True:
            try:
                async with self.connector.connect(self.vin, will=will) as client:
                    failures = 0
                    online = VehicleStatus(
                        **{**self.status.model_dump(), "online": True, "at": self.clock.time()}
                    )
                    await client.publish(topic(self.vin, "status"), encode(online), qos=1, retain=True)
                    await client.subscribe(topic(self.vin, "commands"), qos=1)
                    await client.subscribe(topic(self.vin, "telemetry-acks"), qos=1)
                    await client.subscribe(topic(self.vin, "campaigns"), qos=1)
                    if self._campaign_states is not None:
                        self._states_changed.set()  # the newest states, whether the last connection sent them or not
                    self.disconnected.clear()
                    self.connected.set()
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._send_telemetry(client))
                        group.create_task(self._send_events(client))
                        group.create_task(self._receive(client))
                        group.create_task(self._send_status(client))
                        group.create_task(self._send_campaign_states(client))
            except* LinkDown as errors:
                self.connected.clear()
                self.disconnected.set()
                self.reconnects += 1
                delay = self.backoff_s[min(failures, len(self.backoff_s) - 1)]
                failures += 1
                log.info("link down (%s); retry in %.1f s", errors.exceptions[0], delay)
                await self.clock.sleep(delay)
            finally:
                if self.connected.is_set():  # cancelled while up
                    self.connected.clear()
                    self.disconnected.set()

    async def _send_telemetry(self, client: Connection) -> None:
        name = topic(self.vin, "telemetry")
        budget = self.window * self.bundle
        self._in_flight = set()  # sent on this connection, not confirmed yet
        while True:
            self._wake.clear()
            oldest = self.spool.first()
            if oldest is None:
                await self._wake.wait()
                continue
            room = budget - len(self._in_flight)  # batches that may still go out unconfirmed
            self._window_full = room <= 0
            pending = self.spool.next_batches(room, skip=self._in_flight) if room > 0 else []
            if pending:
                payloads = [payload for _seq, payload in pending]
                messages = [
                    _bundled(payloads[i : i + self.bundle]) for i in range(0, len(payloads), self.bundle)
                ]
                try:
                    async with self.clock.timeout(self.ack_timeout_s):
                        await asyncio.gather(*(client.publish(name, message, qos=1) for message in messages))
                except TimeoutError:  # a PUBACK that never comes: the session is broken, open a new one
                    raise LinkDown(f"no PUBACK within {self.ack_timeout_s} s") from None
                self._in_flight.update(seq for seq, _ in pending)
                self.published += len(pending)
                self._sent_seq = max(self._sent_seq, max(seq for seq, _ in pending))
                self._heard_at = self.clock.monotonic()
                self._progress.notify()
                continue
            silence = self._heard_at + self.ack_timeout_s - self.clock.monotonic()
            try:
                async with self.clock.timeout(max(silence, 0.0)):
                    await self._wake.wait()
            except TimeoutError:
                if self.clock.monotonic() - self._heard_at < self.ack_timeout_s:
                    continue  # a confirmation came while waiting (it wakes the sender only when full)
                log.info(
                    "%s: no confirmation from the cloud for %.0f s; sending again from %d",
                    self.vin,
                    self.ack_timeout_s,
                    oldest,
                )
                self._in_flight.clear()
                self.resent += 1

    def _confirmed(self, ack: TelemetryAck) -> None:
        self.spool.forget(ack.stored)
        self._in_flight = {s for s in self._in_flight if not any(a <= s <= b for a, b in ack.stored)}
        self.confirmed += ack.seqs()
        self._heard_at = self.clock.monotonic()
        self._progress.notify()
        if self._window_full:
            self._wake.set()

    async def _send_status(self, client: Connection) -> None:
        while True:
            await self._status_changed.wait()
            self._status_changed.clear()
            online = self.status.model_copy(update={"online": True})
            await client.publish(topic(self.vin, "status"), encode(online), qos=1, retain=True)

    async def _send_campaign_states(self, client: Connection) -> None:
        while True:
            await self._states_changed.wait()
            self._states_changed.clear()
            if self._campaign_states is not None:
                payload = encode(self._campaign_states)
                await client.publish(topic(self.vin, "campaign-states"), payload, qos=1, retain=True)

    async def _send_events(self, client: Connection) -> None:
        while True:
            event = await self._events.get()
            await client.publish(topic(self.vin, "events"), encode(event), qos=1)

    async def _receive(self, client: Connection) -> None:
        """Confirmations of stored telemetry, commands, and the car's campaign set."""
        commands, acks = topic(self.vin, "commands"), topic(self.vin, "telemetry-acks")
        campaigns = topic(self.vin, "campaigns")
        async for message in client.messages():
            where = f"{message.topic} from the cloud"
            try:
                if message.topic == acks:
                    ack = decode(TelemetryAck, message.payload, where)
                    if ack.vin != self.vin:
                        raise LinkError(f"{where}: confirmation is for vehicle {ack.vin}")
                    self._confirmed(ack)
                elif message.topic == commands:  # some brokers hand out retained others too
                    await self._obey(client, message.payload)
                elif message.topic == campaigns and self.on_campaigns is not None:
                    self.on_campaigns(message.payload)
            except LinkError as exc:
                log.warning("dropped: %s", exc)

    async def _obey(self, client: Connection, payload: bytes) -> None:
        if self.on_command is None:
            log.warning("%s: a command arrived; this vehicle takes no commands", self.vin)
            return
        result = await self.on_command(payload)
        await client.publish(topic(self.vin, "command-results"), encode(result), qos=1)


def _bundled(payloads: list[bytes]) -> bytes:
    """One batch as it is; several as a JSON array (the spool holds each batch's JSON already)."""
    return payloads[0] if len(payloads) == 1 else b"[" + b",".join(payloads) + b"]"
