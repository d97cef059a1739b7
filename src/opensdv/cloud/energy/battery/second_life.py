"""Second-life modules as stationary storage at a charging site.

Modules graded "second life" leave the car and are stacked into a site battery. To the planner it
is one more bidirectional "session" present all day: it may charge and discharge within its power
and the energy window of its remaining capacity, and must end the day with at least the energy it
started with — so it can only move energy in time (cheap hours to dear ones, under the site cap),
never create it. Its throughput pays the same wear cost per kWh as V2G.
"""

from __future__ import annotations

from collections.abc import Sequence

from opensdv.cloud.energy.battery.grading import SECOND_LIFE, ModuleGrade
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.model.components import BatteryModule

__all__ = ["second_life_storage"]


def second_life_storage(
    modules: Sequence[tuple[BatteryModule, ModuleGrade]],
    slots: int,
    *,
    c_rate: float = 0.5,
    start_soc: float = 0.5,
    min_soc: float = 0.1,
    name: str = "second-life-storage",
) -> Session:
    """The site battery built from the modules graded for second life (their capacity scaled by
    their state of health); power ``c_rate`` x capacity each way."""
    usable = [(module, grade) for module, grade in modules if grade.grade == SECOND_LIFE]
    if not usable:
        raise ValueError("no module is graded for second life")
    capacity = sum(module.energy_kwh * grade.soh for module, grade in usable)
    power = c_rate * capacity
    return Session(
        name, name, 0, slots, 0.0, power,
        max_discharge_kw=power, capacity_kwh=capacity, arrival_soc=start_soc, min_soc=min_soc,
    )  # fmt: skip
