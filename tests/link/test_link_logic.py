"""The link's logic on the in-memory broker and a fake clock: spooling, confirmations, resends,
bundles, outages, reconnects and duplicates, deterministic and in milliseconds. The same scenarios
run over real brokers in test_fleet_link.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from opensdv.clock import FakeClock
from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.connection import Message, Will, topic_matches
from opensdv.link.fleet import (
    Command,
    CommandResult,
    Sample,
    TelemetryAck,
    VehicleStatus,
    decode,
    encode,
    topic,
)
from opensdv.link.memory import MemoryBroker
from opensdv.link.signing import CommandVerifier
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from tests.fleet_identities import Fleet

VIN = "JN1NSSAN0DD000001"


@dataclass
class World:
    clock: FakeClock
    broker: MemoryBroker
    store: TelemetryStore
    tasks: list[asyncio.Task[None]]
    tmp: Path

    def car(self, vin: str = VIN, **options: float) -> Uplink:
        status = VehicleStatus(vin=vin, online=True, at=self.clock.time(), brand="Nissan")
        uplink = Uplink(
            self.broker, status, Spool(self.tmp / f"{vin}.db"), clock=self.clock,
            backoff_s=(0.1, 0.5, 1.0), **options,  # type: ignore[arg-type]
        )  # fmt: skip
        return uplink

    def start(self, job: object) -> asyncio.Task[None]:
        task = asyncio.create_task(job)  # type: ignore[arg-type]
        self.tasks.append(task)
        return task

    def ingest(self, durable: bool = False, identifier: str = "ingest") -> Ingest:
        return Ingest(
            self.broker, self.store, identifier, durable=durable, clock=self.clock, write_in_thread=False
        )

    async def stop(self, task: asyncio.Task[None]) -> None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(FakeClock(), MemoryBroker(), TelemetryStore(), [], tmp_path)
    yield w
    for task in w.tasks:
        task.cancel()
    await asyncio.gather(*w.tasks, return_exceptions=True)
    w.store.close()


def _speed(value: float, ts: float = 0.0) -> list[Sample]:
    return [Sample(path="Vehicle.Speed", value=value, ts=ts)]


async def test_telemetry_arrives_once_in_order_and_is_confirmed(world: World) -> None:
    ingest = world.ingest()
    uplink = world.car()
    world.start(ingest.run(confirm_s=2.0))
    world.start(uplink.run())
    await world.clock.run(uplink.connected.wait(), within_s=1)
    for n in range(20):
        uplink.record(_speed(float(n), ts=float(n)))
    await world.clock.run(uplink.wait_confirmed(), within_s=5)
    assert world.store.sequences(VIN) == list(range(20))
    assert [p.value for p in world.store.series(VIN, "Vehicle.Speed", -1, 100)] == [
        float(n) for n in range(20)
    ]
    assert uplink.statistics().confirmed == 20 and uplink.resent == 0 and len(uplink.spool) == 0
    assert world.store.statuses()[VIN].online


async def test_a_confirmation_comes_only_after_the_store_wrote(world: World) -> None:
    """The broker has the batch at once; the spool keeps it until the cloud's confirmation."""
    ingest = world.ingest()
    uplink = world.car()
    world.start(uplink.run())
    await world.clock.run(uplink.connected.wait(), within_s=1)
    seq = uplink.record(_speed(1.0))
    await world.clock.run(uplink.wait_sent(seq), within_s=1)
    await world.clock.advance(10)
    assert len(uplink.spool) == 1 and uplink.confirmed == 0  # nobody stored it
    world.start(ingest.run(confirm_s=2.0))
    await world.clock.run(uplink.wait_confirmed(seq), within_s=60)
    assert world.store.sequences(VIN) == [0] and uplink.resent >= 1


