"""The label methods: how each regulation turns dynamometer tests into the range and consumption buyers see.

A label is not the twin's range on a cycle: each regulation sets its own test mass, its own cycles and
their weighting, its own adjustment, and prints consumption from the wall. Comparing the twin with a
label is only fair through the label's own method, so each is a function here with its source.
Every test runs with climate control off: the car draws its ``test_load_w`` besides traction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from opensdv.model.vehicles import Regulation, Vehicle
from opensdv.physics.params import VehicleParams
from opensdv.physics.simulate import simulate

__all__ = [
    "EPA_CITY_SHARE",
    "EPA_DEFAULT_ADJUSTMENT",
    "LABEL_METHODS",
    "LabelFigures",
    "combined_range_km",
    "epa_label",
    "epa_test_mass_kg",
    "japan_test_mass_kg",
    "japan_wltc_label",
    "label_figures",
    "wltp_label",
    "wltp_test_mass_kg",
]

Array = NDArray[np.float64]

LB = 0.45359237
EPA_CITY_SHARE = 0.55  # 40 CFR 600.210-12: combined = 55 % city + 45 % highway
EPA_DEFAULT_ADJUSTMENT = 0.7  # EPA guidance CD-15-15: the 2-cycle result times 0.7, unless 5-cycle tested
WLTP_DRIVER_KG = 75.0  # UN GTR 15 / UN R154: mass in running order includes a 75 kg driver
WLTP_FIXED_KG = 25.0
WLTP_LOAD_SHARE = 0.15  # of the maximum vehicle load, for M1 vehicles
WLTP_DEFAULT_MAX_LOAD_KG = 350.0  # where the catalog gives no gross mass: about four adults and luggage
JAPAN_OCCUPANTS_KG = 110.0  # MLIT (TRIAS): vehicle mass plus two occupants of 55 kg


@dataclass(frozen=True)
class LabelFigures:
    """What one regulation's method gives each vehicle of a batch."""

    regulation: Regulation
    range_km: Array
    battery_wh_per_km: Array  # at the pack terminals, as the label's range uses it (EPA: adjusted)
    wall_wh_per_km: Array  # from the wall on AC, as the label prints it


def epa_test_mass_kg(params: VehicleParams) -> Array:
    """Equivalent test weight: curb plus 300 lb, in the 125 lb classes of 40 CFR 1066.805 (250 lb
    classes above 5,500 lb)."""
    loaded_lb = params.curb_mass_kg / LB + 300
    step = np.where(loaded_lb > 5500, 250.0, 125.0)
    return np.round(loaded_lb / step) * step * LB


def wltp_test_mass_kg(params: VehicleParams) -> Array:
    """UN GTR 15: mass in running order (curb plus a 75 kg driver) plus 25 kg plus 15 % of the
    maximum vehicle load (gross mass minus the rest; 350 kg where the catalog has no gross mass)."""
    running_order = params.curb_mass_kg + WLTP_DRIVER_KG
    load = np.where(
        np.isnan(params.gross_mass_kg),
        WLTP_DEFAULT_MAX_LOAD_KG,
        np.maximum(params.gross_mass_kg - running_order - WLTP_FIXED_KG, 0.0),
    )
    return running_order + WLTP_FIXED_KG + WLTP_LOAD_SHARE * load


def japan_test_mass_kg(params: VehicleParams) -> Array:
    """MLIT's WLTC mode: vehicle mass plus two occupants of 55 kg."""
    return params.curb_mass_kg + JAPAN_OCCUPANTS_KG


def _on_test(params: VehicleParams, mass_kg: Array) -> VehicleParams:
    return params.with_changes(mass_kg=mass_kg, aux_w=params.test_load_w)


def _battery_wh_per_km(params: VehicleParams, cycle: str) -> Array:
    return simulate(params, cycle, keep_traces=False).wh_per_km


def epa_label(params: VehicleParams, adjustment: Array | float = EPA_DEFAULT_ADJUSTMENT) -> LabelFigures:
    """40 CFR 600.116-12 and 600.210-12 with SAE J1634: city (UDDS) and highway (HWFET) ranges from
    the usable energy, each times the adjustment; the label's range weights the two ranges 55/45 and
    its consumption weights the two consumptions 55/45 (MPGe are combined harmonically)."""
    tested = _on_test(params, epa_test_mass_kg(params))
    city, highway = _battery_wh_per_km(tested, "udds"), _battery_wh_per_km(tested, "hwfet")
    usable_wh = params.usable_kwh * 1000
    range_km = adjustment * (EPA_CITY_SHARE * usable_wh / city + (1 - EPA_CITY_SHARE) * usable_wh / highway)
    battery = (EPA_CITY_SHARE * city + (1 - EPA_CITY_SHARE) * highway) / adjustment
    return LabelFigures("epa", range_km, battery, battery / params.charger_efficiency)


def wltp_label(params: VehicleParams) -> LabelFigures:
    """UN R154 (WLTP), class 3b: the range is the usable battery energy over the WLTC's consumption
    at the terminals; the printed consumption is the recharge from the wall per km."""
    battery = _battery_wh_per_km(_on_test(params, wltp_test_mass_kg(params)), "wltc_class3b")
    return LabelFigures("wltp", params.usable_kwh * 1000 / battery, battery, battery / params.charger_efficiency)


def japan_wltc_label(params: VehicleParams) -> LabelFigures:
    """Japan's WLTC mode (MLIT, since 2018): the WLTC's low, medium and high phases (no extra-high),
    at vehicle mass plus 110 kg; range and AC consumption (交流電力量消費率) as for WLTP."""
    battery = _battery_wh_per_km(_on_test(params, japan_test_mass_kg(params)), "wltc_japan")
    return LabelFigures(
        "japan-wltc", params.usable_kwh * 1000 / battery, battery, battery / params.charger_efficiency
    )


LABEL_METHODS: dict[Regulation, Callable[[VehicleParams], LabelFigures]] = {
    "epa": epa_label,
    "wltp": wltp_label,
    "japan-wltc": japan_wltc_label,
}


def label_figures(params: VehicleParams, regulation: Regulation) -> LabelFigures:
    """Every vehicle of ``params`` through ``regulation``'s method (``epa`` at its default adjustment)."""
    return LABEL_METHODS[regulation](params)


def combined_range_km(vehicles: Sequence[Vehicle] | VehicleParams) -> tuple[Array, Array]:
    """The EPA label's range and adjusted consumption at the pack terminals (Wh/km): the figures
    the pack and e-axle choices, the sweeps and the ageing projections compare."""
    params = vehicles if isinstance(vehicles, VehicleParams) else VehicleParams.from_vehicles(list(vehicles))
    figures = epa_label(params)
    return figures.range_km, figures.battery_wh_per_km
