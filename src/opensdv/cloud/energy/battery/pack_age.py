"""A pack aged by the twin and its modules graded: what the passport, the CLI and the fleet API
report about a battery when no measured history is at hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensdv.cloud.energy.battery.grading import ModuleGrade, grade_module, module_health
from opensdv.cloud.energy.battery.passport import build_passport
from opensdv.config import GradingSettings
from opensdv.model.vehicles import Vehicle
from opensdv.physics import AgeingProfile, age, combined_range_km
from opensdv.physics.ageing import AgeingResult

__all__ = ["AgedPack", "age_pack", "pack_passport"]


@dataclass(frozen=True)
class AgedPack:
    vehicle: Vehicle
    ageing: AgeingResult
    grades: list[ModuleGrade]


def age_pack(vehicle: Vehicle, years: float, profile: AgeingProfile, rules: GradingSettings) -> AgedPack:
    """``years`` of ``profile`` use at the vehicle's own consumption, then every module graded."""
    _, consumption = combined_range_km([vehicle])
    ageing = age(vehicle, years, profile, float(consumption[0]))
    grades = [
        grade_module(i, soh, factor, rules) for i, (soh, factor) in enumerate(module_health(vehicle, ageing))
    ]
    return AgedPack(vehicle, ageing, grades)


def pack_passport(aged: AgedPack, *, vin: str, serial: str, status: str = "original") -> dict[str, Any]:
    """The battery passport of an aged pack, each module with its own serial and grade."""
    modules = [
        {"position": g.position, "module_id": aged.vehicle.pack.module.id, "serial": f"{serial}-M{g.position:02d}",
         "soh_percent": round(g.soh * 100, 2), "resistance_factor": round(g.resistance_factor, 3), "grade": g.grade,
         "reason": g.reason}
        for g in aged.grades
    ]  # fmt: skip
    return build_passport(
        aged.vehicle, vin=vin, pack_serial=serial, ageing=aged.ageing, modules=modules, status=status
    )
