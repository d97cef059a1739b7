"""The three shipped example apps, unchanged, on the three brands' demo cars: twins driving their
cycles, signals arriving as each brand's CAN frames, actuations leaving as CAN frames."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import Any

import pytest

from opensdv.demo.vehicles import DemoVehicle, start_demo_vehicles, stop_demo_vehicles
from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.apps import VehicleApp, VehicleClient
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.host import load_app_class
from opensdv.vehicle.apps.manifest import load_manifest
from opensdv.vehicle.broker import ALLOW_ALL

CHARGING = "Vehicle.Powertrain.TractionBattery.Charging"
CONDITIONING = "Vehicle.Powertrain.TractionBattery.BatteryConditioning.RequestedMode"
BRANDS = ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"]
sys.path[:0] = [str(EXAMPLES / "departure-charge"), str(EXAMPLES / "battery-preconditioning")]
from battery_preconditioning import conditioning_mode  # noqa: E402
from departure_charge import charging_hours  # noqa: E402


def _app(name: str, item: DemoVehicle, **settings: Any) -> VehicleApp:
    directory = EXAMPLES / name
    manifest = load_manifest(directory)
    app_class = load_app_class(directory, manifest)
    token = item.token(manifest.scope(), manifest.name)  # exactly its manifest's rights, as the runtime gives
    return app_class(VehicleClient(item.server.target, token), {**manifest.settings, **settings})


async def _until(item: DemoVehicle, condition: Any, timeout_s: float = 20.0) -> None:
    """Until ``condition()`` holds, re-checked after each change of the car's broker."""
    async with asyncio.timeout(timeout_s):
        await item.broker.changed.wait_until(condition)


@pytest.mark.parametrize("vehicle_id", BRANDS)
async def test_all_three_example_apps_run_unchanged_on_each_brand(vehicle_id: str) -> None:
    (item,) = await start_demo_vehicles([load_catalog().vehicle(vehicle_id)], base_port=0)
    charge = _app("departure-charge", item)
    warm = _app("battery-preconditioning", item, fast_charge_below_soc=99.0, target_temperature=45.0)
    coach = _app("eco-coach", item)
    tasks = [asyncio.create_task(app.run()) for app in (charge, warm, coach)]
    try:
        before = item.feeder.stats.actuation_frames if item.feeder else 0
        await _until(item, lambda: item.broker.get_target(CONDITIONING, ALLOW_ALL) is not None)
        await _until(item, lambda: coach.ratio is not None)  # type: ignore[attr-defined]
        await charge.replan(datetime(2026, 11, 23, 23, 0))  # type: ignore[attr-defined]
        await _until(
            item, lambda: item.broker.get_target(f"{CHARGING}.StartStopCharging", ALLOW_ALL) is not None
        )
        assert item.broker.get_target(f"{CHARGING}.ChargeLimit", ALLOW_ALL).value == 80  # type: ignore[union-attr]
        assert item.broker.get_target(CONDITIONING, ALLOW_ALL).value == "FAST_CHARGING_PREPARATION"  # type: ignore[union-attr]
        assert coach.ratio > 0  # type: ignore[attr-defined]  # drawn / predicted while drawing power
        assert item.feeder is not None and item.feeder.stats.actuation_frames > before  # out on the CAN bus
    finally:
        for app in (charge, warm, coach):
            app.stop()
        await asyncio.gather(*tasks)
        await stop_demo_vehicles([item])


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
