"""MQTT clients for the link, from a URL: ``mqtt://host:port`` speaks MQTT 5,
``mqtt://host:port?protocol=3.1.1`` MQTT 3.1.1 (the embedded amqtt broker's level). The link's
payloads need nothing MQTT 5 adds, so both work the same.

A ``durable`` client (the cloud's ingest) keeps its session on the broker while it is away — MQTT 5
``clean_start=False`` with a session expiry, MQTT 3.1.1 ``clean_session=False`` — so what vehicles
publish while the cloud restarts waits in the broker's queue for it instead of being dropped.
"""

from __future__ import annotations

from urllib.parse import urlparse

import aiomqtt
from paho.mqtt.client import MQTT_CLEAN_START_FIRST_ONLY
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from opensdv.link.fleet import LinkError

__all__ = ["SESSION_EXPIRY_S", "end_session", "mqtt_client"]

SESSION_EXPIRY_S = 7 * 24 * 3600  # how long a durable subscriber may be away before the broker forgets it


def mqtt_client(
    url: str, identifier: str, will: aiomqtt.Will | None = None, *, durable: bool = False
) -> aiomqtt.Client:
    """A client for ``mqtt://host:port`` (MQTT 5) or ``mqtt://host:port?protocol=3.1.1``."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise LinkError(f"MQTT URL {url!r}: expected mqtt://host:port")
    host, port = parsed.hostname, parsed.port or 1883
    if "protocol=3.1.1" in parsed.query:
        client = aiomqtt.Client(
            host, port, identifier=identifier, will=will, keepalive=10,
            protocol=aiomqtt.ProtocolVersion.V311, clean_session=False,
        )  # fmt: skip
    else:
        properties = None
        if durable:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
        client = aiomqtt.Client(
            host, port, identifier=identifier, will=will, keepalive=10,
            protocol=aiomqtt.ProtocolVersion.V5, clean_start=False if durable else MQTT_CLEAN_START_FIRST_ONLY, properties=properties,
        )  # fmt: skip
    # the link keeps many QoS 1 messages in flight on purpose (bundles, confirmations to a fleet):
    # aiomqtt would log a warning for every publish beyond 10 pending
    client.pending_calls_threshold = 1_000_000
    return client


async def end_session(url: str, identifier: str) -> None:
    """Drop a durable client's session on the broker: a consumer taken out of service should, or
    the broker keeps queueing every message for it until the session expires."""
    async with mqtt_client(url, identifier):  # a clean start replaces the session; expiry 0 ends it
        pass
