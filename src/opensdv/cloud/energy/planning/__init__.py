"""One call for the optimal schedule, by either solver of the same programme."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from opensdv.cloud.energy.planning.network_planner import NetworkPlanner
from opensdv.cloud.energy.planning.optimiser import RollingPlanner
from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.site_limits import Circuit
from opensdv.cloud.energy.planning.tariff import Tariff

__all__ = ["Method", "plan"]

Method = Literal["network", "lp"]


def plan(
    sessions: Sequence[Session],
    *,
    slots: int,
    slot_h: float,
    site_cap_kw: float | NDArray[np.float64],
    tariff: Tariff,
    wear_cost_per_kwh: float = 0.0,
    method: Method = "network",
    name: str | None = None,
    circuits: Sequence[Circuit] = (),
    min_import_kw: float | NDArray[np.float64] = 0.0,
) -> Schedule:
    """The optimal schedule over ``slots`` slots: ``network`` (a min-cost flow, the fast default) or
    ``lp`` (HiGHS, the reference); both reach the same optimum up to whole Wh. ``site_cap_kw`` and
    ``min_import_kw`` take one value or one per slot (grid signals: a power cap for a while, a
    flexibility window), ``circuits`` the stations behind one breaker."""
    planner = (NetworkPlanner if method == "network" else RollingPlanner)(
        sessions,
        slots=slots,
        slot_h=slot_h,
        site_cap_kw=site_cap_kw,
        tariff=tariff,
        wear_cost_per_kwh=wear_cost_per_kwh,
        circuits=circuits,
        min_import_kw=min_import_kw,
    )
    return planner.solve(name or f"optimal ({method})")
