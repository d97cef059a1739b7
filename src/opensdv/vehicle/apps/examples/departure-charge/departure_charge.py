"""Departure-aware charge limit: the limit for the day, and charging only in the cheapest hours
that still reach it by departure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from opensdv.vehicle.apps import VehicleApp, every, on_change

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def charging_hours(
    soc: float,
    limit: int,
    hour: int,
    departure_hour: int,
    pack_kwh: float,
    charger_kw: float,
    tariff: Sequence[float],
) -> list[int]:
    """The cheapest hours between now and departure that add the energy still missing."""
    needed_h = math.ceil(max(0.0, limit - soc) / 100 * pack_kwh / charger_kw)
    window = [(hour + k) % 24 for k in range((departure_hour - hour) % 24 or 24)]
    return sorted(sorted(window, key=lambda h: (tariff[h], window.index(h)))[:needed_h])


class DepartureCharge(VehicleApp):
    charging: str | None = None

    @property
    def limit(self) -> int:
        return int(self.settings.get("daily_limit", 80))

    async def on_start(self) -> None:
        await self.vehicle.powertrain.traction_battery.charging.charge_limit.actuate(self.limit)
        await self.replan()

    @on_change(SOC)
    async def soc_changed(self, _values: Mapping[str, Any]) -> None:
        await self.replan()

    @every(60.0)
    async def each_minute(self) -> None:
        await self.replan()

    async def replan(self, now: datetime | None = None) -> None:
        battery = self.vehicle.powertrain.traction_battery
        soc = await battery.state_of_charge.current.get()
        pack_kwh = await battery.gross_capacity.get()
        if soc is None or not pack_kwh:
            return  # nothing known yet: decide when the values arrive
        s = self.settings
        hour = (now or datetime.now()).hour
        hours = charging_hours(
            soc, self.limit, hour, int(s.get("departure_hour", 7)), pack_kwh, float(s.get("charger_kw", 6.6)),
            list(s.get("tariff", [0.3] * 24)),
        )  # fmt: skip
        wanted = "START" if hour in hours else "STOP"
        if wanted != self.charging:
            await battery.charging.start_stop_charging.actuate(wanted)
            self.charging = wanted
