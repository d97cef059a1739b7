"""Semi-empirical battery ageing: calendar and cycle capacity fade, and resistance growth.

Calendar fade grows with the square root of time, faster at high state of charge and temperature
(Arrhenius); cycle fade grows with charge throughput, faster with deep cycles and high C-rates.
Resistance grows with the capacity lost. The coefficients are typical of published fits for NMC
and LFP cells (e.g. Schmalstieg et al. 2014; Wang et al. 2011), written here for OpenSDV; they are
an engineering model for fleet-level projections, not a cell-specific fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from opensdv.model.components import Chemistry
from opensdv.model.vehicles import Vehicle

__all__ = ["PACK_PRICE_PER_KWH", "AgeingProfile", "AgeingResult", "age", "wear_cost_per_kwh"]

GAS_CONSTANT = 8.314
REFERENCE_K = 298.15
# per chemistry: calendar k (per sqrt(day)), calendar activation energy (J/mol), cycle k (per full cycle)
_COEFFICIENTS = {
    Chemistry.NMC: (0.00135, 24_500.0, 1.3e-4),
    Chemistry.NCA: (0.00150, 24_500.0, 1.5e-4),
    Chemistry.LFP: (0.00090, 20_000.0, 0.55e-4),
    Chemistry.LMFP: (0.00100, 20_000.0, 0.65e-4),
    Chemistry.LMO: (0.00170, 26_000.0, 1.8e-4),
    Chemistry.SIB: (0.00120, 22_000.0, 1.0e-4),
}
RESISTANCE_PER_FADE = 1.5  # +1.5 % resistance per 1 % capacity lost
PACK_PRICE_PER_KWH = 115.0  # USD, the 2024 average EV pack (BloombergNEF's survey)


@dataclass(frozen=True)
class AgeingProfile:
    """How the car is used: distance, climate, and charging habits."""

    daily_km: float = 40.0
    ambient_c: float = 15.0
    charge_target_soc: float = 0.9
    fast_charge_share: float = 0.1  # share of energy charged at about 2C
    consumption_wh_per_km: float | None = None  # from the twin if None

    def __post_init__(self) -> None:
        if not 0 < self.charge_target_soc <= 1:
            raise ValueError(f"charge_target_soc must be in (0, 1], got {self.charge_target_soc}")
        if self.daily_km < 0 or not 0 <= self.fast_charge_share <= 1:
            raise ValueError(
                f"daily_km must be >= 0 and fast_charge_share in [0, 1], got {self.daily_km}, {self.fast_charge_share}"
            )


@dataclass(frozen=True)
class AgeingResult:
    months: NDArray[np.float64]
    state_of_health: NDArray[np.float64]  # remaining capacity / new, per month
    resistance_factor: NDArray[np.float64]
    full_cycles: NDArray[np.float64]
    throughput_kwh: NDArray[np.float64]


def wear_cost_per_kwh(
    chemistry: Chemistry,
    *,
    pack_price_per_kwh: float = PACK_PRICE_PER_KWH,
    end_of_life_soh: float = 0.7,
    depth: float = 0.3,
    ambient_c: float = 25.0,
) -> float:
    """What one kWh through the pack (in or out) costs in pack life, by this model's cycle fade —
    the planners' wear cost. A full cycle here is one capacity discharged and charged again; its
    fade (shallow ``depth`` cycles, as V2G's are) is priced at the pack's cost spread over the fade
    it may take before ``end_of_life_soh``, and shared by the two kWh of throughput each of its
    kWh makes. Calendar fade comes with time whatever the car does, so it is no cost of cycling.
    NMC: about USD 0.022 per kWh, LFP 0.009 (at 25 C)."""
    if not 0 < end_of_life_soh < 1 or not 0 < depth <= 1 or pack_price_per_kwh < 0:
        raise ValueError("need 0 < end_of_life_soh < 1, 0 < depth <= 1 and a pack price >= 0")
    _, activation, k_cyc = _COEFFICIENTS[chemistry]
    arrhenius = math.exp(-activation / GAS_CONSTANT * (1 / (ambient_c + 273.15) - 1 / REFERENCE_K))
    fade_per_full_cycle = k_cyc * (0.7 + 0.6 * depth) * math.sqrt(arrhenius)
    # per kWh of capacity cycled: the pack's price per kWh x the fade, over 2 kWh of throughput
    return pack_price_per_kwh * fade_per_full_cycle / (1 - end_of_life_soh) / 2


def age(vehicle: Vehicle, years: float, profile: AgeingProfile, consumption_wh_per_km: float) -> AgeingResult:
    """State of health month by month for ``years`` of ``profile`` use."""
    k_cal, activation, k_cyc = _COEFFICIENTS[vehicle.pack.module.chemistry]
    capacity_kwh = vehicle.pack.energy_kwh
    months = np.arange(0, round(years * 12) + 1, dtype=np.float64)
    days = months * 30.44
    daily_kwh = profile.daily_km * (profile.consumption_wh_per_km or consumption_wh_per_km) / 1000
    depth = min(daily_kwh / capacity_kwh, profile.charge_target_soc)
    mean_soc = profile.charge_target_soc - depth / 2
    temperature_k = profile.ambient_c + 273.15
    arrhenius = math.exp(-activation / GAS_CONSTANT * (1 / temperature_k - 1 / REFERENCE_K))
    soc_stress = 0.6 + 0.8 * mean_soc
    calendar = k_cal * arrhenius * soc_stress * np.sqrt(days)
    full_cycles = days * daily_kwh / capacity_kwh
    depth_stress = 0.7 + 0.6 * depth  # deep cycles wear more per unit of throughput
    rate_stress = 1.0 + 0.8 * profile.fast_charge_share
    cycle_fade = k_cyc * depth_stress * rate_stress * math.sqrt(arrhenius) * full_cycles
    fade = np.minimum(calendar + cycle_fade, 0.95)
    return AgeingResult(
        months=months,
        state_of_health=1.0 - fade,
        resistance_factor=1.0 + RESISTANCE_PER_FADE * fade,
        full_cycles=full_cycles,
        throughput_kwh=days * daily_kwh,
    )
