"""MQTT clients for the link, from a URL: ``mqtt://host:port`` speaks MQTT 5,
``mqtt://host:port?protocol=3.1.1`` MQTT 3.1.1 (the embedded amqtt broker's level). The link's
payloads need nothing MQTT 5 adds, so both work the same.
"""

from __future__ import annotations

from urllib.parse import urlparse

import aiomqtt

from opensdv.link.fleet import LinkError

__all__ = ["mqtt_client"]


def mqtt_client(url: str, identifier: str, will: aiomqtt.Will | None = None) -> aiomqtt.Client:
    """A client for ``mqtt://host:port`` (MQTT 5) or ``mqtt://host:port?protocol=3.1.1``."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise LinkError(f"MQTT URL {url!r}: expected mqtt://host:port")
    protocol = (
        aiomqtt.ProtocolVersion.V311 if "protocol=3.1.1" in parsed.query else aiomqtt.ProtocolVersion.V5
    )
    return aiomqtt.Client(
        parsed.hostname, parsed.port or 1883, identifier=identifier, protocol=protocol, will=will,
        clean_session=False if protocol is aiomqtt.ProtocolVersion.V311 else None, keepalive=10,
    )  # fmt: skip