async def test_fifty_vehicles_lose_nothing_in_a_thirty_second_outage(world: World) -> None:
    """The broker crashes (no persistence) with the cloud; cars record once a second meanwhile and
    come back before the cloud: the fresh broker takes their backlog and drops it (nobody is
    subscribed yet). Only the cloud's confirmation empties a spool, so they send it again."""
    vins = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 51)]
    uplinks = [world.car(vin, ack_timeout_s=1.0) for vin in vins]
    cloud = world.start(world.ingest().run(backoff_s=0.05, confirm_s=0.2))
    for u in uplinks:
        world.start(u.run())
    await world.clock.run(asyncio.gather(*(u.connected.wait() for u in uplinks)), within_s=1)
    for u in uplinks:
        u.record(_speed(0.0))
    await world.clock.run(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), within_s=5)

    world.broker.stop()
    await world.stop(cloud)
    await world.clock.run(asyncio.gather(*(u.disconnected.wait() for u in uplinks)), within_s=1)
    for k in range(1, 31):
        await world.clock.advance(1.0)
        for u in uplinks:
            u.record(_speed(float(k), ts=float(k)))
    assert all(len(u.spool) == 30 for u in uplinks)

    world.broker.start()
    await world.clock.run(asyncio.gather(*(u.wait_sent(30) for u in uplinks)), within_s=10)
    assert world.store.count() == 50  # what the cars sent went nowhere
    world.start(world.ingest().run(backoff_s=0.05, confirm_s=0.2))
    await world.clock.run(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), within_s=30)
    for vin in vins:
        assert world.store.sequences(vin) == list(range(31))
        values = [p.value for p in world.store.series(vin, "Vehicle.Speed", -1, 31)]
        assert values == [float(k) for k in range(31)]
    assert all(u.resent >= 1 and u.reconnects >= 1 for u in uplinks)


async def test_a_durable_cloud_session_gets_what_was_sent_while_it_restarted(world: World) -> None:
    uplinks = [world.car(f"JN1NSSAN0DD{n:06d}", ack_timeout_s=30.0) for n in range(1, 11)]
    first = world.start(world.ingest(durable=True).run(confirm_s=2.0))
    for u in uplinks:
        world.start(u.run())
    await world.clock.run(asyncio.gather(*(u.connected.wait() for u in uplinks)), within_s=1)
    for k in range(3):
        for u in uplinks:
            u.record(_speed(float(k), ts=float(k)))
    await world.clock.run(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), within_s=5)
    await world.stop(first)  # the cloud process goes away; its broker session stays
    for k in range(3, 6):
        for u in uplinks:
            u.record(_speed(float(k), ts=float(k)))
    await world.clock.run(asyncio.gather(*(u.wait_sent(5) for u in uplinks)), within_s=1)
    world.start(world.ingest(durable=True).run(confirm_s=2.0))
    await world.clock.run(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), within_s=10)
    assert all(u.resent == 0 for u in uplinks)  # the broker queued it: nothing had to go again
    assert world.store.count() == 60 and all(world.store.sequences(u.vin) == list(range(6)) for u in uplinks)


async def test_a_backlog_goes_out_in_bundles_within_the_window(world: World) -> None:
    uplink = world.car(window=4, bundle=10)
    seen: list[int] = []

    async def count_messages() -> None:
        async with world.broker.connect("spy") as spy:
            await spy.subscribe(topic(VIN, "telemetry"))
            async for message in spy.messages():
                seen.append(message.payload.count(b'"seq"'))

    world.start(count_messages())
    for n in range(100):
        uplink.record(_speed(float(n)))
    world.start(uplink.run())
    await world.clock.run(uplink.wait_sent(39), within_s=1)
    await world.clock.advance(5)
    assert seen == [10, 10, 10, 10]  # four bundles of ten, then it waits for confirmations
    world.start(world.ingest().run(confirm_s=0.5))
    await world.clock.run(uplink.wait_confirmed(), within_s=60)
    assert world.store.sequences(VIN) == list(range(100))


async def test_a_car_restart_resumes_from_its_spool(world: World) -> None:
    first = world.car()
    run = world.start(first.run())
    for n in range(5):
        first.record(_speed(float(n)))
    await world.clock.run(first.wait_sent(4), within_s=1)
    await world.stop(run)
    first.spool.close()
    again = world.car()  # the same spool file
    assert len(again.spool) == 5 and again.spool.next_seq == 5
    again.record(_speed(5.0))
    world.start(world.ingest().run(confirm_s=0.5))
    world.start(again.run())
    await world.clock.run(again.wait_confirmed(), within_s=60)
    assert world.store.sequences(VIN) == list(range(6))


async def test_signed_commands_reach_the_car_and_results_come_back(world: World, fleet: Fleet) -> None:
    seen: list[Command] = []
    verifier = CommandVerifier(VIN, fleet.identity(VIN).ca_file)  # on the real clock: the CA's certificates are

    async def obey(payload: bytes) -> CommandResult:
        command = verifier.verify(payload)
        seen.append(command)
        return CommandResult(id=command.id, vin=VIN, accepted=True)

    uplink = world.car()
    uplink.on_command = obey
    world.start(uplink.run())
    await world.clock.run(uplink.connected.wait(), within_s=1)
    signer = fleet.signer()
    command = signer.command(
        VIN, "Nissan", "nissan-ops", "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit", 80
    )
    async with world.broker.connect("operator") as cloud:
        await cloud.subscribe(topic(VIN, "command-results"))
        await cloud.publish(topic(VIN, "commands"), signer.sign(command))
        message = await world.clock.run(anext(cloud.messages()), within_s=1)
    assert seen == [command]
    assert decode(CommandResult, message.payload, "test").accepted


