"""Prices: energy by time of use, a demand charge on the peak, and what exported energy earns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["Tariff", "time_of_use"]


@dataclass(frozen=True)
class Tariff:
    energy_price: NDArray[np.float64]  # currency per kWh imported, per slot
    export_price: NDArray[np.float64]  # currency per kWh exported, per slot
    demand_charge: float  # currency per kW of the period's highest import

    def cost(self, site_kw: NDArray[np.float64], slot_h: float) -> float:
        imported = np.maximum(site_kw, 0) * slot_h
        exported = np.maximum(-site_kw, 0) * slot_h
        return float(
            imported @ self.energy_price[: len(site_kw)]
            - exported @ self.export_price[: len(site_kw)]
            + self.demand_charge * max(site_kw.max(initial=0.0), 0.0)
        )


def time_of_use(
    slots: int,
    slot_minutes: float = 5.0,
    *,
    start_hour: float = 0.0,
    peak: tuple[float, float] = (16.0, 21.0),
    off_peak_price: float = 0.12,
    peak_price: float = 0.40,
    export_share: float = 0.8,
    demand_charge: float = 15.0,
) -> Tariff:
    """A day-periodic time-of-use tariff (defaults in the style of a US commercial EV rate:
    USD 0.12/kWh off-peak, 0.40/kWh 16:00-21:00, USD 15/kW demand charge on the month's peak;
    exports earn 80 % of the energy price)."""
    hours = (start_hour + np.arange(slots) * slot_minutes / 60) % 24
    price = np.where((hours >= peak[0]) & (hours < peak[1]), peak_price, off_peak_price)
    return Tariff(price.astype(np.float64), (price * export_share).astype(np.float64), demand_charge)
