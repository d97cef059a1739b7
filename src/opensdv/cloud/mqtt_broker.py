"""The embedded MQTT broker (amqtt, in-process): the demo's and the tests' default. A deployment
points the link at any MQTT 5 broker (Mosquitto, EMQX, HiveMQ) by URL instead.

It is as strict as the Mosquitto configuration ``opensdv fleet mosquitto-config`` writes (ADR
0009): one TLS listener that requires a client certificate from the fleet CA (no plaintext, no
anonymous clients); the certificate's common name is the client's identity; a client id must be
the identity or start with ``<identity>-`` (so nobody takes over or deletes another's session, which
Mosquitto cannot promise); a last will and every publish and subscription is checked against the
link's access rules (``link.identity``), and so is every message delivered, retained ones included
(amqtt alone hands each new client the retained messages of every subscribed topic); a revoked
identity is refused at connect, and one already connected is dropped when ``revoked.json`` changes.

amqtt's shutdown leaves client connections open; this wrapper keeps each connection's writer and
closes what is still open once the broker has shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.errors import MQTTError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler
from amqtt.session import Session
from amqtt.utils import gen_client_id

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.fleet.identities import RevokedSubjects
from opensdv.link.identity import IdentityFiles, identity_of, may_publish, may_subscribe, role_of

__all__ = ["embedded_mqtt_broker"]

log = logging.getLogger("opensdv.mqtt")
for _noisy in ("amqtt", "transitions"):
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)

_peer: contextvars.ContextVar[str | None] = contextvars.ContextVar("peer", default=None)


def _owns(identity: str, client_id: str) -> bool:
    return client_id == identity or client_id.startswith(identity + "-")


class _FleetBroker(Broker):  # type: ignore[misc]
    """amqtt with the fleet's identities and access rules in place of its plugins."""

    def __init__(self, config: dict[str, Any], tls: ssl.SSLContext, revoked: RevokedSubjects) -> None:
        super().__init__(config)
        self._tls = tls
        self.revoked = revoked
        self.writers: dict[asyncio.StreamWriter, str | None] = {}
        self.refused = 0
        self._sending: set[asyncio.Task[Any]] = set()

    def _create_ssl_context(self, listener: Any) -> ssl.SSLContext:
        return self._tls

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        identity = identity_of(writer.get_extra_info("peercert"))
        _peer.set(identity)  # this connection's task (and only it) sees who is connecting
        self.writers[writer] = identity
        try:
            await super().stream_connected(reader, writer, listener_name)
        finally:
            self.writers.pop(writer, None)
            writer.close()

    async def _initialize_client_session(
        self, reader: Any, writer: Any, remote_address: str, remote_port: int
    ) -> tuple[BrokerProtocolHandler, Session]:
        """amqtt's session bookkeeping, after the identity has been checked (amqtt's own would
        delete or take over a session first)."""
        handler, session = await BrokerProtocolHandler.init_from_connect(reader, writer, self.plugins_manager)
        identity = _peer.get()
        refusal = self._refusal(identity, session)
        if refusal is not None:
            self.refused += 1
            log.warning("MQTT connection from %s:%s refused: %s", remote_address, remote_port, refusal)
            handler.attach(session, reader, writer)
            session.parent = 0
            with contextlib.suppress(Exception):  # CONNACK "not authorised"; the client may be gone already
                await handler.mqtt_connack_authorize(False)
                await writer.close()
            raise MQTTError(refusal)
        session.username = identity
        if session.clean_session:
            await self._delete_session(session.client_id)
            session.parent = 0
        elif session.client_id in self._sessions:
            existing, _ = self._sessions[session.client_id]
            for name in (
                "will_flag",
                "will_message",
                "will_topic",
                "will_qos",
                "will_retain",
                "keep_alive",
                "username",
            ):
                setattr(existing, name, getattr(session, name))
            session = existing
            session.parent = 1
        else:
            session.parent = 0
        return handler, session

    def _refusal(self, identity: str | None, session: Session) -> str | None:
        if identity is None:
            return "no client certificate"
        if role_of(identity) is None:
            return f"identity {identity!r} has no role on the link"
        if identity in self.revoked.current():
            return f"identity {identity!r} is revoked"
        if not session.client_id:
            session.client_id = f"{identity}-{gen_client_id()}"
        if not _owns(identity, session.client_id):
            return f"identity {identity!r} may not use client id {session.client_id!r}"
        if session.will_flag and not may_publish(identity, session.will_topic or ""):
            return f"identity {identity!r} may not leave a will on {session.will_topic!r}"
        return None

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Session) -> None:
        """Retained messages for a subscription, only where the session may read them.

        amqtt calls this for every subscription in the broker whenever any client connects (it
        would hand a car every other car's retained status), and it iterates its subscriptions
        while this awaits (another client subscribing then breaks the connection with "dictionary
        changed size"). So: the session's own readable filters only, sent without awaiting here."""
        identity = session.username or ""
        topic_filter, qos = subscription
        if not may_subscribe(identity, topic_filter):
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        for name, retained in list(self._retained_messages.items()):
            if self._matches(name, topic_filter) and may_subscribe(identity, name):
                task = asyncio.create_task(
                    handler.mqtt_publish(retained.topic, retained.data, min(qos, retained.qos or qos), retain=True)
                )
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)

    async def _authenticate(self, session: Session, listener: Any) -> bool:
        return True  # decided in _initialize_client_session, before any session was touched

    async def _topic_filtering(self, session: Session, topic: str, action: Action) -> bool:
        identity = session.username or ""
        if action == Action.PUBLISH:
            allowed = may_publish(identity, topic)
        elif action == Action.SUBSCRIBE:
            allowed = may_subscribe(identity, topic)
        else:  # RECEIVE: only what the identity may read, and nothing once it is revoked
            allowed = may_subscribe(identity, topic) and identity not in self.revoked.current()
        if not allowed:
            self.refused += 1
            log.info("MQTT %s by %s on %s refused", action.value, identity, topic)
        return allowed

    def drop_revoked(self) -> int:
        revoked = self.revoked.current()
        dropped = [w for w, identity in self.writers.items() if identity in revoked]
        for writer in dropped:
            writer.close()
        return len(dropped)


