"""A charging site run end to end: its stations on the CSMS, a rolling plan under the site's
power cap, and the plan sent to the stations slot by slot (what the demo runs and the fleet API
shows)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import numpy as np

from opensdv.cloud.energy.csms import Csms
from opensdv.cloud.energy.dispatch import ProfileDispatcher
from opensdv.cloud.energy.network_planner import NetworkPlanner
from opensdv.cloud.energy.schedule import Schedule
from opensdv.cloud.energy.sessions import Session
from opensdv.cloud.energy.tariff import time_of_use

__all__ = ["ChargingSite"]


@dataclass
class ChargingSite:
    """``sessions`` over ``slots`` quarter-hours from ``start_hour`` (time-of-use tariff) under
    ``cap_kw``; ``slot`` is the current one."""

    name: str
    csms: Csms
    sessions: list[Session]
    cap_kw: float
    slots: int = 96
    slot_h: float = 0.25
    start_hour: float = 6.0
    wear_cost_per_kwh: float = 0.0
    slot: int = 0
    schedule: Schedule | None = None
    dispatcher: ProfileDispatcher = field(init=False)

    def __post_init__(self) -> None:
        self.dispatcher = ProfileDispatcher(self.csms)
        tariff = time_of_use(self.slots, self.slot_h * 60, start_hour=self.start_hour)
        self._planner = NetworkPlanner(self.sessions, slots=self.slots, slot_h=self.slot_h, site_cap_kw=self.cap_kw,
                                       tariff=tariff, wear_cost_per_kwh=self.wear_cost_per_kwh)  # fmt: skip

    def plan(self) -> Schedule:
        self.schedule = self._planner.solve("site plan")
        return self.schedule

    async def step(self) -> None:
        """Send the current slot's profiles, then move to the next slot."""
        if self.schedule is None:
            await asyncio.to_thread(self.plan)
        assert self.schedule is not None
        await self.dispatcher.dispatch(self.schedule, self.slot)
        self.slot = (self.slot + 1) % self.slots

    def session_plans(self) -> list[dict[str, object]]:
        """Each session with what the plan gives it: energy over the day and power in this slot."""
        if self.schedule is None:
            return []
        delivered, power = self.schedule.delivered_kwh, self.schedule.power_kw
        return [
            {"id": s.id, "station": s.station, "arrival": s.arrival, "departure": s.departure,
             "kwh_requested": s.kwh_requested, "kwh_planned": round(float(delivered[i]), 3),
             "kw_now": round(float(power[i, self.slot]), 2), "v2g": s.v2g}
            for i, s in enumerate(self.schedule.sessions)
        ]  # fmt: skip

    def load_curve(self) -> list[float]:
        return (
            [] if self.schedule is None else [round(float(v), 2) for v in np.asarray(self.schedule.site_kw)]
        )
