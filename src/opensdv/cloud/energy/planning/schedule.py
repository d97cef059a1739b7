"""A charging schedule and the numbers people judge it by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.tariff import Tariff

__all__ = ["Schedule", "wear_by_session"]


def wear_by_session(sessions: list[Session], default: float) -> NDArray[np.float64]:
    """Each session's wear cost per kWh of throughput: its own, else ``default``."""
    return np.array([default if s.wear_cost_per_kwh is None else s.wear_cost_per_kwh for s in sessions])


@dataclass
class Schedule:
    """``power_kw[i, t]``: session i's net power in slot t (charging > 0, V2G discharging < 0)."""

    name: str
    sessions: list[Session]
    power_kw: NDArray[np.float64]
    slot_h: float
    tariff: Tariff
    wear_cost_per_kwh: float = 0.0
    solve_s: float = 0.0

    @property
    def delivered_kwh(self) -> NDArray[np.float64]:
        return np.asarray(self.power_kw.sum(axis=1) * self.slot_h, dtype=np.float64)

    @property
    def requested_kwh(self) -> NDArray[np.float64]:
        return np.array([s.kwh_requested for s in self.sessions])

    @property
    def delivered_share(self) -> float:
        return float(self.delivered_kwh.sum() / max(self.requested_kwh.sum(), 1e-12))

    @property
    def site_kw(self) -> NDArray[np.float64]:
        return np.asarray(self.power_kw.sum(axis=0), dtype=np.float64)

    @property
    def peak_kw(self) -> float:
        return float(self.site_kw.max(initial=0.0))

    @property
    def exported_kwh(self) -> float:
        return float(np.maximum(-self.power_kw, 0.0).sum() * self.slot_h)

    @property
    def wear_cost(self) -> float:
        """Discharged energy has to be charged again: both count as wear, at each battery's own
        cost per kWh (the plan's where a session has none)."""
        discharged = np.maximum(-self.power_kw, 0.0).sum(axis=1) * self.slot_h
        return float(2 * discharged @ wear_by_session(self.sessions, self.wear_cost_per_kwh))

    @property
    def energy_cost(self) -> float:
        return self.tariff.cost(self.site_kw, self.slot_h)

    @property
    def cost(self) -> float:
        return self.energy_cost + self.wear_cost
