"""Eco-driving coach: battery power now, against what the vehicle's twin needs at this speed on a
level road. The ratio, smoothed, says how much the driving style (accelerations) costs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from opensdv.model.vehicles import load_catalog
from opensdv.physics.cycles import DriveCycle
from opensdv.physics.simulate import simulate
from opensdv.vehicle.apps import VehicleApp, on_change

SPEED = "Vehicle.Speed"
VOLTAGE = "Vehicle.Powertrain.TractionBattery.CurrentVoltage"
CURRENT = "Vehicle.Powertrain.TractionBattery.CurrentCurrent"
SPEEDS_KMH = np.arange(10.0, 140.0, 10.0)
log = logging.getLogger("eco-coach")


def steady_power_w(brand: str, model: str) -> np.ndarray:
    """Pack power the twin needs at each of ``SPEEDS_KMH`` on a level road (one simulation per speed)."""
    vehicle = next(
        v for v in load_catalog().all_vehicles() if (v.definition.brand, v.definition.model) == (brand, model)
    )
    power = []
    for kmh in SPEEDS_KMH:
        time_s = np.arange(0.0, 121.0)
        cycle = DriveCycle(
            f"steady {kmh:.0f} km/h",
            "constant speed",
            time_s,
            np.full_like(time_s, kmh / 3.6),
            np.zeros_like(time_s),
        )
        result = simulate([vehicle], cycle)
        power.append(float(result.wh_per_km[0]) * kmh)  # Wh/km x km/h = W
    return np.array(power)


class EcoCoach(VehicleApp):
    ratio: float | None = None
    table: np.ndarray | None = None

    async def on_start(self) -> None:
        identity = await self.client.get(
            "Vehicle.VehicleIdentification.Brand", "Vehicle.VehicleIdentification.Model"
        )
        self.table = steady_power_w(*identity.values())

    @on_change(SPEED, VOLTAGE, CURRENT)
    async def changed(self, _values: Mapping[str, Any]) -> None:
        values = await self.client.get(SPEED, VOLTAGE, CURRENT)
        if self.table is None or any(v is None for v in values.values()) or values[SPEED] < 10:
            return
        drawn_w = -values[VOLTAGE] * values[CURRENT]  # VSS: current is negative while discharging
        if drawn_w <= 0:
            return  # coasting or regenerating: nothing to coach
        predicted_w = float(np.interp(values[SPEED], SPEEDS_KMH, self.table))
        sample = drawn_w / predicted_w
        self.ratio = sample if self.ratio is None else 0.95 * self.ratio + 0.05 * sample
        if self.ratio > float(self.settings.get("tip_above", 1.25)):
            log.info("using %.0f%% of the steady-speed need: ease off the accelerator", 100 * self.ratio)
