"""The link's one transport seam: a publish/subscribe connection and what opens it.

The uplink and the ingest talk only to ``Connector`` and ``Connection``. ``link.mqtt`` implements
them over real MQTT brokers (aiomqtt); ``link.memory`` implements them in memory, for link logic
tested with a fake clock (an outage of 30 s in milliseconds), as httpx keeps a ``MockTransport``
beside its real transport. Every failure of the transport surfaces as ``LinkDown``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from opensdv.link.fleet import LinkError

__all__ = [
    "Connection",
    "ConnectionStatistics",
    "Connector",
    "LinkDown",
    "Message",
    "Will",
    "topic_matches",
]


class LinkDown(LinkError):
    """The connection could not be opened, or broke: the caller reconnects."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(frozen=True, slots=True)
class Will:
    """What the broker publishes for a client that vanishes without saying goodbye."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True)
class ConnectionStatistics:
    published: int  # messages the broker acknowledged (QoS 1) or took (QoS 0)
    received: int


class Connection(Protocol):
    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Returns once the broker has the message (its PUBACK at QoS 1)."""
        ...

    async def subscribe(self, pattern: str, *, qos: int = 1) -> None: ...

    def messages(self) -> AsyncIterator[Message]:
        """What arrives on the subscriptions, in order, until the connection breaks (``LinkDown``)."""
        ...

    def statistics(self) -> ConnectionStatistics: ...


class Connector(Protocol):
    def connect(
        self, identifier: str, *, will: Will | None = None, durable: bool = False
    ) -> AbstractAsyncContextManager[Connection]:
        """Open a connection as ``identifier``. ``durable``: the broker keeps the session (and
        queues what matches its subscriptions) while the client is away."""
        ...


def topic_matches(pattern: str, topic: str) -> bool:
    """MQTT filter matching: ``+`` one level, ``#`` the rest; ``$share/group/`` is stripped."""
    if pattern.startswith("$share/"):
        pattern = pattern.split("/", 2)[2]
    want, have = pattern.split("/"), topic.split("/")
    for i, level in enumerate(want):
        if level == "#":
            return True
        if i >= len(have) or (level != "+" and level != have[i]):
            return False
    return len(want) == len(have)
