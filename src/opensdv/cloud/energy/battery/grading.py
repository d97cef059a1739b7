"""Second-life grading of standard modules: stay in the vehicle, second life, or recycle — with
the reason, from thresholds in the settings (``[energy]`` in opensdv.toml)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from opensdv.config import GradingSettings
from opensdv.model.vehicles import Vehicle
from opensdv.physics.ageing import AgeingResult

__all__ = ["ModuleGrade", "grade_module", "module_health"]

STAY, SECOND_LIFE, RECYCLE = "stay in vehicle", "second life", "recycle"


@dataclass(frozen=True)
class ModuleGrade:
    position: int
    soh: float
    resistance_factor: float
    grade: str
    reason: str


def grade_module(position: int, soh: float, resistance_factor: float, rules: GradingSettings) -> ModuleGrade:
    """A used module's second-life grade from its measured health, by the thresholds in the grading settings."""
    if soh >= rules.stay_min_soh and resistance_factor <= rules.stay_max_resistance_factor:
        grade, reason = (
            STAY,
            f"SoH {soh * 100:.1f} % >= {rules.stay_min_soh * 100:.0f} % and resistance x{resistance_factor:.2f} <= x{rules.stay_max_resistance_factor:g}",
        )
    elif soh >= rules.second_life_min_soh and resistance_factor <= rules.second_life_max_resistance_factor:
        failed = (
            f"SoH {soh * 100:.1f} % < {rules.stay_min_soh * 100:.0f} %"
            if soh < rules.stay_min_soh
            else f"resistance x{resistance_factor:.2f} > x{rules.stay_max_resistance_factor:g}"
        )
        grade, reason = (
            SECOND_LIFE,
            f"{failed} for traction, fit for stationary storage (SoH >= {rules.second_life_min_soh * 100:.0f} %)",
        )
    else:
        grade, reason = (
            RECYCLE,
            f"SoH {soh * 100:.1f} % or resistance x{resistance_factor:.2f} below second-life limits ({rules.second_life_min_soh * 100:.0f} %, x{rules.second_life_max_resistance_factor:g})",
        )
    return ModuleGrade(position, soh, resistance_factor, grade, reason)


def module_health(
    vehicle: Vehicle, ageing: AgeingResult, spread: float = 0.03, seed: int = 1
) -> list[tuple[float, float]]:
    """Per-module (SoH, resistance factor) after ``ageing``: modules age around the pack's figure
    with a module-to-module spread (cell-to-cell variation, temperature gradients in the pack)."""
    rng = np.random.default_rng(seed)
    pack_fade = 1 - float(ageing.state_of_health[-1])
    fades = np.clip(pack_fade * (1 + rng.normal(0, spread, vehicle.pack.module_count)), 0, 0.99)
    return [(float(1 - f), float(1 + 1.5 * f)) for f in fades]
