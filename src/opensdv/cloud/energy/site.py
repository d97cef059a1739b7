"""A charging site run end to end: its stations on the CSMS, a rolling plan under the site's
power cap, and the plan sent to the stations slot by slot (what the demo runs and the fleet API
shows). The plan follows what happens: a car that unplugs early leaves it (its transaction ends:
sessions and transactions are matched by id token = session id), a newcomer joins it, a grid
signal changes the limits — each a re-plan from the current slot, dispatched at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from opensdv.cloud.energy.dispatch import ProfileDispatcher
from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.planning.network_planner import NetworkPlanner
from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.tariff import time_of_use

__all__ = ["ChargingSite", "SiteView"]


class SiteView(Protocol):
    """What the fleet API shows of a site: the demo's ``ChargingSite`` (a fixed day) and a managed
    site's ``SiteController`` (online) both have it."""

    @property
    def name(self) -> str: ...
    @property
    def cap_kw(self) -> float: ...
    @property
    def slot(self) -> int: ...
    @property
    def slot_h(self) -> float: ...
    @property
    def csms(self) -> Csms: ...
    @property
    def dispatcher(self) -> ProfileDispatcher: ...
    def session_plans(self) -> list[dict[str, object]]: ...
    def load_curve(self) -> list[float]: ...


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
    left: set[str] = field(default_factory=set)  # sessions whose car unplugged before its departure

    def __post_init__(self) -> None:
        self.dispatcher = ProfileDispatcher(self.csms)
        self._new_day()

    def _new_day(self) -> None:
        """The day's plan from its first slot (the demo's day repeats with the same sessions)."""
        self.schedule, self.left = None, set()
        tariff = time_of_use(self.slots, self.slot_h * 60, start_hour=self.start_hour)
        self._planner = NetworkPlanner(self.sessions, slots=self.slots, slot_h=self.slot_h, site_cap_kw=self.cap_kw,
                                       tariff=tariff, wear_cost_per_kwh=self.wear_cost_per_kwh)  # fmt: skip

    def plan(self) -> Schedule:
        self.schedule = self._planner.solve("site plan")
        return self.schedule

    def _unplugged(self) -> list[str]:
        """Sessions the plan still counts on whose car's transaction has ended."""
        gone = []
        for session in self._planner.sessions:
            state = self.csms.stations.get(session.station)
            if (
                session.id in self.left
                or state is None
                or not session.arrival <= self.slot < session.departure
            ):
                continue
            mine = [t for t in state.transactions.values() if t.id_token == session.id]
            if mine and all(t.ended is not None for t in mine):
                gone.append(session.id)
        return gone

    async def step(self) -> None:
        """Follow the stations (cars that unplugged leave the plan), send the current slot's
        profiles, then move to the next slot."""
        gone = self._unplugged()
        for session_id in gone:
            self._planner.depart(session_id, self.slot)
            self.left.add(session_id)
        if self.schedule is None or gone:
            await asyncio.to_thread(self.plan)
        assert self.schedule is not None
        await self.dispatcher.dispatch(self.schedule, self.slot)
        self.slot = (self.slot + 1) % self.slots
        if self.slot == 0:
            self._new_day()

    async def arrive(self, session: Session) -> None:
        """A car plugs in at the current slot: re-plan with it, and send the changed profiles."""
        self._planner.add_arrival(session, self.slot)
        await self._replan()

    async def signal(
        self, cap_kw: float | NDArray[np.float64], min_import_kw: float | NDArray[np.float64] = 0.0
    ) -> None:
        """A grid signal for the rest of the day: re-plan under it, and send the changed profiles."""
        self._planner.set_limits(self.slot, cap_kw, min_import_kw)
        await self._replan()

    async def _replan(self) -> None:
        await asyncio.to_thread(self.plan)
        assert self.schedule is not None
        await self.dispatcher.dispatch(self.schedule, self.slot)

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
