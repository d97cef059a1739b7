"""The app SDK against a real broker over gRPC: typed signals, errors, reconnects, the app life cycle."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import opensdv.vehicle.apps.vehicle_model as shipped_model
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.apps import (
    SignalDenied,
    SignalNotFound,
    SignalUnavailable,
    Vehicle,
    VehicleApp,
    VehicleClient,
    every,
    on_change,
)
from opensdv.vehicle.apps.model import generate_model, python_name
from opensdv.vehicle.apps.testing import app_broker
from opensdv.vehicle.broker import ALLOW_ALL, BrokerServer, TokenVerifier, generate_key_pair, mint_token

SPEED = "Vehicle.Speed"
LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
GEAR = "Vehicle.Powertrain.Transmission.SelectedGear"


async def test_typed_signals_get_subscribe_and_actuate() -> None:
    async with app_broker() as server, VehicleClient(server.target) as client:
        provider = server.broker.register_provider(ALLOW_ALL, "charger")
        provider.claim([LIMIT])
        server.broker.publish({SPEED: 42.5}, ALLOW_ALL)
        vehicle = Vehicle(client)

        assert await vehicle.speed.get() == 42.5
        await vehicle.powertrain.traction_battery.charging.charge_limit.actuate(80)
        assert await provider.wait_actuation() == {LIMIT: 80}

        updates = vehicle.speed.subscribe()
        assert await anext(updates) == 42.5
        server.broker.publish({SPEED: 50.0}, ALLOW_ALL)
        assert await anext(updates) == 50.0
        await updates.aclose()


async def test_errors_say_which_signal_and_why() -> None:
    private, public = generate_key_pair("ES256")
    async with app_broker(verifier=TokenVerifier([public])) as server:
        server.broker.register_provider(ALLOW_ALL, "gearbox").claim([GEAR])
        reader = mint_token(private, f"read:{SPEED} actuate:{LIMIT} actuate:{GEAR}", subject="eco-coach")
        async with VehicleClient(server.target, reader) as client:
            with pytest.raises(SignalNotFound, match="Vehicle.Nope"):
                await client.get("Vehicle.Nope")
            with pytest.raises(SignalUnavailable, match="no provider is connected"):
                await client.actuate(LIMIT, 80)
            with pytest.raises(SignalDenied, match="not for apps"):  # the safety guard, through the SDK
                await client.actuate(GEAR, 1)
            with pytest.raises(SignalDenied):
                await client.get(
                    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
                )  # not in its scope


async def test_subscriptions_survive_a_broker_restart() -> None:
    async with app_broker() as first:
        broker, port = first.broker, first.port
        client = VehicleClient(first.target, reconnect_delays_s=(0.05,) * 40)
        broker.publish({SPEED: 1.0}, ALLOW_ALL)
        updates = client.subscribe(SPEED)
        assert (await anext(updates))[SPEED] == 1.0
    # the broker process restarts on the same port with the same state
    second = BrokerServer(broker, f"127.0.0.1:{port}")
    await second.start()
    try:
        pending = asyncio.ensure_future(anext(updates))
        broker.publish({SPEED: 2.0}, ALLOW_ALL)
        seen = (await asyncio.wait_for(pending, 10))[SPEED]
        assert seen in (1.0, 2.0)  # the re-subscription opens with the current value
        assert client.reconnects >= 1
    finally:
        await updates.aclose()
        await client.close()
        await second.stop(0)


class Recorder(VehicleApp):
    def __init__(self, client: VehicleClient, settings: dict[str, object] | None = None) -> None:
        super().__init__(client, settings)
        self.speeds: list[float] = []
        self.ticks = 0
        self.started = asyncio.Event()
        self.first_speed = asyncio.Event()

    async def on_start(self) -> None:
        self.started.set()

    @on_change(SPEED)
    async def speed(self, values: dict[str, float]) -> None:
        self.speeds.append(values[SPEED])
        self.first_speed.set()
        if values[SPEED] < 0:
            raise ValueError("a bug in the handler")  # logged; the app keeps running
        if len(self.speeds) == 3:
            self.stop()

    @every(0.01)
    async def tick(self) -> None:
        self.ticks += 1


async def test_app_life_cycle_with_handlers() -> None:
    async with app_broker() as server:
        server.broker.publish({SPEED: 10.0}, ALLOW_ALL)
        app = Recorder(VehicleClient(server.target))
        running = asyncio.create_task(app.run())
        await app.started.wait()
        await app.first_speed.wait()  # the subscription delivers the current value first
        server.broker.publish({SPEED: -1.0}, ALLOW_ALL)
        server.broker.publish({SPEED: 30.0}, ALLOW_ALL)
        await asyncio.wait_for(running, 10)
    assert app.speeds == [10.0, -1.0, 30.0]


def test_the_shipped_typed_model_is_generated_from_the_shipped_catalog() -> None:
    assert Path(shipped_model.__file__).read_text() == generate_model(load_default_vss())


@pytest.mark.parametrize(
    ("segment", "name"),
    [
        ("TractionBattery", "traction_battery"),
        ("Row1", "row1"),
        ("HVAC", "hvac"),
        ("IsOpen", "is_open"),
        ("Class", "class_"),
    ],
)
def test_python_names(segment: str, name: str) -> None:
    assert python_name(segment) == name
