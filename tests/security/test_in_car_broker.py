"""The running vehicle process's data broker checks a token on every call: an app holds only what
its manifest grants, and an app without ``actuate`` on a path cannot move that actuator."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from kuksa.val.v2 import types_pb2 as t
from kuksa.val.v2 import val_pb2 as v
from kuksa.val.v2 import val_pb2_grpc

from opensdv.config import load_settings
from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.broker import ALLOW_ALL, mint_token
from opensdv.vehicle.process import VehicleLayout, VehicleProcess
from opensdv.vehicle.provision import initialise_vehicle
from opensdv.vehicle.safety import ActuationGuard

VIN = "JN1NSSAN0DD000001"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


async def _code(call: object, request: object, token: str | None) -> grpc.StatusCode:
    metadata = [("authorization", f"Bearer {token}")] if token else []
    try:
        await call(request, metadata=metadata)  # type: ignore[operator]
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@asynccontextmanager
async def _running_car(
    tmp_path: Path, bus: dict[str, object] | None = None, **broker: object
) -> AsyncIterator[tuple[VehicleProcess, bytes]]:
    """A vehicle process with a token-checking broker on a free port; yields it and its token key."""
    layout = VehicleLayout(tmp_path / "car")
    initialise_vehicle(VIN, load_catalog().vehicle("nissan-leaf-40"), layout)
    settings = load_settings(
        vehicle={"vin": VIN, "model": "nissan-leaf-40", "state_dir": layout.root, "apps": False,
                 "bus": {"interface": "virtual", "channel": f"sec-{tmp_path.name}", **(bus or {})}},
        broker={"host": "127.0.0.1", "port": 0, "jwt_public_keys": [layout.jwt_public_key], **broker},
    )  # fmt: skip
    process = VehicleProcess(settings)
    stop = asyncio.Event()
    running = asyncio.create_task(process.run(stop))
    try:
        await asyncio.wait_for(process.started.wait(), 30)
        yield process, layout.jwt_private_key.read_bytes()
    finally:
        stop.set()
        await running


async def test_an_app_without_actuate_is_refused_by_the_running_broker(tmp_path: Path) -> None:
    async with _running_car(tmp_path) as (process, key):
        reader = mint_token(key, f"read:{LIMIT} read:Vehicle.Speed", subject="app:dashboard")
        charger = mint_token(key, f"actuate:{LIMIT}", subject="app:charging")
        async with grpc.aio.insecure_channel(process.server.target) as channel:
            val = val_pb2_grpc.VALStub(channel)
            actuate = v.ActuateRequest(signal_id=t.SignalID(path=LIMIT), value=t.Value(uint32=80))
            assert await _code(val.Actuate, actuate, None) is grpc.StatusCode.UNAUTHENTICATED
            assert await _code(val.Actuate, actuate, "not.a.token") is grpc.StatusCode.UNAUTHENTICATED
            assert await _code(val.Actuate, actuate, reader) is grpc.StatusCode.PERMISSION_DENIED
            read = v.GetValueRequest(signal_id=t.SignalID(path=LIMIT))
            assert await _code(val.GetValue, read, reader) is grpc.StatusCode.OK
            assert (
                await _code(val.Actuate, actuate, charger) is grpc.StatusCode.OK
            )  # the brand adapter provides it
            forged = mint_token(_other_key(), f"actuate:{LIMIT}")  # a key the car never trusted
            assert await _code(val.Actuate, actuate, forged) is grpc.StatusCode.UNAUTHENTICATED
            # a data provider stamps "standing still" an hour ahead, so it would look fresh for an hour
            liar = mint_token(key, "provide:data:Vehicle.Speed", subject="app:liar")
            stamp = Timestamp(seconds=int(time.time()) + 3600)
            lie = v.PublishValueRequest(
                signal_id=t.SignalID(path="Vehicle.Speed"), data_point=t.Datapoint(timestamp=stamp, value=t.Value(float=0.0))
            )
            assert await _code(val.PublishValue, lie, liar) is grpc.StatusCode.INVALID_ARGUMENT


async def test_a_data_provider_cannot_move_the_guards_view_of_the_moving_car(tmp_path: Path) -> None:
    """The attack of the hardening issue: a token of ``provide:data:Vehicle.Speed actuate:<trunk>``
    publishes "standing still" while the car drives at 50 km/h, then opens the trunk. The broker
    takes the value (readers see it), the guard does not: only the brand adapter's feeder moves it."""
    cycle = tmp_path / "steady-50.csv"
    cycle.write_text("time_s,speed_kmh\n" + "".join(f"{t},{0 if t == 0 else 50}\n" for t in range(3600)))
    trunk = "Vehicle.Body.Trunk.Rear.IsOpen"
    async with _running_car(tmp_path, {"simulate": True, "simulated_cycle": str(cycle)}) as (process, key):
        broker = process.broker

        def driving() -> bool:
            speed = broker.get("Vehicle.Speed", ALLOW_ALL)
            return speed is not None and speed.value is not None and float(speed.value) > 40

        await asyncio.wait_for(broker.changed.wait_until(driving), 30)  # the feeder reports the drive
        liar = mint_token(key, f"provide:data:Vehicle.Speed actuate:{trunk}", subject="app:liar")
        standstill = v.PublishValueRequest(
            signal_id=t.SignalID(path="Vehicle.Speed"), data_point=t.Datapoint(value=t.Value(float=0.0))
        )
        open_trunk = v.ActuateRequest(signal_id=t.SignalID(path=trunk), value=t.Value(bool=True))
        async with grpc.aio.insecure_channel(process.server.target) as channel:
            val = val_pb2_grpc.VALStub(channel)
            metadata = [("authorization", f"Bearer {liar}")]
            refusals = []
            for _ in range(10):
                await val.PublishValue(standstill, metadata=metadata)  # accepted: it may provide data
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await val.Actuate(open_trunk, metadata=metadata)
                refusals.append(refused.value)
        assert all(r.code() is grpc.StatusCode.PERMISSION_DENIED for r in refusals)
        assert all("needs Vehicle.Speed < 3" in (r.details() or "") for r in refusals), refusals[0].details()
        guard = broker.guard
        assert isinstance(guard, ActuationGuard) and guard.untrusted_updates >= 10


