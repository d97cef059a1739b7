"""The three shipped example apps, unchanged, on a ``vehicle run`` of each brand (as the demo runs
its cars): twins driving their cycles, signals arriving as each brand's CAN frames, actuations
leaving as CAN frames."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from opensdv.demo.vehicles import DEMO_CYCLES, DemoCar, demo_vin
from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.apps import VehicleApp, VehicleClient
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.host import load_app_class
from opensdv.vehicle.apps.manifest import load_manifest
from opensdv.vehicle.broker import ALLOW_ALL
from opensdv.vehicle.process import VehicleLayout
from opensdv.vehicle.provision import initialise_vehicle

CHARGING = "Vehicle.Powertrain.TractionBattery.Charging"
CONDITIONING = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"
BRANDS = ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"]
sys.path[:0] = [str(EXAMPLES / "departure-charge"), str(EXAMPLES / "battery-preconditioning")]
from battery_preconditioning import conditioning_mode  # noqa: E402
from departure_charge import charging_hours  # noqa: E402


@asynccontextmanager
async def _running_car(vehicle_id: str, directory: Path) -> AsyncIterator[DemoCar]:
    """One unlinked car (no cloud, no OTA): its broker, safety guard and a twin on a virtual bus."""
    vehicle = load_catalog().vehicle(vehicle_id)
    vin = demo_vin(vehicle, 1)
    layout = VehicleLayout(directory / vin)
    initialise_vehicle(vin, vehicle, layout)
    cycle = DEMO_CYCLES[vehicle.definition.brand]
    car = DemoCar.configure(vehicle, vin, layout, port=0, mqtt_url=None, ota_url=None, cycle=cycle)
    stop = asyncio.Event()
    task = asyncio.create_task(car.process.run(stop))
    await asyncio.wait_for(car.process.started.wait(), 30)
    try:
        yield car
    finally:
        stop.set()
        await task


def _app(name: str, car: DemoCar, **settings: Any) -> VehicleApp:
    directory = EXAMPLES / name
    manifest = load_manifest(directory)
    app_class = load_app_class(directory, manifest)
    token = car.token(manifest.scope(), manifest.name)  # exactly its manifest's rights, as the runtime gives
    return app_class(VehicleClient(car.process.server.target, token), {**manifest.settings, **settings})


async def _until(car: DemoCar, condition: Any, timeout_s: float = 20.0) -> None:
    """Until ``condition()`` holds, re-checked after each change of the car's broker."""
    async with asyncio.timeout(timeout_s):
        await car.process.broker.changed.wait_until(condition)


@pytest.mark.parametrize("vehicle_id", BRANDS)
async def test_all_three_example_apps_run_unchanged_on_each_brand(vehicle_id: str, tmp_path: Path) -> None:
    async with _running_car(vehicle_id, tmp_path) as item:
        await _three_apps(item)


async def _three_apps(item: DemoCar) -> None:
    charge = _app("departure-charge", item)
    warm = _app("battery-preconditioning", item, fast_charge_below_soc=99.0, target_temperature=45.0)
    coach = _app("eco-coach", item)
    tasks = [asyncio.create_task(app.run()) for app in (charge, warm, coach)]
    try:
        before = item.process.feeder.stats.actuation_frames if item.process.feeder else 0
        await _until(item, lambda: item.process.broker.get_target(CONDITIONING, ALLOW_ALL) is not None)
        await _until(item, lambda: coach.ratio is not None)  # type: ignore[attr-defined]
        await charge.replan(datetime(2026, 11, 23, 23, 0))  # type: ignore[attr-defined]
        await _until(
            item, lambda: item.process.broker.get_target(f"{CHARGING}.StartStopCharging", ALLOW_ALL) is not None
        )
        assert item.process.broker.get_target(f"{CHARGING}.ChargeLimit", ALLOW_ALL).value == 80  # type: ignore[union-attr]
        assert item.process.broker.get_target(CONDITIONING, ALLOW_ALL).value == "FAST_CHARGING_PREPARATION"  # type: ignore[union-attr]
        assert coach.ratio > 0  # type: ignore[attr-defined]  # drawn / predicted while drawing power
        assert item.process.feeder is not None and item.process.feeder.stats.actuation_frames > before  # out on the CAN bus
    finally:
        for app in (charge, warm, coach):
            app.stop()
        await asyncio.gather(*tasks)


def test_charging_goes_to_the_cheapest_hours_before_departure() -> None:
    tariff = [0.12] * 7 + [0.30] * 16 + [0.12]
    assert charging_hours(50, 80, 18, 7, 40.0, 6.6, tariff) == [0, 23]  # 2 h needed: the first cheap ones
    assert charging_hours(79.5, 80, 18, 7, 40.0, 6.6, tariff) == [23]
    assert charging_hours(80, 80, 18, 7, 40.0, 6.6, tariff) == []


def test_preconditioning_only_when_driving_low_and_cold() -> None:
    assert conditioning_mode(80, 20, 10, 25, 30) == "FAST_CHARGING_PREPARATION"
    assert conditioning_mode(0, 20, 10, 25, 30) == "INACTIVE"  # parked: not on the way to a charger
    assert conditioning_mode(80, 40, 10, 25, 30) == "INACTIVE"
    assert conditioning_mode(80, 20, 27, 25, 30) == "INACTIVE"
