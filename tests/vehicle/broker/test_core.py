"""The broker core, in-process: values, subscriptions, providers, actuation, staleness, state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opensdv.model.vss import load_default_vss
from opensdv.vehicle.broker import (
    ALLOW_ALL,
    AlreadyExists,
    Broker,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Permissions,
    StateFile,
    StateFileError,
    Unavailable,
)

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
START_STOP = "Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging"


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def broker(clock: FakeClock) -> Broker:
    return Broker(load_default_vss(), clock=clock, stale_after=5.0)


def test_publish_then_get(broker: Broker, clock: FakeClock) -> None:
    assert broker.get(SPEED, ALLOW_ALL) is None
    broker.publish({SPEED: 42, SOC: 80.5}, ALLOW_ALL)
    point = broker.get(SPEED, ALLOW_ALL)
    assert point is not None and point.value == 42.0 and point.timestamp == clock.now
    assert isinstance(point.value, float)


def test_a_rejected_value_changes_nothing(broker: Broker) -> None:
    broker.publish({SPEED: 10.0, SOC: 50.0}, ALLOW_ALL)
    with pytest.raises(InvalidArgument, match=r"StateOfCharge.Current: above the maximum 100.0 \(got 120\)"):
        broker.publish({SPEED: 20.0, SOC: 120}, ALLOW_ALL)
    assert broker.get(SPEED, ALLOW_ALL).value == 10.0  # type: ignore[union-attr]
    assert broker.statistics().rejected_values == 1


@pytest.mark.parametrize(
    ("path", "value", "error", "message"),
    [
        ("Vehicle.Nope", 1, NotFound, "unknown VSS path 'Vehicle.Nope'"),
        ("Vehicle." + "X" * 1000, 1, InvalidArgument, "path longer than 1000 characters"),
        (SPEED, "fast", InvalidArgument, "expected a number"),
        (LIMIT, 101, InvalidArgument, "above the maximum 100"),
        (START_STOP, "GO", InvalidArgument, "not one of the allowed values"),
        ("", 1, InvalidArgument, "empty path"),
    ],
)
def test_bad_publishes(
    broker: Broker, path: str, value: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        broker.publish({path: value}, ALLOW_ALL)


async def test_subscribe_gets_initial_values_then_changes(broker: Broker) -> None:
    broker.publish({SPEED: 5.0}, ALLOW_ALL)
    subscription = broker.subscribe([SPEED, SOC], ALLOW_ALL)
    first = await subscription.wait_update()
    assert first[SPEED].value == 5.0 and first[SOC] is None  # type: ignore[union-attr]
    broker.publish({SOC: 70.0}, ALLOW_ALL)
    broker.publish({"Vehicle.IsMoving": True}, ALLOW_ALL)  # not subscribed: not delivered
    assert dict(await subscription.wait_update()).keys() == {SOC}
    assert subscription.get_nowait() is None
    subscription.close()
    assert broker.statistics().subscriptions == 0


async def test_slow_subscriber_drops_oldest_and_counts(broker: Broker) -> None:
    subscription = broker.subscribe([SPEED], ALLOW_ALL, buffer_size=3)
    for speed in range(10):
        broker.publish({SPEED: float(speed)}, ALLOW_ALL)
    assert subscription.dropped == 8  # the initial value plus 7 updates fell out of a 3-item buffer
    seen = [update[SPEED].value async for update in _take(subscription, 3)]  # type: ignore[union-attr]
    assert seen == [7.0, 8.0, 9.0]  # the newest survive
    assert broker.get(SPEED, ALLOW_ALL).value == 9.0  # type: ignore[union-attr]
    assert broker.statistics().dropped_updates == 8


async def _take(subscription, count):  # type: ignore[no-untyped-def]
    for _ in range(count):
        yield await subscription.wait_update()


def test_subscribe_rejects_unknown_paths_unless_asked(broker: Broker) -> None:
    with pytest.raises(NotFound):
        broker.subscribe([SPEED, "Vehicle.Nope"], ALLOW_ALL)
    subscription = broker.subscribe([SPEED, "Vehicle.Nope"], ALLOW_ALL, ignore_unknown=True)
    assert subscription.paths == (SPEED,) and subscription.unknown_paths == ("Vehicle.Nope",)
    with pytest.raises(InvalidArgument, match="buffer_size must be 0..1000"):
        broker.subscribe([SPEED], ALLOW_ALL, buffer_size=5000)


async def test_actuation_reaches_the_claiming_provider(broker: Broker) -> None:
    with pytest.raises(Unavailable, match=f"no provider is connected for {LIMIT}"):
        broker.actuate({LIMIT: 80}, ALLOW_ALL)
    provider = broker.register_provider(ALLOW_ALL, "bms")
    provider.claim([LIMIT, START_STOP])
    broker.actuate({LIMIT: 80, START_STOP: "START"}, ALLOW_ALL)
    assert await provider.wait_actuation() == {LIMIT: 80, START_STOP: "START"}
    other = broker.register_provider(ALLOW_ALL, "intruder")
    with pytest.raises(AlreadyExists, match="already provided by bms"):
        other.claim([LIMIT])


def test_batch_actuation_is_all_or_nothing(broker: Broker) -> None:
    provider = broker.register_provider(ALLOW_ALL, "bms")
    provider.claim([LIMIT])
    with pytest.raises(Unavailable):
        broker.actuate({LIMIT: 80, START_STOP: "START"}, ALLOW_ALL)  # START_STOP has no provider
    with pytest.raises(InvalidArgument, match="not an actuator"):
        broker.actuate({LIMIT: 80, SPEED: 3.0}, ALLOW_ALL)
    with pytest.raises(InvalidArgument, match="above the maximum"):
        broker.actuate({LIMIT: 180}, ALLOW_ALL)
    assert provider.get_actuation_nowait() is None


def test_disconnect_releases_claims_and_marks_signals_stale(broker: Broker, clock: FakeClock) -> None:
    provider = broker.register_provider(ALLOW_ALL, "bms")
    provider.claim([LIMIT])
    provider.publish({SOC: 60.0})
    assert not broker.is_stale(SOC)
    provider.close()
    assert broker.is_stale(SOC)
    with pytest.raises(Unavailable):
        broker.actuate({LIMIT: 80}, ALLOW_ALL)
    successor = broker.register_provider(ALLOW_ALL, "bms-2")
    successor.claim([LIMIT])  # the claim was released
    successor.publish({SOC: 61.0})
    assert not broker.is_stale(SOC)


def test_stale_after_uses_the_injected_clock(broker: Broker, clock: FakeClock) -> None:
    broker.publish({SPEED: 1.0, "Vehicle.VehicleIdentification.VIN": "SJNFAAZE1U0000001"}, ALLOW_ALL)
    clock.now += 4.9
    assert not broker.is_stale(SPEED)
    clock.now += 0.2
    assert broker.is_stale(SPEED)
    assert not broker.is_stale("Vehicle.VehicleIdentification.VIN")  # attributes do not age


def test_permissions_are_checked_on_every_path(broker: Broker) -> None:
    reader = Permissions.from_scope(f"read:{SPEED}")
    broker.publish({SPEED: 3.0}, ALLOW_ALL)
    assert broker.get(SPEED, reader).value == 3.0  # type: ignore[union-attr]
    with pytest.raises(PermissionDenied, match=f"read access to {SOC}"):
        broker.get(SOC, reader)
    with pytest.raises(PermissionDenied, match="provide:data access"):
        broker.publish({SPEED: 4.0}, reader)
    with pytest.raises(PermissionDenied):
        broker.subscribe([SPEED, SOC], reader)
    actuator = Permissions.from_scope("actuate:Vehicle.Powertrain.TractionBattery.Charging")
    provider = broker.register_provider(ALLOW_ALL)
    provider.claim([LIMIT])
    broker.actuate({LIMIT: 70}, actuator)
    with pytest.raises(PermissionDenied):
        broker.actuate({"Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": False}, actuator)
    with pytest.raises(PermissionDenied, match="provide:actuation"):
        broker.register_provider(reader).claim([LIMIT])


def test_attribute_defaults_are_served(tmp_path: Path) -> None:
    overlay = tmp_path / "o.yaml"
    overlay.write_text("Vehicle.Cabin.DoorCount: {default: 5}\n")
    from opensdv.model.vss import default_catalog_path, load_vss

    broker = Broker(load_vss(default_catalog_path(), overlay))
    assert broker.get("Vehicle.Cabin.DoorCount", ALLOW_ALL).value == 5  # type: ignore[union-attr]


def test_state_survives_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "state.json"
    first = Broker(load_default_vss(), clock=clock)
    state = StateFile(path, first)
    first.publish({SPEED: 33.0, "Vehicle.VehicleIdentification.VIN": "SJNFAAZE1U0000001"}, ALLOW_ALL)
    state.save()
    second = Broker(load_default_vss(), clock=clock)
    assert StateFile(path, second).load() == []
    assert second.get(SPEED, ALLOW_ALL) == first.get(SPEED, ALLOW_ALL)
    assert second.get("Vehicle.VehicleIdentification.VIN", ALLOW_ALL).value == "SJNFAAZE1U0000001"  # type: ignore[union-attr]


def test_state_file_problems(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps({"version": 1, "values": {"Vehicle.Gone": [1, 0], SPEED: ["fast", 0], SOC: [50.0, 1.0]}})
    )
    broker = Broker(load_default_vss())
    skipped = StateFile(path, broker).load()
    assert skipped == ["Vehicle.Gone: no longer in the catalog", f"{SPEED}: expected a number (float)"]
    assert broker.get(SOC, ALLOW_ALL).value == 50.0  # type: ignore[union-attr]
    path.write_text("{not json")
    with pytest.raises(StateFileError, match="cannot read the state file"):
        StateFile(path, broker).load()
    path.write_text("[]")
    with pytest.raises(StateFileError, match="not an OpenSDV state file"):
        StateFile(path, broker).load()
