"""The link over real MQTT brokers (aiomqtt), from a URL: ``mqtts://host:port`` speaks MQTT 5 over
TLS, ``mqtts://host:port?protocol=3.1.1`` MQTT 3.1.1 (the embedded amqtt broker's level). The
link's payloads need nothing MQTT 5 adds, so both work the same.

The link is TLS with a client certificate (``IdentityFiles``) or nothing: a plaintext ``mqtt://``
URL is refused unless the caller says ``allow_plaintext`` (benchmarks comparing the two do).

A ``durable`` client (the cloud's ingest) keeps its session on the broker while it is away — MQTT 5
``clean_start=False`` with a session expiry, MQTT 3.1.1 ``clean_session=False`` — so what vehicles
publish while the cloud restarts waits in the broker's queue for it instead of being dropped.
Every aiomqtt error becomes ``LinkDown`` at this boundary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlparse

import aiomqtt
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from opensdv.link.connection import ConnectionStatistics, LinkDown, Message, Will
from opensdv.link.fleet import LinkError
from opensdv.link.identity import IdentityFiles

__all__ = ["SESSION_EXPIRY_S", "MqttConnection", "MqttConnector", "end_session"]

SESSION_EXPIRY_S = 7 * 24 * 3600  # how long a durable subscriber may be away before the broker forgets it


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except aiomqtt.MqttError as exc:
        raise LinkDown(str(exc)) from exc


class MqttConnection:
    """One open aiomqtt client behind the link's ``Connection`` interface."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self._client = client
        self._published = 0
        self._received = 0

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        with _translated():
            await self._client.publish(topic, payload, qos=qos, retain=retain)
        self._published += 1

    async def subscribe(self, pattern: str, *, qos: int = 1) -> None:
        with _translated():
            granted = await self._client.subscribe(pattern, qos=qos)
        codes = [code if isinstance(code, int) else code.value for code in granted]
        if any(code >= 0x80 for code in codes):  # 0x80: failure (3.1.1); 0x87 not authorised (5)
            raise LinkDown(f"the broker refused the subscription to {pattern} (its access rules)")

    async def messages(self) -> AsyncIterator[Message]:
        with _translated():
            async for message in self._client.messages:
                self._received += 1
                yield Message(str(message.topic), bytes(message.payload), bool(message.retain))

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(published=self._published, received=self._received)


class MqttConnector:
    """Opens ``MqttConnection`` s to the broker at ``url``."""

    def __init__(
        self, url: str, identity: IdentityFiles | None = None, *, keepalive_s: int = 10, allow_plaintext: bool = False,
        connect_timeout_s: float = 10.0,
    ) -> None:  # fmt: skip
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtts", "mqtt") or not parsed.hostname:
            raise LinkError(f"MQTT URL {url!r}: expected mqtts://host:port")
        if parsed.scheme == "mqtt" and not allow_plaintext:
            raise LinkError(f"MQTT URL {url!r}: the fleet link is TLS only (mqtts://host:8883)")
        if parsed.scheme == "mqtts" and identity is None:
            raise LinkError(f"MQTT URL {url!r}: TLS needs this party's identity (opensdv fleet provision)")
        self.url = url
        self.host, self.port = parsed.hostname, parsed.port or (8883 if parsed.scheme == "mqtts" else 1883)
        self.v311 = "protocol=3.1.1" in parsed.query
        self.keepalive_s = keepalive_s
        self.connect_timeout_s = connect_timeout_s
        self.tls = identity.client_context() if parsed.scheme == "mqtts" and identity is not None else None

    def client(self, identifier: str, will: Will | None = None, *, durable: bool = False) -> aiomqtt.Client:
        """The aiomqtt client for this URL (for code that needs aiomqtt itself)."""
        last_will = None if will is None else aiomqtt.Will(will.topic, will.payload, will.qos, will.retain)
        if self.v311:
            client = aiomqtt.Client(
                self.host, self.port, identifier=identifier, will=last_will, keepalive=self.keepalive_s,
                protocol=aiomqtt.ProtocolVersion.V311, clean_session=False, tls_context=self.tls,
                timeout=self.connect_timeout_s,
            )  # fmt: skip
        else:
            properties = None
            if durable:
                properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                properties.SessionExpiryInterval = SESSION_EXPIRY_S
            client = aiomqtt.Client(
                self.host, self.port, identifier=identifier, will=last_will, keepalive=self.keepalive_s,
                protocol=aiomqtt.ProtocolVersion.V5,
                clean_start=False if durable else MQTT_CLEAN_START_FIRST_ONLY, properties=properties,
                tls_context=self.tls, timeout=self.connect_timeout_s,
            )  # fmt: skip
        # the link keeps many QoS 1 messages in flight on purpose (bundles, confirmations to a fleet):
        # aiomqtt would log a warning for every publish beyond 10 pending
        client.pending_calls_threshold = 1_000_000
        return client

    @asynccontextmanager
    async def connect(
        self, identifier: str, *, will: Will | None = None, durable: bool = False
    ) -> AsyncIterator[MqttConnection]:
        with _translated():
            async with self.client(identifier, will, durable=durable) as client:
                yield MqttConnection(client)


async def end_session(connector: MqttConnector, identifier: str) -> None:
    """Drop a durable client's session on the broker: a consumer taken out of service should, or
    the broker keeps queueing every message for it until the session expires."""
    async with connector.connect(identifier):  # a clean start replaces the session
        pass
