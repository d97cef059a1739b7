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
    "EPA_LEAST_ADJUSTMENT",
    "LABEL_METHODS",
    "LabelFigures",
    "combined_range_km",
    "epa_derived_adjustment",
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
EPA_LEAST_ADJUSTMENT = 0.7  # the derived adjustment takes at most 30 % off (EPA's 0.7 for electric vehicles)
WH_PER_GALLON = 33_705.0  # MPGe: 33.705 kWh of electricity count as a gallon of gasoline (40 CFR 600.002)
M_PER_MILE = 1609.344
# 40 CFR 600.210-12(a)(2)(i)-(ii): derived 5-cycle MPG = 1 / (intercept + slope / 2-cycle MPG), city and
# highway; EPA revised the coefficients from model year 2017 (the pairs are city, highway)
DERIVED_5_CYCLE = {
    2008: ((0.003259, 1.1805), (0.001376, 1.3466)),
    2017: ((0.004091, 1.1601), (0.003191, 1.2945)),
}
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
    """The test's conditions; a label's own coast-down brings the mass it was run at."""
    mass = np.where(np.isnan(params.test_mass_kg), mass_kg, params.test_mass_kg)
    return params.with_changes(mass_kg=mass, aux_w=params.test_load_w)


def _battery_wh_per_km(params: VehicleParams, cycle: str) -> Array:
    return simulate(params, cycle, keep_traces=False).wh_per_km


def epa_derived_adjustment(wall_wh_per_km: Array, model_year: Array, *, city: bool) -> Array:
    """EPA's derived 5-cycle adjustment as a factor on the 2-cycle (unadjusted) figure: 1 / (intercept
    x MPGe + slope), from the MPGe from the wall, never below 0.7. The equations were fitted to
    combustion cars: for an efficient electric car they would take off far more than 30 %, so the 0.7
    floor is what such labels carry (NREL FASTSim's label method applies the same floor, max_epa_adj)."""
    mpge = WH_PER_GALLON / (wall_wh_per_km * M_PER_MILE / 1000)
    test = 0 if city else 1
    late, early = DERIVED_5_CYCLE[2017][test], DERIVED_5_CYCLE[2008][test]
    intercept, slope = (np.where(model_year >= 2017, new, old) for new, old in zip(late, early, strict=True))
    return np.maximum(1 / (intercept * mpge + slope), EPA_LEAST_ADJUSTMENT)


def epa_label(params: VehicleParams, adjustment: Array | float | None = None) -> LabelFigures:
    """40 CFR 600.116-12 and 600.210-12 with SAE J1634: city (UDDS) and highway (HWFET) ranges from
    the usable energy, each times its adjustment (the maker's factor where given, NaN or None: the
    derived 5-cycle one); the label's range weights the two ranges 55/45 and its consumption weights
    the two consumptions 55/45 (MPGe are combined harmonically)."""
    tested = _on_test(params, epa_test_mass_kg(params))
    city, highway = _battery_wh_per_km(tested, "udds"), _battery_wh_per_km(tested, "hwfet")
    given = np.broadcast_to(np.asarray(np.nan if adjustment is None else adjustment, dtype=np.float64), city.shape)
    wall = params.charger_efficiency

    def factor(battery_wh_per_km: Array, *, is_city: bool) -> Array:
        derived = epa_derived_adjustment(battery_wh_per_km / wall, params.model_year, city=is_city)
        return np.where(np.isnan(given), derived, given)

    city_factor, highway_factor = factor(city, is_city=True), factor(highway, is_city=False)
    usable_wh = params.usable_kwh * 1000
    range_km = usable_wh * (EPA_CITY_SHARE * city_factor / city + (1 - EPA_CITY_SHARE) * highway_factor / highway)
    battery = EPA_CITY_SHARE * city / city_factor + (1 - EPA_CITY_SHARE) * highway / highway_factor
    return LabelFigures("epa", range_km, battery, battery / wall)


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
    """Every vehicle of ``params`` through ``regulation``'s method (``epa`` with the derived adjustment)."""
    return LABEL_METHODS[regulation](params)


def combined_range_km(vehicles: Sequence[Vehicle] | VehicleParams) -> tuple[Array, Array]:
    """The EPA label's range and adjusted consumption at the pack terminals (Wh/km): the figures
    the pack and e-axle choices, the sweeps and the ageing projections compare."""
    params = vehicles if isinstance(vehicles, VehicleParams) else VehicleParams.from_vehicles(list(vehicles), "epa")
    figures = epa_label(params)
    return figures.range_km, figures.battery_wh_per_km