async def test_the_last_will_says_offline_when_the_car_vanishes(world: World) -> None:
    uplink = world.car()
    world.start(world.ingest().run())
    world.start(uplink.run())
    await world.clock.run(uplink.connected.wait(), within_s=1)
    await world.clock.advance(1)
    assert world.store.statuses()[VIN].online
    world.broker.drop(VIN)
    await world.clock.advance(1)
    assert not world.store.statuses()[VIN].online or uplink.connected.is_set()  # it may be back already
    await world.clock.run(uplink.connected.wait(), within_s=5)
    await world.clock.advance(1)
    assert world.store.statuses()[VIN].online and uplink.reconnects == 1


async def test_only_the_cars_own_well_formed_confirmations_empty_its_spool(world: World) -> None:
    uplink = world.car()
    world.start(uplink.run())
    for n in range(3):
        uplink.record(_speed(float(n)))
    await world.clock.run(uplink.wait_sent(2), within_s=1)
    acks = topic(VIN, "telemetry-acks")
    async with world.broker.connect("cloud") as cloud:
        for bad in (
            b"not json",
            encode(TelemetryAck(vin="JHMHNDAE0ED000002", stored=[(0, 2)])),  # another car's
            b'{"vin": "' + VIN.encode() + b'", "stored": [[2, 1]]}',  # not a range
        ):
            await cloud.publish(acks, bad, qos=0)
        await cloud.publish(acks, encode(TelemetryAck(vin=VIN, stored=[(1, 1)])), qos=0)
    await world.clock.advance(0.1)  # the car handles its messages in order
    assert [seq for seq, _ in uplink.spool.next_batches()] == [0, 2] and uplink.confirmed == 1


async def test_the_memory_broker_keeps_retained_messages_and_shares_groups(world: World) -> None:
    broker = world.broker
    async with broker.connect("a") as a, broker.connect("b") as b, broker.connect("c") as c:
        await a.publish("opensdv/v1/x/status", b"retained", retain=True)
        for member in (a, b):
            await member.subscribe("$share/ingest/opensdv/v1/+/telemetry")
        await c.subscribe("opensdv/v1/#")
        for n in range(4):
            await c.publish("opensdv/v1/car/telemetry", bytes([n]))
        got_c = [await anext(c.messages()) for _ in range(5)]
        got_a = [await anext(a.messages()) for _ in range(2)]
        got_b = [await anext(b.messages()) for _ in range(2)]
    assert got_c[0] == Message("opensdv/v1/x/status", b"retained", True)
    assert sorted(m.payload for m in got_a + got_b) == [bytes([n]) for n in range(4)]  # each once
    assert broker.retained["opensdv/v1/x/status"].payload == b"retained"
    assert Will("t", b"p").retain


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("a/+/c", "a/b/c", True),
        ("a/#", "a/b/c", True),
        ("a/+", "a/b/c", False),
        ("$share/g/a/+/c", "a/b/c", True),
        ("a/b", "a/b/c", False),
        ("a/b/c", "a/b", False),
    ],
)
def test_topic_filters_match_as_mqtt_says(pattern: str, name: str, expected: bool) -> None:
    assert topic_matches(pattern, name) is expected


async def test_the_fake_clock_times_out_and_sleeps_in_order() -> None:
    clock = FakeClock()
    order: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append(name)

    tasks = [asyncio.create_task(nap("late", 5)), asyncio.create_task(nap("early", 1))]
    await clock.advance(2)
    assert order == ["early"] and clock.monotonic() == 2
    await clock.advance(3)
    assert order == ["early", "late"]
    with pytest.raises(TimeoutError):
        await clock.run(_wait_forever_within(clock, 10), within_s=60)
    assert clock.monotonic() == 15
    with pytest.raises(TimeoutError):
        await clock.run(asyncio.Event().wait(), within_s=60)  # nothing will ever happen
    await asyncio.gather(*tasks)


async def _wait_forever_within(clock: FakeClock, seconds: float) -> None:
    async with clock.timeout(seconds):
        await asyncio.Event().wait()
