"""``sdv.databroker.v1`` (Broker and Collector) over the wire, with raw stubs generated from the
vendored protos: what the Velocitas SDK and v1-era providers send."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.model.query import QueryError, compile_query
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.broker import ALLOW_ALL, mint_token
from opensdv.vehicle.broker._permissions import vehicle_source
from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2 as api
from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2_grpc, collector_pb2_grpc
from opensdv.vehicle.broker.grpc.sdv_v1 import collector_pb2 as collector
from opensdv.vehicle.broker.grpc.sdv_v1 import types_pb2 as sdv
from opensdv.vehicle.safety import ActuationGuard, load_policy
from tests.vehicle.broker.conftest import RunningBroker, start_broker

SPEED = "Vehicle.Speed"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
WINDOW = "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"
CATALOG = load_default_vss()


def stubs(running: RunningBroker) -> tuple[grpc.Channel, broker_pb2_grpc.BrokerStub, collector_pb2_grpc.CollectorStub]:
    channel = grpc.insecure_channel(running.target)
    return channel, broker_pb2_grpc.BrokerStub(channel), collector_pb2_grpc.CollectorStub(channel)


def test_get_answers_every_name_with_a_value_or_a_failure(running: RunningBroker) -> None:
    running.call(running.broker.publish, {SPEED: 42.5}, ALLOW_ALL)
    channel, broker, _ = stubs(running)
    with channel:
        reply = broker.GetDatapoints(api.GetDatapointsRequest(datapoints=[SPEED, LIMIT, "Vehicle.Nope"]))
        assert reply.datapoints[SPEED].float_value == 42.5
        assert reply.datapoints[SPEED].timestamp.seconds > 0
        assert reply.datapoints[LIMIT].failure_value == sdv.Datapoint.NOT_AVAILABLE
        assert reply.datapoints["Vehicle.Nope"].failure_value == sdv.Datapoint.UNKNOWN_DATAPOINT
        with pytest.raises(grpc.RpcError) as caught:
            broker.GetDatapoints(api.GetDatapointsRequest())
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_set_sets_actuator_targets_and_refuses_the_rest(running: RunningBroker) -> None:
    channel, broker, _ = stubs(running)
    with channel:
        reply = broker.SetDatapoints(api.SetDatapointsRequest(datapoints={LIMIT: sdv.Datapoint(uint32_value=80)}))
        assert dict(reply.errors) == {}
        assert running.call(running.broker.get_target, LIMIT, ALLOW_ALL).value == 80
        refused = {
            SPEED: sdv.Datapoint(float_value=10.0),  # a sensor: not through Broker
            "Vehicle.Nope": sdv.Datapoint(float_value=1.0),
            WINDOW: sdv.Datapoint(float_value=3.0),  # a uint8 sent as float
        }
        reply = broker.SetDatapoints(api.SetDatapointsRequest(datapoints=refused))
        assert dict(reply.errors) == {SPEED: sdv.ACCESS_DENIED, "Vehicle.Nope": sdv.UNKNOWN_DATAPOINT, WINDOW: sdv.INVALID_TYPE}
        reply = broker.SetDatapoints(api.SetDatapointsRequest(datapoints={LIMIT: sdv.Datapoint(uint32_value=150)}))
        assert dict(reply.errors) == {LIMIT: sdv.OUT_OF_BOUNDS}
        assert running.call(running.broker.get_target, LIMIT, ALLOW_ALL).value == 80  # nothing changed


def test_subscribe_sends_rows_while_the_condition_holds(running: RunningBroker) -> None:
    running.call(running.broker.publish, {SPEED: 30.0, DOOR: False}, ALLOW_ALL)
    query = f"SELECT {SPEED}, {WINDOW} AS window, ({SPEED} = 0) AS parked WHERE {SPEED} < 20 AND NOT {DOOR}"
    channel, broker, _ = stubs(running)
    with channel:
        stream = broker.Subscribe(api.SubscribeRequest(query=query))
        running.wait_until(lambda b: b.statistics().subscriptions == 1)
        running.call(running.broker.publish, {SPEED: 25.0}, ALLOW_ALL)  # still false: nothing sent
        running.call(running.broker.publish, {SPEED: 0.0}, ALLOW_ALL)
        first = next(stream)
        assert first.fields[SPEED].float_value == 0.0
        assert first.fields["window"].failure_value == sdv.Datapoint.NOT_AVAILABLE
        assert first.fields["parked"].bool_value is True
        running.call(running.broker.publish, {WINDOW: 40}, ALLOW_ALL)  # a selected signal changed
        second = next(stream)
        assert second.fields["window"].uint32_value == 40 and second.fields["parked"].bool_value is True
        running.call(running.broker.publish, {DOOR: True}, ALLOW_ALL)  # condition false again
        running.call(running.broker.publish, {SPEED: 5.0, DOOR: False}, ALLOW_ALL)
        third = next(stream)
        assert third.fields[SPEED].float_value == 5.0 and third.fields["parked"].bool_value is False
        stream.cancel()


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("SELECT Vehicle.Nope", "unknown VSS path 'Vehicle.Nope'"),
        (f"SELECT {SPEED} WHERE {SPEED} > 'fast'", "cannot compare a number with a string"),
        (f"SELECT {SPEED} WHERE {SPEED}", "WHERE needs a condition"),
        (f"SELECT LAG({SPEED})", "LAG() is not supported"),
        (f"SELECT {SPEED} FROM Vehicle", "unexpected 'FROM'"),
    ],
)
def test_a_bad_query_is_invalid_argument_with_its_position(running: RunningBroker, query: str, problem: str) -> None:
    channel, broker, _ = stubs(running)
    with channel, pytest.raises(grpc.RpcError) as caught:
        next(broker.Subscribe(api.SubscribeRequest(query=query)))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert problem in caught.value.details() and "at character" in caught.value.details()


def test_metadata_by_name_or_all(running: RunningBroker) -> None:
    channel, broker, _ = stubs(running)
    with channel:
        reply = broker.GetMetadata(api.GetMetadataRequest(names=[LIMIT, "Vehicle.Nope"]))
        (limit,) = reply.list
        assert limit.name == LIMIT and limit.data_type == sdv.UINT8 and limit.entry_type == sdv.ENTRY_TYPE_ACTUATOR
        assert limit.change_type == sdv.ON_CHANGE and limit.max.uint32 == 100
        assert limit.id == CATALOG.leaf(LIMIT).id
        assert len(broker.GetMetadata(api.GetMetadataRequest()).list) == len(CATALOG)


def test_collector_registers_and_publishes_by_id(running: RunningBroker) -> None:
    channel, _, collect = stubs(running)
    with channel:
        registration = collector.RegistrationMetadata(name=SPEED, data_type=sdv.FLOAT, change_type=sdv.CONTINUOUS)
        ids = collect.RegisterDatapoints(collector.RegisterDatapointsRequest(list=[registration])).results
        assert dict(ids) == {SPEED: CATALOG.leaf(SPEED).id}
        reply = collect.UpdateDatapoints(collector.UpdateDatapointsRequest(datapoints={ids[SPEED]: sdv.Datapoint(float_value=12.0)}))
        assert dict(reply.errors) == {}
        assert running.call(running.broker.get, SPEED, ALLOW_ALL).value == 12.0
        bad = {ids[SPEED]: sdv.Datapoint(float_value=13.0), 999_999: sdv.Datapoint(float_value=1.0)}
        reply = collect.UpdateDatapoints(collector.UpdateDatapointsRequest(datapoints=bad))
        assert dict(reply.errors) == {999_999: sdv.UNKNOWN_DATAPOINT}
        assert running.call(running.broker.get, SPEED, ALLOW_ALL).value == 12.0  # all or nothing
        requests = iter([
            collector.StreamDatapointsRequest(datapoints={ids[SPEED]: sdv.Datapoint(float_value=14.0)}),
            collector.StreamDatapointsRequest(datapoints={ids[SPEED]: sdv.Datapoint(string_value="fast")}),
        ])  # fmt: skip
        (only,) = list(collect.StreamDatapoints(requests))  # a reply only for what was refused
        assert dict(only.errors) == {ids[SPEED]: sdv.INVALID_TYPE}
        assert running.call(running.broker.get, SPEED, ALLOW_ALL).value == 14.0
        for wrong in (collector.RegistrationMetadata(name="Vehicle.Nope", data_type=sdv.FLOAT),
                      collector.RegistrationMetadata(name=SPEED, data_type=sdv.STRING)):  # fmt: skip
            with pytest.raises(grpc.RpcError) as caught:
                collect.RegisterDatapoints(collector.RegisterDatapointsRequest(list=[wrong]))
            assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_tokens_scope_every_call(secured: RunningBroker, rsa_keys: tuple[bytes, bytes]) -> None:
    secured.call(secured.broker.publish, {SPEED: 3.0}, ALLOW_ALL)
    channel, broker, collect = stubs(secured)
    reader = (("authorization", f"Bearer {mint_token(rsa_keys[0], 'read:Vehicle.Speed')}"),)
    with channel:
        with pytest.raises(grpc.RpcError) as caught:
            broker.GetDatapoints(api.GetDatapointsRequest(datapoints=[SPEED]))  # no token
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        reply = broker.GetDatapoints(api.GetDatapointsRequest(datapoints=[SPEED, LIMIT]), metadata=reader)
        assert reply.datapoints[SPEED].float_value == 3.0
        assert reply.datapoints[LIMIT].failure_value == sdv.Datapoint.ACCESS_DENIED
        reply = broker.SetDatapoints(api.SetDatapointsRequest(datapoints={LIMIT: sdv.Datapoint(uint32_value=70)}), metadata=reader)
        assert dict(reply.errors) == {LIMIT: sdv.ACCESS_DENIED}
        assert [m.name for m in broker.GetMetadata(api.GetMetadataRequest(), metadata=reader).list] == [SPEED]
        registration = collector.RegistrationMetadata(name=SPEED, data_type=sdv.FLOAT)
        with pytest.raises(grpc.RpcError) as caught:
            collect.RegisterDatapoints(collector.RegisterDatapointsRequest(list=[registration]), metadata=reader)
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as caught:
            next(broker.Subscribe(api.SubscribeRequest(query=f"SELECT {SPEED} WHERE {LIMIT} > 50"), metadata=reader))
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED  # a condition reads too


def test_the_safety_guard_decides_velocitas_sets_too() -> None:
    running = start_broker(guard=ActuationGuard(load_policy(), time.time))
    try:
        channel, broker, _ = stubs(running)
        with channel:
            trunk = api.SetDatapointsRequest(datapoints={TRUNK: sdv.Datapoint(bool_value=True)})
            assert dict(broker.SetDatapoints(trunk).errors) == {TRUNK: sdv.ACCESS_DENIED}  # speed unknown
            running.call(running.broker.publish, {SPEED: 0.0}, vehicle_source())
            assert dict(broker.SetDatapoints(trunk).errors) == {}
            assert running.call(running.broker.get_target, TRUNK, ALLOW_ALL).value is True
            running.call(running.broker.publish, {SPEED: 50.0}, vehicle_source())
            assert dict(broker.SetDatapoints(trunk).errors) == {TRUNK: sdv.ACCESS_DENIED}
    finally:
        running.stop()


@given(st.text(max_size=200))
def test_any_query_text_compiles_or_is_a_query_error(text: str) -> None:
    try:
        query = compile_query(text, CATALOG)
    except QueryError:
        return
    assert query.paths and all(path in CATALOG for path in query.paths)


@given(st.lists(st.sampled_from(["SELECT", SPEED, "WHERE", "AND", "OR", "NOT", "(", ")", "=", "<", ">", "1", "'a'", "TRUE", ",", "AS", "x", "BETWEEN"]), max_size=30))
def test_any_token_sequence_compiles_or_is_a_query_error(tokens: list[str]) -> None:
    text = " ".join(tokens)
    try:
        query = compile_query(text, CATALOG)
    except QueryError:
        return
    row = query.row({SPEED: 1.0})
    assert row is None or set(row) == {item.name for item in query.items}


def test_the_committed_stubs_are_what_the_vendored_protos_generate(tmp_path: Path) -> None:
    """scripts/generate_sdv_v1_stubs.py writes what is committed: nobody edited the generated code."""
    import importlib.util
    import shutil
    import subprocess
    import sys

    from tests.conftest import ROOT

    if importlib.util.find_spec("grpc_tools") is None:
        pytest.skip("grpcio-tools is in the dev extra")
    package = ROOT / "src" / "opensdv" / "vehicle" / "broker" / "grpc" / "sdv_v1"
    committed = {p.name: p.read_text() for p in package.glob("*_pb2*")}
    copy = tmp_path / "sdv_v1"
    shutil.copytree(package, copy)
    script = (ROOT / "scripts" / "generate_sdv_v1_stubs.py").read_text().replace(
        'PACKAGE = Path(__file__).resolve().parents[1] / "src" / "opensdv" / "vehicle" / "broker" / "grpc" / "sdv_v1"',
        f"PACKAGE = Path({str(copy)!r})",
    )
    subprocess.run([sys.executable, "-c", script], check=True, capture_output=True)
    assert {p.name: p.read_text() for p in copy.glob("*_pb2*")} == committed


async def test_a_listener_of_fixed_permissions_grants_only_them() -> None:
    """A Velocitas app's own listener: no token needed, nothing beyond its manifest's scope (a
    process that finds the port gets those rights and no more)."""
    from opensdv.vehicle.broker import Broker, BrokerServer, FixedPermissions, Permissions

    broker = Broker(CATALOG)
    broker.publish({SPEED: 20.0, "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 70.0}, ALLOW_ALL)
    scope = Permissions.from_scope(f"read:{SPEED} actuate:{WINDOW}", "window-app")
    listener = BrokerServer(broker, "127.0.0.1:0", authenticator=FixedPermissions(scope), enable_v1=False, enable_v2=False, enable_sdv_v1=True)
    async with listener, grpc.aio.insecure_channel(listener.target) as channel:
        stub = broker_pb2_grpc.BrokerStub(channel)
        soc = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
        reply = await stub.GetDatapoints(api.GetDatapointsRequest(datapoints=[SPEED, soc]))
        assert reply.datapoints[SPEED].float_value == 20.0
        assert reply.datapoints[soc].failure_value == sdv.Datapoint.ACCESS_DENIED
        refused = await stub.SetDatapoints(api.SetDatapointsRequest(datapoints={LIMIT: sdv.Datapoint(uint32_value=60)}))
        assert dict(refused.errors) == {LIMIT: sdv.ACCESS_DENIED}
        allowed = await stub.SetDatapoints(api.SetDatapointsRequest(datapoints={WINDOW: sdv.Datapoint(uint32_value=30)}))
        assert dict(allowed.errors) == {}
        with pytest.raises(grpc.aio.AioRpcError) as caught:  # kuksa.val is not served on it
            await channel.unary_unary("/kuksa.val.v2.VAL/GetServerInfo")(b"")
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
