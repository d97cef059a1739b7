"""The embedded MQTT broker (amqtt, in-process): the demo's and the tests' default. A deployment
points the link at any MQTT 5 broker (Mosquitto, EMQX, HiveMQ) by URL instead.

amqtt's shutdown leaves client connections open (their sockets are only freed, with a
ResourceWarning, whenever the garbage collector gets to them); this wrapper keeps each connection's
writer and closes what is still open once the broker has shut down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

__all__ = ["embedded_mqtt_broker"]

for _noisy in ("amqtt", "transitions"):
    logging.getLogger(_noisy).setLevel(logging.WARNING)


@asynccontextmanager
async def embedded_mqtt_broker(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve MQTT 3.1.1 on ``host:port`` (0: a free port); yields the link URL for it."""
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    writers: set[asyncio.StreamWriter] = set()
    serve = broker.stream_connected  # bound into asyncio.start_server by start(): wrapped before it

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str) -> None:
        writers.add(writer)
        try:
            await serve(reader, writer, listener_name)
        finally:
            writers.discard(writer)

    broker.stream_connected = tracked
    await broker.start()
    try:
        server = broker._servers["default"].instance  # amqtt does not expose the bound port otherwise
        bound = server.sockets[0].getsockname()[1]
        yield f"mqtt://{host}:{bound}?protocol=3.1.1"
    finally:
        await broker.shutdown()
        for writer in list(writers):
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
