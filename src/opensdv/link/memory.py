"""An MQTT broker in memory, behind the link's ``Connector``: for link logic tested fast and
deterministically (with ``FakeClock``), beside the real brokers the other tests use.

It keeps what the link relies on: topic filters with ``+`` and ``#``; retained messages; last wills
for clients that vanish (``drop``); durable sessions whose subscriptions queue messages while the
client is away; MQTT 5 shared subscriptions (``$share/group/filter``, round-robin in the group).
``stop()`` is a broker crash: every connection breaks with ``LinkDown`` and, unless ``persistent``,
sessions and retained messages are gone; ``start()`` takes connections again.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from opensdv.link.connection import ConnectionStatistics, LinkDown, Message, Will, topic_matches

__all__ = ["MemoryBroker", "MemoryConnection"]

_CLOSED = Message("", b"")  # the queue's end marker: the connection broke


@dataclass
class _Session:
    identifier: str
    durable: bool
    subscriptions: set[str] = field(default_factory=set)
    queue: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    connection: MemoryConnection | None = None


class MemoryConnection:
    """One client's connection to a ``MemoryBroker``."""
    def __init__(self, broker: MemoryBroker, session: _Session, will: Will | None) -> None:
        self._broker = broker
        self._session = session
        self.will = will
        self.open = True
        self._published = 0
        self._received = 0

    def _check(self) -> None:
        if not self.open:
            raise LinkDown(f"{self._session.identifier}: connection closed")

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        self._check()
        await asyncio.sleep(0)  # a real publish yields to the loop too
        self._check()
        self._broker.route(Message(topic, bytes(payload), retain))
        self._published += 1

    async def subscribe(self, pattern: str, *, qos: int = 1) -> None:
        self._check()
        self._session.subscriptions.add(pattern)
        if not pattern.startswith("$share/"):
            for message in self._broker.retained.values():
                if topic_matches(pattern, message.topic):
                    self._session.queue.put_nowait(message)

    async def messages(self) -> AsyncIterator[Message]:
        while True:
            self._check()
            message = await self._session.queue.get()
            if message is _CLOSED:
                self._check()
                continue
            self._received += 1
            yield message

    def statistics(self) -> ConnectionStatistics:
        return ConnectionStatistics(published=self._published, received=self._received)


class MemoryBroker:
    """An in-memory MQTT broker behind the ``Connector`` interface (see the module docstring)."""
    def __init__(self, *, persistent: bool = False) -> None:
        self.persistent = persistent
        self.running = True
        self.retained: dict[str, Message] = {}
        self._sessions: dict[str, _Session] = {}
        self._turns = itertools.count()  # round-robin among a shared group's members

    # -- the Connector interface ----------------------------------------------------------------
    @asynccontextmanager
    async def connect(
        self, identifier: str, *, will: Will | None = None, durable: bool = False
    ) -> AsyncIterator[MemoryConnection]:
        if not self.running:
            raise LinkDown(f"{identifier}: connection refused (broker down)")
        old = self._sessions.get(identifier)
        if old is not None and old.connection is not None:
            self._close(old.connection)  # a client that connects again takes over its session
        session = old if old is not None and durable and old.durable else _Session(identifier, durable)
        self._sessions[identifier] = session
        connection = MemoryConnection(self, session, will)
        session.connection = connection
        await asyncio.sleep(0)
        try:
            yield connection
        finally:
            if connection.open:  # a clean goodbye: no last will
                connection.open = False
                session.connection = None
                if not session.durable and self._sessions.get(identifier) is session:
                    del self._sessions[identifier]

    # -- what a test does to it -----------------------------------------------------------------
    def stop(self) -> None:
        """A crash: every connection breaks; a broker without persistence forgets everything."""
        self.running = False
        for session in list(self._sessions.values()):
            if session.connection is not None:
                self._close(session.connection)
        if not self.persistent:
            self._sessions.clear()
            self.retained.clear()

    def start(self) -> None:
        self.running = True

    def drop(self, identifier: str) -> None:
        """The client's network goes: its connection breaks and its last will is published."""
        session = self._sessions.get(identifier)
        if session is not None and session.connection is not None:
            will = session.connection.will
            self._close(session.connection)
            if will is not None:
                self.route(Message(will.topic, will.payload, will.retain))

    def route(self, message: Message) -> None:
        if message.retain:
            self.retained[message.topic] = message
        groups: dict[str, list[_Session]] = {}
        for session in self._sessions.values():
            for pattern in session.subscriptions:
                if not topic_matches(pattern, message.topic):
                    continue
                if pattern.startswith("$share/"):
                    groups.setdefault(pattern.split("/", 2)[1] + pattern, []).append(session)
                else:
                    session.queue.put_nowait(message)
                    break  # one copy per session, however many of its filters match
        for members in groups.values():
            online = [s for s in members if s.connection is not None] or members
            online[next(self._turns) % len(online)].queue.put_nowait(message)

    def _close(self, connection: MemoryConnection) -> None:
        connection.open = False
        session = connection._session
        session.connection = None
        session.queue.put_nowait(_CLOSED)
        if not session.durable:
            self._sessions.pop(session.identifier, None)
