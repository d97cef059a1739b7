"""One vehicle's MQTT link: telemetry out of the spool in order, status with a last will, events,
and remote commands in.

The connection is re-opened after any failure with a growing back-off; what was not acknowledged is
still in the spool and goes out first, in sequence order, when the broker answers again. Up to
``window`` messages are in flight at once (QoS 1 keeps their order within the session); a backlog
goes out ``bundle`` consecutive batches to a message.
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
    ) -> None:
        self.url = url
        self.vin = status.vin
        self.status = status
        self.spool = spool
        self.on_command = on_command
        self.window = window
        self.bundle = min(bundle, MAX_BUNDLE)
        self.backoff_s = backoff_s
        self.connected = asyncio.Event()
        self.published = 0
        self.reconnects = 0
        self._queued = asyncio.Event()
        self._status_changed = asyncio.Event()
        self._events: asyncio.Queue[VehicleEvent] = asyncio.Queue()

    def record(self, samples: list[Sample]) -> int:
        """Spool one telemetry batch (it is sent as soon as the link allows); returns its sequence."""
        seq = self.spool.add(lambda n: encode(TelemetryBatch(vin=self.vin, seq=n, samples=samples)))
        self._queued.set()
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
                    self.connected.set()
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._send_telemetry(client))
                        group.create_task(self._send_events(client))
                        group.create_task(self._receive_commands(client))
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
        while True:
            pending = self.spool.oldest(self.window * self.bundle)
            if not pending:
                self._queued.clear()
                await self._queued.wait()
                continue
            payloads = [payload for _seq, payload in pending]
            messages = [_bundled(payloads[i : i + self.bundle]) for i in range(0, len(payloads), self.bundle)]
            await asyncio.gather(*(client.publish(name, message, qos=1) for message in messages))
            self.spool.ack_through(pending[-1][0])
            self.published += len(pending)

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

    async def _receive_commands(self, client: aiomqtt.Client) -> None:
        commands = topic(self.vin, "commands")
        async for message in client.messages:
            if not message.topic.matches(commands):
                continue  # only commands are subscribed to; some brokers hand out retained others too
            where = f"{message.topic} from the cloud"
            try:
                command = decode(Command, bytes(message.payload), where)
            except LinkError as exc:
                log.warning("dropped: %s", exc)
                continue
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