async def _watch_revocations(broker: _FleetBroker, clock: Clock, period_s: float) -> None:
    while True:
        await clock.sleep(period_s)
        if broker.revoked.changed() and (dropped := broker.drop_revoked()):
            log.warning("dropped %d connection(s) of revoked identities", dropped)


@asynccontextmanager
async def embedded_mqtt_broker(
    identity: IdentityFiles,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    crl_file: Path | None = None,
    revoked_file: Path | None = None,
    clock: Clock = SYSTEM_CLOCK,
    recheck_s: float = 1.0,
) -> AsyncIterator[str]:
    """Serve the fleet link (MQTT 3.1.1 over mutual TLS) on ``host:port`` (0: a free port) with the
    broker certificate ``identity``; yields the link URL. ``crl_file`` is checked at every handshake,
    ``revoked_file`` (the CA's ``revoked.json``) at every connect and every ``recheck_s``."""
    broker = _FleetBroker(
        {"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}", "ssl": True}}, "plugins": {}},
        identity.server_context(crl_file),
        RevokedSubjects(revoked_file),
    )
    await broker.start()
    watcher = asyncio.create_task(_watch_revocations(broker, clock, recheck_s))
    try:
        server = broker._servers["default"].instance  # amqtt does not expose the bound port otherwise
        bound = server.sockets[0].getsockname()[1]
        yield f"mqtts://{host}:{bound}?protocol=3.1.1"
    finally:
        watcher.cancel()
        await broker.shutdown()
        for writer in list(broker.writers):
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
