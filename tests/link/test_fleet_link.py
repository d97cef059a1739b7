"""The vehicle<->cloud link over real MQTT brokers (embedded amqtt and Mosquitto, both mutual TLS
with the fleet's identities): telemetry in order and exactly once, store-and-forward across a broker
outage, status with last will, signed commands, and bad messages counted, never fatal."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import (
    MAX_BUNDLE,
    Command,
    CommandResult,
    Sample,
    TelemetryBatch,
    VehicleStatus,
    encode,
    topic,
)
from opensdv.link.memory import MemoryBroker
from opensdv.link.mqtt import end_session
from opensdv.link.signing import CommandVerifier
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import Fleet

VIN = "JN1NSSAN0DD000001"
OUTAGE_BATCHES = 5


@pytest.fixture(params=["embedded", "mosquitto"])
def broker_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "mosquitto":
        need_mosquitto()
    return str(request.param)


def _broker(fleet: Fleet, kind: str, port: int, directory: Path) -> AbstractAsyncContextManager[str]:
    return fleet.embedded(port) if kind == "embedded" else fleet.mosquitto(port, directory)


def _status(vin: str = VIN) -> VehicleStatus:
    return VehicleStatus(vin=vin, online=True, at=time.time(), brand="Nissan", model="Leaf 40 kWh")


async def _running(coro: object) -> asyncio.Task[None]:
    return asyncio.create_task(coro)  # type: ignore[arg-type]


async def test_telemetry_arrives_once_in_order_with_status_and_commands(
    fleet: Fleet, broker_kind: str, tmp_path: Path
) -> None:
    async with _broker(fleet, broker_kind, free_port(), tmp_path) as url:
        store = TelemetryStore(tmp_path / "t.duckdb")
        ingest = Ingest(
            fleet.connector(url, "ingest"),
            store,
            identifier=f"opensdv-ingest-{time.time_ns()}",
            durable=False,
        )
        seen: list[Command] = []
        verifier = CommandVerifier(VIN, fleet.identity(VIN).ca_file)

        async def obey(payload: bytes) -> CommandResult:
            command = verifier.verify(payload)
            seen.append(command)
            return CommandResult(id=command.id, vin=VIN, accepted=True)

        uplink = Uplink(fleet.connector(url, VIN), _status(), Spool(tmp_path / "spool.db"), on_command=obey)
        tasks = [asyncio.create_task(ingest.run()), asyncio.create_task(uplink.run())]
        try:
            await asyncio.wait_for(ingest.subscribed.wait(), 10)
            for n in range(20):
                uplink.record([Sample(path="Vehicle.Speed", value=float(n), ts=1000.0 + n)])
            await asyncio.wait_for(uplink.wait_confirmed(), 10)
            assert store.sequences(VIN) == list(range(20))
            assert uplink.confirmed == 20 and uplink.resent == 0
            assert [p.value for p in store.series(VIN, "Vehicle.Speed", 0, 2000)] == [
                float(n) for n in range(20)
            ]
            await asyncio.wait_for(ingest.written.wait_until(lambda: VIN in store.statuses()), 10)
            assert store.statuses()[VIN].online and store.statuses()[VIN].brand == "Nissan"

            await asyncio.wait_for(uplink.connected.wait(), 10)
            api = fleet.connector(url, "api")
            async with (
                api.connect(f"opensdv-api-{time.time_ns()}") as cloud,
                fleet.connector(url, "ingest").connect(f"opensdv-ingest-results-{time.time_ns()}") as results,
            ):
                await results.subscribe(topic(VIN, "command-results"), qos=1)
                signer = fleet.signer()
                command = signer.command(
                    VIN, "Nissan", "nissan-ops", "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit", 80
                )
                await cloud.publish(topic(VIN, "commands"), signer.sign(command), qos=1)
                async for message in results.messages():
                    if message.topic == topic(VIN, "command-results"):
                        assert b'"accepted":true' in message.payload
                        break
            assert seen == [command]
            # QoS 1 may deliver a batch twice: the store keeps one
            batch = store.sequences(VIN)[0]
            ingest.handle(topic(VIN, "telemetry"), encode_batch(batch))
            ingest.flush()
            assert ingest.duplicates == 1 and store.sequences(VIN) == list(range(20))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            store.close()


def encode_batch(seq: int) -> bytes:
    return encode(TelemetryBatch(vin=VIN, seq=seq, samples=[]))


async def test_vehicles_lose_nothing_while_the_broker_is_down(
    fleet: Fleet, broker_kind: str, tmp_path: Path
) -> None:
    """Telemetry made while the broker is down is spooled and arrives once, in order,
    after the restart. The cars come back before the cloud, so the fresh broker (no persistence)
    acknowledges and drops their backlog; only the cloud's confirmation empties a spool, so they
    send it again. The cars record during the outage, so each notices it by a missing PUBACK
    within ``ack_timeout_s`` whatever the broker's sockets do: keep-alive timing decides nothing.
    (The 30-s, 50-car version runs on the in-memory broker: test_link_logic.py.)"""
    vins = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 6)]
    store = TelemetryStore()
    port = free_port()
    async with _broker(fleet, broker_kind, port, tmp_path) as url:
        uplinks = [
            Uplink(
                fleet.connector(url, vin),
                _status(vin),
                Spool(tmp_path / f"{vin}.db"),
                backoff_s=(0.05, 0.1, 0.2),
                ack_timeout_s=1.0,
            )
            for vin in vins
        ]
        ingest = Ingest(fleet.connector(url, "ingest"), store, durable=False)
        cloud = asyncio.create_task(ingest.run(backoff_s=0.05, confirm_s=0.2))
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        await asyncio.wait_for(
            asyncio.gather(ingest.subscribed.wait(), *(u.connected.wait() for u in uplinks)), 30
        )
        for u in uplinks:
            u.record([Sample(path="Vehicle.Speed", value=0.0, ts=0.0)])
        await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 30)
        assert store.count() == len(vins)
        cloud.cancel()  # the cloud goes down with the broker
        await asyncio.gather(cloud, return_exceptions=True)
    for k in range(1, OUTAGE_BATCHES + 1):
        for u in uplinks:
            u.record([Sample(path="Vehicle.Speed", value=float(k), ts=float(k))])
    async with _broker(fleet, broker_kind, port, tmp_path):
        # the backlog reaches a broker nobody is subscribed at yet: acknowledged, then dropped
        await asyncio.wait_for(asyncio.gather(*(u.wait_sent(OUTAGE_BATCHES) for u in uplinks)), 60)
        ingest = Ingest(fleet.connector(url, "ingest"), store, durable=False)
        cloud = asyncio.create_task(ingest.run(backoff_s=0.05, confirm_s=0.2))
        await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 60)
        for vin in vins:
            assert store.sequences(vin) == list(range(OUTAGE_BATCHES + 1))
            assert [p.value for p in store.series(vin, "Vehicle.Speed", -1, OUTAGE_BATCHES + 1)] == [
                float(k) for k in range(OUTAGE_BATCHES + 1)
            ]
        assert all(u.resent >= 1 and u.reconnects >= 1 for u in uplinks)
        for task in [cloud, *cars]:
            task.cancel()
        await asyncio.gather(cloud, *cars, return_exceptions=True)


async def test_a_cloud_restart_loses_nothing_stored_or_sent_meanwhile(fleet: Fleet, tmp_path: Path) -> None:
    """The ingest stops (its store closed) while cars keep publishing; the new ingest process finds
    the old samples in the file and receives what was sent meanwhile from its broker session.

    Mosquitto only: the embedded broker lives in the cloud process, so there a cloud restart is a
    broker outage (the batches wait in the cars' spools: the outage test below); and amqtt does
    not hand a resumed session what was queued for it while it was away."""
    need_mosquitto()
    vins = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 11)]
    identifier = f"opensdv-ingest-{time.time_ns()}"
    async with fleet.mosquitto(free_port(), tmp_path) as url:
        # what the first ingest stored but had not confirmed yet is sent again after the timeout
        link = fleet.connector(url, "ingest")
        uplinks = [
            Uplink(fleet.connector(url, vin), _status(vin), Spool(tmp_path / f"{vin}.db"), ack_timeout_s=2.0)
            for vin in vins
        ]
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        store = TelemetryStore(tmp_path / "cloud.duckdb")
        first = Ingest(link, store, identifier=identifier)
        running = asyncio.create_task(first.run())
        try:
            await asyncio.wait_for(
                asyncio.gather(first.subscribed.wait(), *(u.connected.wait() for u in uplinks)), 30
            )
            for k in range(3):
                for u in uplinks:
                    u.record([Sample(path="Vehicle.Speed", value=float(k), ts=float(k))])
            await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 30)
            running.cancel()  # the cloud process goes away
            await asyncio.gather(running, return_exceptions=True)
            store.close()
            for k in range(3, 6):
                for u in uplinks:
                    u.record([Sample(path="Vehicle.Speed", value=float(k), ts=float(k))])
            # the broker has them, the cloud does not
            await asyncio.wait_for(asyncio.gather(*(u.wait_sent(5) for u in uplinks)), 30)
            store = TelemetryStore(tmp_path / "cloud.duckdb")
            second = Ingest(link, store, identifier=identifier)
            running = asyncio.create_task(second.run())
            await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 30)
            for vin in vins:
                assert store.sequences(vin) == list(range(6))
                assert [p.value for p in store.series(vin, "Vehicle.Speed", -1, 10)] == [
                    float(k) for k in range(6)
                ]
        finally:
            for task in [running, *cars]:
                task.cancel()
            await asyncio.gather(running, *cars, return_exceptions=True)
            store.close()
            await end_session(link, identifier)  # or Mosquitto queues for it long after the test


def test_bad_messages_are_counted_and_dropped(tmp_path: Path) -> None:
    store = TelemetryStore()
    ingest = Ingest(MemoryBroker(), store)
    ingest.handle("somebody/else/topic", b"{}")
    ingest.handle(topic(VIN, "telemetry"), b"not json")
    ingest.handle(topic(VIN, "telemetry"), encode(_status()))  # a status on the telemetry topic
    ingest.handle(topic("JHMHNDAE0ED000002", "status"), encode(_status()))  # another car's payload
    assert ingest.dropped == {"topic": 1, "payload": 3}
    assert store.count() == 0 and store.statuses() == {}


def test_a_backlog_bundle_is_stored_batch_by_batch_and_bad_bundles_are_dropped() -> None:
    store = TelemetryStore()
    ingest = Ingest(MemoryBroker(), store)
    bundle = b"[" + b",".join(encode_batch(seq) for seq in range(3)) + b"]"
    ingest.handle(topic(VIN, "telemetry"), bundle)
    ingest.handle(topic(VIN, "telemetry"), bundle)  # QoS 1 repeats a whole bundle
    ingest.flush()
    assert store.sequences(VIN) == [0, 1, 2] and ingest.duplicates == 3
    other = encode(TelemetryBatch(vin="JHMHNDAE0ED000002", seq=9, samples=[]))
    ingest.handle(topic(VIN, "telemetry"), b"[]")
    ingest.handle(topic(VIN, "telemetry"), b"[" + encode_batch(7) + b"," + other + b"]")  # a stranger inside
    ingest.handle(topic(VIN, "telemetry"), b"[" + b",".join([encode_batch(1)] * (MAX_BUNDLE + 1)) + b"]")
    ingest.handle(topic(VIN, "telemetry"), b'[{"vin": "' + VIN.encode() + b'", "seq": -1, "samples": []}]')
    ingest.flush()
    assert ingest.dropped == {"payload": 4} and store.sequences(VIN) == [0, 1, 2]


_FUZZED = Ingest(MemoryBroker(), TelemetryStore())  # one for every example: handle() writes nothing


@given(st.binary(max_size=200))
def test_ingest_never_crashes_on_any_payload(payload: bytes) -> None:
    ingest = _FUZZED
    for kind in ("telemetry", "status", "events"):
        ingest.handle(topic(VIN, kind), payload)  # type: ignore[arg-type]
