"""The twin's driver at the assistance controls: what the cars' ADAS messages say while a cycle is
driven, so the demo's buses carry them (and campaigns have something to trigger on).

The cruise control is switched on from the start; the driver sets it after a steady stretch above
40 km/h (the speed held within 0.3 m/s² for 5 s), at the speed then, and takes over when braking
harder than 0.7 m/s² or below 30 km/h; the set speed stays for a resume, as cars keep it. Lane
departure detection is on and never warns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CruiseDriver"]


@dataclass
class CruiseDriver:
    set_above_kmh: float = 40.0
    release_below_kmh: float = 30.0
    steady_mps2: float = 0.3
    steady_s: float = 5.0
    brake_mps2: float = -0.7
    active: bool = False
    set_kmh: float | None = None  # none set yet
    _steady_for_s: float = 0.0

    def step(self, dt: float, speed_kmh: float, accel_mps2: float) -> None:
        if self.active:
            if accel_mps2 < self.brake_mps2 or speed_kmh < self.release_below_kmh:
                self.active, self._steady_for_s = False, 0.0
            return
        steady = speed_kmh >= self.set_above_kmh and abs(accel_mps2) <= self.steady_mps2
        self._steady_for_s = self._steady_for_s + dt if steady else 0.0
        if self._steady_for_s >= self.steady_s:
            self.active, self.set_kmh = True, float(round(speed_kmh))

    def vss_values(self) -> dict[str, Any]:
        return {
            "Vehicle.ADAS.CruiseControl.IsEnabled": True,
            "Vehicle.ADAS.CruiseControl.IsActive": self.active,
            "Vehicle.ADAS.CruiseControl.IsError": False,
            "Vehicle.ADAS.CruiseControl.SpeedSet": self.set_kmh,  # None: the DBC's "none set"
            "Vehicle.ADAS.LaneDepartureDetection.IsEnabled": True,
            "Vehicle.ADAS.LaneDepartureDetection.IsWarning": False,
            "Vehicle.ADAS.LaneDepartureDetection.IsError": False,
        }