def _other_key() -> bytes:
    from opensdv.vehicle.broker import generate_key_pair

    return generate_key_pair("ES256")[0]


def test_the_guard_judges_age_and_rate_by_arrival_not_by_the_providers_stamp() -> None:
    """A value stamped in the past but arriving now is as old as its stamp; a jump stamped as if
    it took a minute is judged by how fast it arrived."""
    from opensdv.model.vss import load_default_vss
    from opensdv.vehicle.broker import Broker, Permissions, vehicle_source
    from opensdv.vehicle.safety import ActuationGuard, SafetyDenied, load_policy

    now = [1_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    broker = Broker(load_default_vss(), clock=clock, guard=ActuationGuard(load_policy(), clock))
    trunk = "Vehicle.Body.Trunk.Rear.IsOpen"
    body = broker.register_provider(Permissions.from_scope("provide"), "body-ecu")
    body.claim([trunk])
    speed = vehicle_source("provide:data:Vehicle.Speed", subject="speed-sensor")
    app = Permissions.from_scope(f"actuate:{trunk}", subject="app:trunk")
    broker.publish({"Vehicle.Speed": 0.0}, speed, timestamp=now[0] - 60)  # a replayed old reading
    with pytest.raises(SafetyDenied, match="stale"):
        broker.actuate({trunk: True}, app)
    broker.publish({"Vehicle.Speed": 120.0}, speed, timestamp=now[0] - 60)
    broker.publish({"Vehicle.Speed": 0.0}, speed, timestamp=now[0])  # 120 -> 0 "over a minute", arriving at once
    with pytest.raises(SafetyDenied, match="jumped implausibly"):
        broker.actuate({trunk: True}, app)


async def test_a_subscription_flood_is_refused_and_others_keep_their_service(tmp_path: Path) -> None:
    """One client with read scope opens Subscribe streams it never reads: past its cap the broker
    says RESOURCE_EXHAUSTED, past the broker's cap everyone does; another client still reads, and
    closed streams give their places back."""
    async with _running_car(tmp_path, max_subscriptions=30, max_subscriptions_per_client=20) as (process, key):
        flooder = [("authorization", f"Bearer {mint_token(key, 'read', subject='app:flood')}")]
        other = [("authorization", f"Bearer {mint_token(key, 'read', subject='app:other')}")]
        request = v.SubscribeRequest(signal_paths=["Vehicle.Speed"])
        async with grpc.aio.insecure_channel(process.server.target) as channel:
            val = val_pb2_grpc.VALStub(channel)

            async def opened(metadata: list[tuple[str, str]]) -> tuple[object, grpc.StatusCode]:
                stream = val.Subscribe(request, metadata=metadata)
                try:
                    await stream.read()  # the first update (current values): the stream is held
                except grpc.aio.AioRpcError as exc:
                    return stream, exc.code()
                return stream, grpc.StatusCode.OK

            held = [await opened(flooder) for _ in range(20)]
            assert all(code is grpc.StatusCode.OK for _, code in held)
            _, refused = await opened(flooder)
            assert refused is grpc.StatusCode.RESOURCE_EXHAUSTED  # its own cap
            others = [await opened(other) for _ in range(10)]  # the broker's cap: 30 in all
            assert all(code is grpc.StatusCode.OK for _, code in others)
            _, full = await opened(other)
            assert full is grpc.StatusCode.RESOURCE_EXHAUSTED
            read = v.GetValueRequest(signal_id=t.SignalID(path="Vehicle.Speed"))
            assert await _code(val.GetValue, read, other[0][1].removeprefix("Bearer ")) is grpc.StatusCode.OK
            for stream, _ in held:
                stream.cancel()  # type: ignore[attr-defined]
            await asyncio.wait_for(process.broker.changed.wait_until(
                lambda: process.broker.statistics().subscriptions <= 10
            ), 10)  # fmt: skip
            again, code = await opened(flooder)
            assert code is grpc.StatusCode.OK  # places given back
            again.cancel()  # type: ignore[attr-defined]
            for stream, _ in others:
                stream.cancel()  # type: ignore[attr-defined]
