"""The in-car MQTT broker Velocitas apps publish and subscribe on (their SDK's pub/sub).

Velocitas's native middleware speaks plain MQTT to ``SDV_MQTT_ADDRESS`` and cannot do TLS or
present credentials, so this broker listens on loopback only and is the apps' own bus — never
the fleet link, which is mutual TLS with the fleet CA (``cloud.mqtt_broker``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from amqtt.broker import Broker

from opensdv.vehicle.apps.errors import AppError

__all__ = ["LOOPBACK", "in_car_mqtt_broker"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@contextlib.asynccontextmanager
async def in_car_mqtt_broker(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve MQTT on ``host:port`` (loopback only; 0: a free port); yields ``mqtt://host:port``."""
    if host not in LOOPBACK:
        raise AppError(f"the apps' MQTT broker listens on loopback only, not {host}: it has no TLS or logins")
    broker = Broker(
        {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
         "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
    )  # fmt: skip
    await broker.start()
    try:
        bound = broker._servers["default"].instance.sockets[0].getsockname()[1]  # amqtt keeps the port there
        yield f"mqtt://{host}:{bound}"
    finally:
        await broker.shutdown()
