"""Attacks on the fleet link, on the embedded broker and on Mosquitto as `opensdv fleet
mosquitto-config` configures it: who cannot connect, and what a connected party cannot read or
publish. "Not delivered" is proven without waiting: the attacker's message is acknowledged by the
broker (PUBACK) before a legitimate one is sent on the same topic, so the victim, who reads in
order, sees the legitimate one first only if the attacker's was dropped."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import ssl
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.fleet.mosquitto import write_mosquitto_config
from opensdv.link.connection import LinkDown, Message
from opensdv.link.fleet import parse_topic, topic
from opensdv.link.identity import SERVICE_RULES, IdentityFiles, may_publish, may_subscribe
from opensdv.link.mqtt import MqttConnector
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import Fleet, run_mosquitto

A, B = "JN1NSSAN0DD000101", "JHMHNDAE0ED000102"
REVOKED = "JA3MTSUB0SH000103"


@pytest.fixture(params=["embedded", "mosquitto"])
def broker(request: pytest.FixtureRequest, fleet: Fleet, tmp_path: Path) -> AbstractAsyncContextManager[str]:
    fleet.identity(REVOKED)  # issued, then revoked before the broker starts (Mosquitto reads the CRL then)
    if REVOKED not in {e.subject for e in fleet.ca.issued() if e.revoked_at}:
        fleet.ca.revoke(REVOKED)
    if request.param == "mosquitto":
        need_mosquitto()
        return fleet.mosquitto(free_port(), tmp_path)
    return fleet.embedded(recheck_s=0)


async def _first(messages: AsyncIterator[Message], topic_name: str) -> Message:
    async with asyncio.timeout(10):
        async for message in messages:
            if message.topic == topic_name:
                return message
    raise AssertionError("the connection ended")


async def _refused(connector: MqttConnector, identifier: str) -> None:
    with pytest.raises(LinkDown):
        async with connector.connect(identifier) as connection:
            await connection.publish(topic(A, "telemetry"), b"x")


async def _drain_until_dropped(messages: AsyncIterator[Message]) -> None:
    async with asyncio.timeout(10):
        async for _ in messages:
            pass


def _host_port(url: str) -> tuple[str, int]:
    rest = url.split("://", 1)[1].split("?")[0]
    host, port = rest.rsplit(":", 1)
    return host, int(port)


async def test_anonymous_plaintext_and_foreign_clients_are_refused(
    broker: AbstractAsyncContextManager[str], fleet: Fleet, tmp_path: Path
) -> None:
    async with broker as url:
        host, port = _host_port(url)
        v311 = aiomqtt.ProtocolVersion.V311 if "3.1.1" in url else aiomqtt.ProtocolVersion.V5
        # plaintext MQTT on the TLS port, no credentials
        await _refused(
            MqttConnector(f"mqtt://{host}:{port}", allow_plaintext=True, connect_timeout_s=1), "anyone"
        )
        # TLS, trusting the fleet CA, but no client certificate
        anonymous = ssl.create_default_context(cafile=str(fleet.broker_identity.ca_file))
        with pytest.raises(aiomqtt.MqttError):
            async with aiomqtt.Client(
                host, port, identifier="anyone", tls_context=anonymous, protocol=v311, timeout=3
            ) as c:
                await c.publish(topic(A, "telemetry"), b"x", qos=1)
        # a certificate from another CA, with a real VIN as its subject
        rogue = FleetCa.init(tmp_path / "rogue")
        stolen_name = rogue.provision(A, tmp_path / "rogue-car")
        mixed = IdentityFiles(fleet.broker_identity.ca_file, stolen_name.cert_file, stolen_name.key_file)
        await _refused(MqttConnector(url, mixed, connect_timeout_s=1), A)
        # a revoked car
        await _refused(fleet.connector(url, REVOKED, connect_timeout_s=1), REVOKED)


async def test_car_a_can_neither_read_b_nor_publish_as_b(
    broker: AbstractAsyncContextManager[str], fleet: Fleet
) -> None:
    async with broker as url:
        ingest, car_a, car_b, api = (fleet.connector(url, who) for who in ("ingest", A, B, "api"))
        async with (
            ingest.connect("opensdv-ingest-security") as cloud,
            car_a.connect(A) as a,
            car_b.connect(B) as b,
            api.connect("opensdv-api-security") as commander,
        ):
            await cloud.subscribe(topic(B, "telemetry"))
            await b.subscribe(topic(B, "commands"))
            await a.subscribe(topic(A, "commands"))
            with contextlib.suppress(
                LinkDown
            ):  # refused at SUBACK (embedded); granted, never delivered (Mosquitto)
                await a.subscribe(topic(B, "commands"))
            # A forges B's telemetry; B's own comes after it
            await a.publish(topic(B, "telemetry"), b"forged by A")
            await b.publish(topic(B, "telemetry"), b"from B")
            assert (await _first(cloud.messages(), topic(B, "telemetry"))).payload == b"from B"
            # A, and the ingest (a valid service certificate), cannot put commands on B's topic
            await a.publish(topic(B, "commands"), b"forged by A")
            await cloud.publish(topic(B, "commands"), b"forged by the ingest")
            await commander.publish(topic(B, "commands"), b"from the API")
            assert (await _first(b.messages(), topic(B, "commands"))).payload == b"from the API"
            # A did not hear B's command: the first command A hears is the one sent to it after
            await commander.publish(topic(A, "commands"), b"for A")
            first = await anext(aiter(a.messages()))
            assert (first.topic, first.payload) == (topic(A, "commands"), b"for A")


async def test_a_car_gets_no_other_cars_retained_status(
    broker: AbstractAsyncContextManager[str], fleet: Fleet
) -> None:
    """amqtt alone would hand every connecting client the retained messages of every topic anyone
    subscribes to (B's status, because the ingest reads all statuses)."""
    async with broker as url, fleet.connector(url, "ingest").connect("opensdv-ingest-retained") as cloud:
        await cloud.subscribe("opensdv/v1/vehicles/+/status")
        async with fleet.connector(url, B).connect(B) as b:
            await b.publish(topic(B, "status"), b'{"secret": "where B is"}', retain=True)
        assert (await _first(cloud.messages(), topic(B, "status"))).retain is False
        async with (
            fleet.connector(url, A).connect(A) as a,
            fleet.connector(url, "api").connect("opensdv-api-r") as api,
        ):
            await a.subscribe(topic(A, "commands"))
            await api.publish(topic(A, "commands"), b"for A")
            first = await anext(aiter(a.messages()))
            assert (first.topic, first.payload) == (topic(A, "commands"), b"for A")


async def test_nobody_takes_over_another_clients_session_on_the_embedded_broker(fleet: Fleet) -> None:
    """Mosquitto cannot tie a client id to an identity; the embedded broker does (ADR 0009)."""
    async with fleet.embedded() as url:
        await _refused(fleet.connector(url, A, connect_timeout_s=1), B)
        await _refused(fleet.connector(url, A, connect_timeout_s=1), "opensdv-ingest")


async def test_a_car_may_not_leave_a_will_on_another_cars_status(fleet: Fleet) -> None:
    from opensdv.link.connection import Will

    async with fleet.embedded() as url:
        with pytest.raises(LinkDown):
            async with fleet.connector(url, A, connect_timeout_s=1).connect(
                A, will=Will(topic(B, "status"), b"{}")
            ):
                pass


async def test_mosquitto_refuses_a_car_revoked_after_it_started_once_reloaded(fleet: Fleet, tmp_path: Path) -> None:
    """`opensdv fleet revoke` writes the CRL; SIGHUP (systemctl reload) makes Mosquitto read it."""
    need_mosquitto()
    vin = "JN1NSSAN0DD000105"
    fleet.identity(vin)
    port = free_port()
    files = write_mosquitto_config(
        tmp_path, fleet.broker_identity, fleet.ca.crl_file, port=port, bind="127.0.0.1",
        run_as=getpass.getuser() if os.geteuid() == 0 else None,
    )  # fmt: skip
    url = f"mqtts://127.0.0.1:{port}"
    async with run_mosquitto(files.config) as mosquitto:
        async with fleet.connector(url, vin).connect(vin) as car:
            await car.publish(topic(vin, "telemetry"), b"still trusted")
        fleet.ca.revoke(vin)
        mosquitto.send_signal(signal.SIGHUP)
        await _refused_eventually(fleet.connector(url, vin, connect_timeout_s=1), vin)


async def _refused_eventually(connector: MqttConnector, identifier: str) -> None:
    """Refused within a few attempts: the reload runs in Mosquitto's next loop turn."""
    for _ in range(20):
        try:
            async with connector.connect(identifier):
                pass
        except LinkDown:
            return
    raise AssertionError(f"{identifier} still connects")


async def test_a_connected_car_is_dropped_when_it_is_revoked(fleet: Fleet, tmp_path: Path) -> None:
    vin = "JN1NSSAN0DD000104"
    fleet.identity(vin)
    async with fleet.embedded(recheck_s=0.05) as url, fleet.connector(url, vin).connect(vin) as car:
        await car.subscribe(topic(vin, "commands"))
        fleet.ca.revoke(vin)
        with pytest.raises(LinkDown):
            await _drain_until_dropped(car.messages())


@given(identity=st.sampled_from([A, B, *(f"opensdv-{r}" for r in SERVICE_RULES), "opensdv-broker", "mallory"]),
       levels=st.lists(st.sampled_from(["opensdv", "v1", "vehicles", A, B, "+", "#", "telemetry", "commands",
                                        "telemetry-acks", "status", "$share", "g", ""]), min_size=1, max_size=7))  # fmt: skip
def test_fuzz_the_access_rules_never_let_a_car_beyond_its_own_topics(
    identity: str, levels: list[str]
) -> None:
    name = "/".join(levels)
    if may_publish(identity, name):
        vin, kind = parse_topic(name)  # only well-formed link topics are ever writable
        if identity in (A, B):
            assert vin == identity and kind in ("telemetry", "status", "events", "command-results")
        else:
            assert (identity, kind) in (("opensdv-ingest", "telemetry-acks"), ("opensdv-api", "commands"))
    if may_subscribe(identity, name) and identity in (A, B):
        assert "#" not in name and "+" not in name.removeprefix("$share/")
        vin, kind = parse_topic(name.split("/", 2)[2] if name.startswith("$share/") else name)
        assert vin == identity and kind in ("commands", "telemetry-acks")
    if identity in ("mallory", "opensdv-broker", "opensdv-ota", "opensdv-energy"):
        assert not may_publish(identity, name) and not may_subscribe(identity, name)


def test_the_link_refuses_plaintext_and_names_bad_identity_files(tmp_path: Path) -> None:
    from opensdv.link.fleet import LinkError

    with pytest.raises(LinkError, match="TLS only"):
        MqttConnector("mqtt://broker.example.com:1883")
    with pytest.raises(LinkError, match="needs this party's identity"):
        MqttConnector("mqtts://broker.example.com:8883")
    missing = IdentityFiles.under(tmp_path, "vehicle")
    with pytest.raises(LinkError, match="vehicle.pem.*missing"):
        missing.client_context()
    for path in (missing.ca_file, missing.cert_file, missing.key_file):
        path.write_text("not PEM")
    with pytest.raises(LinkError, match="ca.pem"):
        missing.client_context()
