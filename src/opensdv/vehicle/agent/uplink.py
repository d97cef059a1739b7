"""One vehicle's MQTT link: telemetry out of the spool in order, status with a last will, events,
and remote commands in.

A telemetry batch leaves the spool only when the cloud confirms it stored it (``telemetry-acks``).
Up to ``window`` messages of ``bundle`` batches each may wait for that confirmation; when none
comes for ``ack_timeout_s`` (the broker restarted without the cloud's subscription, or the cloud
crashed between the broker's PUBACK and its store), the unconfirmed batches go out again, and the
cloud drops the repeats by sequence number. The connection is re-opened after any failure with a
growing back-off; whatever is unconfirmed then goes out first, in sequence order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiomqtt

from opensdv.link.fleet import (
    MAX_BUNDLE,
    Command,
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
from opensdv.link.mqtt import mqtt_client
from opensdv.vehicle.agent.spool import Spool

__all__ = ["Uplink"]

log = logging.getLogger("opensdv.agent")
CommandHandler = Callable[[Command], Awaitable[CommandResult]]


class Uplink:
    def __init__(
        self,
        url: str,
        status: VehicleStatus,
        spool: Spool,
        on_command: CommandHandler | None = None,
        window: int = 32,
        bundle: int = 50,
        backoff_s: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
        ack_timeout_s: float = 30.0,
    ) -> None:
        self.url = url
        self.vin = status.vin
        self.status = status
        self.spool = spool
        self.on_command = on_command
        self.window = window
        self.bundle = min(bundle, MAX_BUNDLE)
        self.backoff_s = backoff_s
        self.ack_timeout_s = ack_timeout_s
        self.connected = asyncio.Event()
        self.published = 0  # batches the broker acknowledged, repeats included
        self.confirmed = 0  # batches the cloud confirmed stored
        self.resent = 0  # times the unconfirmed batches went out again for want of a confirmation
        self.reconnects = 0
        self._wake = asyncio.Event()  # a new batch, or a confirmation
        self._heard_at = 0.0  # when the cloud last confirmed, or the link last sent
        self._window_full = False  # the sender waits for confirmations before it may send more
        self._status_changed = asyncio.Event()
        self._events: asyncio.Queue[VehicleEvent] = asyncio.Queue()

    def record(self, samples: list[Sample]) -> int:
        """Spool one telemetry batch (it is sent as soon as the link allows); returns its sequence."""
        seq = self.spool.add(lambda n: encode(TelemetryBatch(vin=self.vin, seq=n, samples=samples)))
        self._wake.set()
        return seq

    def set_software(self, software: dict[str, str]) -> None:
        """New installed versions (after an OTA install): the retained status is published again."""
        if software != self.status.software:
            self.status = self.status.model_copy(update={"software": dict(software), "at": time.time()})
            self._status_changed.set()

    def event(self, kind: str, detail: str = "") -> None:
        self._events.put_nowait(VehicleEvent(vin=self.vin, kind=kind, detail=detail, at=time.time()))

    async def run(self) -> None:
        """Keep the link up until cancelled."""
        failures = 0
        offline = VehicleStatus(**{**self.status.model_dump(), "online": False})
        will = aiomqtt.Will(topic(self.vin, "status"), encode(offline), qos=1, retain=True)
        while True:
            try:
                async with mqtt_client(self.url, f"opensdv-vehicle-{self.vin}", will) as client:
                    failures = 0
                    online = VehicleStatus(**{**self.status.model_dump(), "online": True, "at": time.time()})
                    await client.publish(topic(self.vin, "status"), encode(online), qos=1, retain=True)
                    await client.subscribe(topic(self.vin, "commands"), qos=1)
                    await client.subscribe(topic(self.vin, "telemetry-acks"), qos=1)
                    self.connected.set()
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._send_telemetry(client))
                        group.create_task(self._send_events(client))
                        group.create_task(self._receive(client))
                        group.create_task(self._send_status(client))
            except* aiomqtt.MqttError as errors:
                self.connected.clear()
                self.reconnects += 1
                delay = self.backoff_s[min(failures, len(self.backoff_s) - 1)]
                failures += 1
                log.info("link to %s down (%s); retry in %.1f s", self.url, errors.exceptions[0], delay)
                await asyncio.sleep(delay)

    async def _send_telemetry(self, client: aiomqtt.Client) -> None:
        name = topic(self.vin, "telemetry")
        budget = self.window * self.bundle
        sent = -1  # the highest sequence number sent on this connection
        while True:
            self._wake.clear()
            oldest = self.spool.first()
            if oldest is None:
                await self._wake.wait()
                continue
            room = budget - max(0, sent - oldest + 1)  # batches that may still go out unconfirmed
            self._window_full = room <= 0
            pending = self.spool.oldest(room, after=sent) if room > 0 else []
            if pending:
                payloads = [payload for _seq, payload in pending]
                messages = [
                    _bundled(payloads[i : i + self.bundle]) for i in range(0, len(payloads), self.bundle)
                ]
                try:
                    async with asyncio.timeout(self.ack_timeout_s):
                        await asyncio.gather(*(client.publish(name, message, qos=1) for message in messages))
                except TimeoutError:  # a PUBACK that never comes: the session is broken, open a new one
                    raise aiomqtt.MqttError(f"no PUBACK within {self.ack_timeout_s} s") from None
                sent = pending[-1][0]
                self.published += len(pending)
                self._heard_at = time.monotonic()
                continue
            silence = self._heard_at + self.ack_timeout_s - time.monotonic()
            try:
                await asyncio.wait_for(self._wake.wait(), max(silence, 0.0))
            except TimeoutError:
                if time.monotonic() - self._heard_at < self.ack_timeout_s:
                    continue  # a confirmation came while waiting (it wakes the sender only when full)
                log.info(
                    "%s: no confirmation from the cloud for %.0f s; sending again from %d",
                    self.vin,
                    self.ack_timeout_s,
                    oldest,
                )
                sent = oldest - 1
                self.resent += 1

    def _confirmed(self, ack: TelemetryAck) -> None:
        self.spool.forget(ack.stored)
        self.confirmed += ack.seqs()
        self._heard_at = time.monotonic()
        if self._window_full:
            self._wake.set()

    async def _send_status(self, client: aiomqtt.Client) -> None:
        while True:
            await self._status_changed.wait()
            self._status_changed.clear()
            online = self.status.model_copy(update={"online": True})
            await client.publish(topic(self.vin, "status"), encode(online), qos=1, retain=True)

    async def _send_events(self, client: aiomqtt.Client) -> None:
        while True:
            event = await self._events.get()
            await client.publish(topic(self.vin, "events"), encode(event), qos=1)

    async def _receive(self, client: aiomqtt.Client) -> None:
        """Confirmations of stored telemetry, and commands."""
        commands, acks = topic(self.vin, "commands"), topic(self.vin, "telemetry-acks")
        async for message in client.messages:
            where = f"{message.topic} from the cloud"
            try:
                if message.topic.matches(acks):
                    ack = decode(TelemetryAck, bytes(message.payload), where)
                    if ack.vin != self.vin:
                        raise LinkError(f"{where}: confirmation is for vehicle {ack.vin}")
                    self._confirmed(ack)
                elif message.topic.matches(commands):  # some brokers hand out retained others too
                    await self._obey(client, decode(Command, bytes(message.payload), where))
            except LinkError as exc:
                log.warning("dropped: %s", exc)

    async def _obey(self, client: aiomqtt.Client, command: Command) -> None:
        if self.on_command is None:
            result = CommandResult(
                id=command.id, vin=self.vin, accepted=False, reason="this vehicle takes no commands"
            )
        else:
            result = await self.on_command(command)
        await client.publish(topic(self.vin, "command-results"), encode(result), qos=1)


def _bundled(payloads: list[bytes]) -> bytes:
    """One batch as it is; several as a JSON array (the spool holds each batch's JSON already)."""
    return payloads[0] if len(payloads) == 1 else b"[" + b",".join(payloads) + b"]"
