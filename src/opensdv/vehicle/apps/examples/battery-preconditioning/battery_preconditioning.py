"""Battery preconditioning before a DC fast-charge stop: a cold, low pack charges slowly, so warm it
while driving to the charger and stop once it is warm or the stop is no longer needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opensdv.vehicle.apps import VehicleApp, on_change

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
TEMPERATURE = "Vehicle.Powertrain.TractionBattery.Temperature.Average"


def conditioning_mode(speed: float, soc: float, temperature: float, below_soc: float, target: float) -> str:
    if speed > 5 and soc <= below_soc and temperature < target - 5:
        return "FAST_CHARGING_PREPARATION"
    return "INACTIVE"


class BatteryPreconditioning(VehicleApp):
    mode: str | None = None

    @on_change(SPEED, SOC, TEMPERATURE)
    async def changed(self, _values: Mapping[str, Any]) -> None:
        values = await self.client.get(SPEED, SOC, TEMPERATURE)
        if any(v is None for v in values.values()):
            return
        target = float(self.settings.get("target_temperature", 30.0))
        mode = conditioning_mode(
            values[SPEED],
            values[SOC],
            values[TEMPERATURE],
            float(self.settings.get("fast_charge_below_soc", 25.0)),
            target,
        )
        if mode != self.mode:
            conditioning = self.vehicle.powertrain.traction_battery.battery_conditioning
            if mode != "INACTIVE":
                await conditioning.target_temperature.actuate(target)
            await conditioning.requested_mode.actuate(mode)
            self.mode = mode
