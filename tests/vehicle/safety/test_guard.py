"""Every rule of the shipped safety policy, enforced in the broker, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kuksa.val.v2 import types_pb2 as t
from kuksa.val.v2 import val_pb2 as v
from kuksa.val.v2 import val_pb2_grpc
from kuksa_client.grpc import Datapoint as KuksaDatapoint
from kuksa_client.grpc import VSSClient, VSSClientError

from opensdv.model._files import CatalogError
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.broker import ALLOW_ALL, Broker, Permissions, vehicle_source
from opensdv.vehicle.safety import ActuationGuard, AuditTrail, SafetyDenied, load_policy
from tests.vehicle.broker.conftest import RunningBroker, start_broker

SPEED = "Vehicle.Speed"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
DOOR = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"
CABIN_TEMP = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
APP = Permissions.from_scope("read actuate", subject="eco-coach")
FEEDER = vehicle_source()  # the brand adapter's feeder: the one source of speed the guard believes


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def broker(clock: Clock) -> Broker:
    guard = ActuationGuard(load_policy(), clock, AuditTrail())
    broker = Broker(load_default_vss(), clock=clock, guard=guard)
    provider = broker.register_provider(ALLOW_ALL, "body-and-charging")
    provider.claim([LIMIT, DOOR, TRUNK, GEAR, CABIN_TEMP])
    return broker


def _guard(broker: Broker) -> ActuationGuard:
    guard = broker._guard
    assert isinstance(guard, ActuationGuard)
    return guard


def _drive(broker: Broker, clock: Clock, speed: float) -> None:
    clock.now += 0.5
    broker.publish({SPEED: speed}, FEEDER)


def test_charging_settings_any_time_with_the_limit_clamped(broker: Broker, clock: Clock) -> None:
    _drive(broker, clock, 120.0)
    broker.actuate({LIMIT: 30}, APP)
    assert broker.get_target(LIMIT, ALLOW_ALL).value == 50  # type: ignore[union-attr]
    record = _guard(broker).audit.records[-1]
    assert (record.subject, record.decision, record.value, record.reason) == (
        "eco-coach",
        "clamped",
        30,
        "to 50",
    )


def test_doors_and_trunk_only_below_3_kmh(broker: Broker, clock: Clock) -> None:
    _drive(broker, clock, 2.0)
    broker.actuate({DOOR: False}, APP)
    _drive(broker, clock, 20.0)
    with pytest.raises(SafetyDenied, match=r"needs Vehicle.Speed < 3.0, it is 20.0"):
        broker.actuate({TRUNK: True}, APP)
    audit = _guard(broker).audit.records[-1]
    assert audit.decision == "denied" and audit.path == TRUNK


def test_unknown_stale_or_jumping_speed_means_deny(broker: Broker, clock: Clock) -> None:
    with pytest.raises(SafetyDenied, match="Vehicle.Speed is unknown"):
        broker.actuate({DOOR: False}, APP)
    _drive(broker, clock, 0.0)
    clock.now += 5
    with pytest.raises(SafetyDenied, match=r"stale \(5.0 s old, limit 2 s\)"):
        broker.actuate({DOOR: False}, APP)
    _drive(broker, clock, 0.0)
    clock.now += 0.1
    broker.publish({SPEED: 100.0}, FEEDER)
    broker.publish({SPEED: 1.0}, FEEDER)  # 100 -> 1 km/h at once: a sensor fault, not braking
    with pytest.raises(SafetyDenied, match="jumped implausibly"):
        broker.actuate({DOOR: False}, APP)


def test_propulsion_controls_are_never_for_apps(broker: Broker, clock: Clock) -> None:
    _drive(broker, clock, 0.0)
    with pytest.raises(SafetyDenied, match="propulsion, gear and parking-brake controls are not for apps"):
        broker.actuate({GEAR: 1}, APP)


def test_an_app_flooding_actuations_is_rate_limited(broker: Broker, clock: Clock) -> None:
    for value in range(60, 66):
        broker.actuate({LIMIT: value}, APP)
    with pytest.raises(SafetyDenied, match="eco-coach is over 6 actuations a minute"):
        broker.actuate({LIMIT: 70}, APP)
    other = Permissions.from_scope("actuate", subject="charge-planner")
    broker.actuate({LIMIT: 70}, other)  # the limit is per caller
    clock.now += 60
    broker.actuate({LIMIT: 71}, APP)


def test_default_deny_and_bad_policy_files(tmp_path: Path, clock: Clock) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: deny\nactuators: []\n")
    guard = ActuationGuard(load_policy(policy), clock)
    with pytest.raises(SafetyDenied, match="no safety rule allows it"):
        guard.check(LIMIT, 80, "app", {})
    policy.write_text("actuators:\n  - paths: [X]\n    when: [{signal: Vehicle.Speed, below: 3}]\n")
    with pytest.raises(CatalogError, match=r"policy.yaml: \(record\): rules read \['Vehicle.Speed'\]"):
        load_policy(policy)
    policy.write_text("actuators:\n  - paths: [X]\n    colour: red\n")
    with pytest.raises(CatalogError, match=r"actuators.0.colour: Extra inputs are not permitted"):
        load_policy(policy)
    policy.write_text(
        "signals: {S: {max_age_s: 1}}\nactuators:\n  - paths: [X]\n    when: [{signal: S, below: 1, above: 0}]\n"
    )
    with pytest.raises(CatalogError, match="give exactly one of below, above, equals"):
        load_policy(policy)


@given(st.floats(min_value=-50, max_value=80, allow_nan=False))
def test_cabin_temperature_is_always_forwarded_within_16_to_30(requested: float) -> None:
    guard = ActuationGuard(load_policy(), Clock())
    assert 16 <= guard.check(CABIN_TEMP, requested, f"app-{requested}", {}) <= 30


# -- no client can bypass it: the same rules over kuksa.val v2 and v1 ---------------------------------
@pytest.fixture
def guarded() -> Iterator[RunningBroker]:
    handle = start_broker(guard=ActuationGuard(load_policy(), lambda: 1.0e12))
    yield handle
    handle.stop()


def test_denials_reach_kuksa_v2_and_v1_clients_with_the_reason(guarded: RunningBroker) -> None:
    guarded.call(lambda: guarded.broker.register_provider(ALLOW_ALL, "gearbox").claim([GEAR]))
    channel = grpc.insecure_channel(guarded.target)
    with pytest.raises(grpc.RpcError) as caught:
        val_pb2_grpc.VALStub(channel).Actuate(
            v.ActuateRequest(signal_id=t.SignalID(path=GEAR), value=t.Value(int32=1))
        )
    channel.close()
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "not for apps" in (caught.value.details() or "")
    with VSSClient("127.0.0.1", guarded.port) as client, pytest.raises(VSSClientError) as refused:
        client.set_target_values({GEAR: KuksaDatapoint(1)})
    assert refused.value.error["code"] == 403 and "not for apps" in refused.value.error["message"]
