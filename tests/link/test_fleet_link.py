"""The vehicle<->cloud link over real MQTT brokers (embedded amqtt and Mosquitto): telemetry in
order and exactly once, store-and-forward across a broker outage, status with last will, commands,
and bad messages counted, never fatal."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.cloud.mqtt_broker import embedded_mqtt_broker
from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import (
    MAX_BUNDLE,
    Command,
    CommandResult,
    Sample,
    TelemetryAck,
    TelemetryBatch,
    VehicleStatus,
    encode,
    topic,
)
from opensdv.link.mqtt import end_session, mqtt_client
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from tests.conftest import need

VIN = "JN1NSSAN0DD000001"
OUTAGE_S = 30


@asynccontextmanager
async def _mosquitto() -> AsyncIterator[str]:
    url = os.environ.get("OPENSDV_TEST_MQTT_URL")
    need(url is not None, "OPENSDV_TEST_MQTT_URL (Mosquitto; make test starts it)")
    assert url is not None
    yield url


@pytest.fixture(params=["embedded", "mosquitto"])
def mqtt(request: pytest.FixtureRequest) -> AbstractAsyncContextManager[str]:
    return embedded_mqtt_broker() if request.param == "embedded" else _mosquitto()


def _status(vin: str = VIN) -> VehicleStatus:
    return VehicleStatus(vin=vin, online=True, at=time.time(), brand="Nissan", model="Leaf 40 kWh")


async def _running(coro: object) -> asyncio.Task[None]:
    return asyncio.create_task(coro)  # type: ignore[arg-type]


async def test_telemetry_arrives_once_in_order_with_status_and_commands(
    mqtt: AbstractAsyncContextManager[str], tmp_path: Path
) -> None:
    async with mqtt as url:
        store = TelemetryStore(tmp_path / "t.duckdb")
        ingest = Ingest(url, store, identifier=f"ingest-{time.time_ns()}", durable=False)
        seen: list[Command] = []

        async def obey(command: Command) -> CommandResult:
            seen.append(command)
            return CommandResult(id=command.id, vin=VIN, accepted=True)

        uplink = Uplink(url, _status(), Spool(tmp_path / "spool.db"), on_command=obey)
        tasks = [asyncio.create_task(ingest.run()), asyncio.create_task(uplink.run())]
        try:
            await asyncio.wait_for(ingest.subscribed.wait(), 10)
            for n in range(20):
                uplink.record([Sample(path="Vehicle.Speed", value=float(n), ts=1000.0 + n)])
            await ingest.wait_for(lambda: len(store.sequences(VIN)) == 20)
            assert store.sequences(VIN) == list(range(20))
            await asyncio.wait_for(_until_confirmed([uplink]), 10)
            assert uplink.confirmed == 20 and uplink.resent == 0
            assert [p.value for p in store.series(VIN, "Vehicle.Speed", 0, 2000)] == [
                float(n) for n in range(20)
            ]
            await ingest.wait_for(lambda: VIN in store.statuses())
            assert store.statuses()[VIN].online and store.statuses()[VIN].brand == "Nissan"

            await asyncio.wait_for(uplink.connected.wait(), 10)
            async with mqtt_client(url, f"operator-{time.time_ns()}") as cloud:
                await cloud.subscribe(topic(VIN, "command-results"), qos=1)
                command = Command(
                    id="c1",
                    operator="nissan-ops",
                    path="Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit",
                    value=80,
                    issued_at=time.time(),
                )
                await cloud.publish(topic(VIN, "commands"), encode(command), qos=1)
                async for message in cloud.messages:
                    if message.topic.matches(
                        topic(VIN, "command-results")
                    ):  # amqtt also hands out retained others
                        assert b'"accepted":true' in bytes(message.payload)  # type: ignore[arg-type]
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


async def test_fifty_vehicles_lose_nothing_while_the_broker_is_down(tmp_path: Path) -> None:
    """Telemetry made during a 30-s broker outage is spooled and arrives once, in order, after the
    restart. The cars come back before the cloud, so the fresh broker (no persistence) acknowledges
    and drops their whole backlog; only the cloud's confirmation empties a spool, so the cars send
    it again when none comes."""
    vins = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 51)]
    store = TelemetryStore()
    async with embedded_mqtt_broker() as url:
        port = int(url.split(":")[2].split("?")[0])
        uplinks = [
            Uplink(
                url,
                _status(vin),
                Spool(tmp_path / f"{vin}.db"),
                backoff_s=(0.05, 0.1, 0.2),
                ack_timeout_s=1.0,
            )
            for vin in vins
        ]
        ingest = Ingest(url, store, durable=False)
        cloud = asyncio.create_task(ingest.run(backoff_s=0.05, confirm_s=0.2))
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        await asyncio.wait_for(
            asyncio.gather(ingest.subscribed.wait(), *(u.connected.wait() for u in uplinks)), 30
        )
        for u in uplinks:
            u.record([Sample(path="Vehicle.Speed", value=0.0, ts=0.0)])
        await asyncio.wait_for(_until_confirmed(uplinks), 30)
        assert store.count() == 50
        cloud.cancel()  # the cloud goes down with the broker (the embedded broker lives in it)
        await asyncio.gather(
            cloud, return_exceptions=True
        )  # (its MQTT client waits for the broker's goodbye)
    # the broker is gone for 30 s: cars keep recording once a second (the outage's length is the
    # scenario here, not a wait for something to happen)
    await asyncio.wait_for(asyncio.gather(*(_until_disconnected(u) for u in uplinks)), 30)
    for k in range(1, OUTAGE_S + 1):
        for u in uplinks:
            u.record([Sample(path="Vehicle.Speed", value=float(k), ts=float(k))])
        await asyncio.sleep(1.0)
    assert all(len(u.spool) == OUTAGE_S for u in uplinks)
    for task in cars:
        task.cancel()
    await asyncio.gather(*cars, return_exceptions=True)
    async with embedded_mqtt_broker(port=port):
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        # the backlog reaches a broker nobody is subscribed at yet: acknowledged, then dropped
        await asyncio.wait_for(_until_sent(uplinks, 1 + OUTAGE_S), 30)
        ingest = Ingest(url, store, durable=False)
        cloud = asyncio.create_task(ingest.run(backoff_s=0.05, confirm_s=0.2))
        await ingest.wait_for(lambda: store.count() == 50 * (OUTAGE_S + 1), timeout_s=60)
        for vin in vins:
            assert store.sequences(vin) == list(range(OUTAGE_S + 1))
            assert [p.value for p in store.series(vin, "Vehicle.Speed", -1, OUTAGE_S + 1)] == [
                float(k) for k in range(OUTAGE_S + 1)
            ]
        await asyncio.wait_for(_until_confirmed(uplinks), 30)
        assert all(u.resent >= 1 for u in uplinks)
        for task in [cloud, *cars]:
            task.cancel()
        await asyncio.gather(cloud, *cars, return_exceptions=True)


async def test_a_cloud_restart_loses_nothing_stored_or_sent_meanwhile(tmp_path: Path) -> None:
    """The ingest stops (its store closed) while cars keep publishing; the new ingest process finds
    the old samples in the file and receives what was sent meanwhile from its broker session.

    Mosquitto only: the embedded broker lives in the cloud process, so there a cloud restart is a
    broker outage (the batches wait in the cars' spools: the outage test below); and amqtt does
    not hand a resumed session what was queued for it while it was away."""
    mqtt = _mosquitto()
    vins = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 11)]
    identifier = f"ingest-{time.time_ns()}"
    async with mqtt as url:
        # what the first ingest stored but had not confirmed yet is sent again after the timeout
        uplinks = [
            Uplink(url, _status(vin), Spool(tmp_path / f"{vin}.db"), ack_timeout_s=2.0) for vin in vins
        ]
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        store = TelemetryStore(tmp_path / "cloud.duckdb")
        first = Ingest(url, store, identifier=identifier)
        running = asyncio.create_task(first.run())
        try:
            await asyncio.wait_for(
                asyncio.gather(first.subscribed.wait(), *(u.connected.wait() for u in uplinks)), 30
            )
            for k in range(3):
                for u in uplinks:
                    u.record([Sample(path="Vehicle.Speed", value=float(k), ts=float(k))])
            await first.wait_for(lambda: store.count() == 30)
            running.cancel()  # the cloud process goes away
            await asyncio.gather(running, return_exceptions=True)
            store.close()
            for k in range(3, 6):
                for u in uplinks:
                    u.record([Sample(path="Vehicle.Speed", value=float(k), ts=float(k))])
            await asyncio.wait_for(_until_sent(uplinks, 6), 30)  # the broker has them, the cloud does not
            store = TelemetryStore(tmp_path / "cloud.duckdb")
            second = Ingest(url, store, identifier=identifier)
            running = asyncio.create_task(second.run())
            await second.wait_for(lambda: store.count() == 60, timeout_s=30)
            await asyncio.wait_for(_until_confirmed(uplinks), 30)
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
            await end_session(url, identifier)  # or Mosquitto queues for it long after the test


async def _until_sent(uplinks: list[Uplink], batches: int) -> None:
    while any(u.published < batches for u in uplinks):
        await asyncio.sleep(0.02)  # counted on the broker's PUBACK; nothing signals it


async def _until_confirmed(uplinks: list[Uplink]) -> None:
    while any(len(u.spool) for u in uplinks):
        await asyncio.sleep(0.02)  # spools empty on the cloud's confirmation; nothing signals it


async def _until_disconnected(uplink: Uplink) -> None:
    while uplink.connected.is_set():
        await asyncio.sleep(0.02)  # the link notices the outage on its own; there is no event for "gone"


def test_bad_messages_are_counted_and_dropped(tmp_path: Path) -> None:
    store = TelemetryStore()
    ingest = Ingest("mqtt://unused:1", store)
    ingest.handle("somebody/else/topic", b"{}")
    ingest.handle(topic(VIN, "telemetry"), b"not json")
    ingest.handle(topic(VIN, "telemetry"), encode(_status()))  # a status on the telemetry topic
    ingest.handle(topic("JHMHNDAE0ED000002", "status"), encode(_status()))  # another car's payload
    assert ingest.dropped == {"topic": 1, "payload": 3}
    assert store.count() == 0 and store.statuses() == {}


def test_a_backlog_bundle_is_stored_batch_by_batch_and_bad_bundles_are_dropped() -> None:
    store = TelemetryStore()
    ingest = Ingest("mqtt://unused:1", store)
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


@given(st.binary(max_size=200))
def test_ingest_never_crashes_on_any_payload(payload: bytes) -> None:
    ingest = Ingest("mqtt://unused:1", TelemetryStore())
    for kind in ("telemetry", "status", "events"):
        ingest.handle(topic(VIN, kind), payload)  # type: ignore[arg-type]


async def test_only_the_cars_own_well_formed_confirmations_empty_its_spool(tmp_path: Path) -> None:
    async with embedded_mqtt_broker() as url:
        uplink = Uplink(url, _status(), Spool(tmp_path / "spool.db"))
        car = asyncio.create_task(uplink.run())
        try:
            for n in range(3):
                uplink.record([Sample(path="Vehicle.Speed", value=float(n), ts=float(n))])
            await asyncio.wait_for(_until_sent([uplink], 3), 10)
            async with mqtt_client(url, f"cloud-{time.time_ns()}") as cloud:
                acks = topic(VIN, "telemetry-acks")
                for bad in (
                    b"not json",
                    encode(TelemetryAck(vin="JHMHNDAE0ED000002", stored=[(0, 2)])),  # another car's
                    b'{"vin": "' + VIN.encode() + b'", "stored": [[2, 1]]}',  # not a range
                ):
                    await cloud.publish(acks, bad, qos=1)
                await cloud.publish(acks, encode(TelemetryAck(vin=VIN, stored=[(1, 1)])), qos=1)
            while uplink.confirmed < 1:
                await asyncio.sleep(0.01)  # the car handles its messages in order; nothing signals it
            assert [seq for seq, _ in uplink.spool.oldest()] == [0, 2] and uplink.confirmed == 1
        finally:
            car.cancel()
            await asyncio.gather(car, return_exceptions=True)
