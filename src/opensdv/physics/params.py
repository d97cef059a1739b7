"""Vehicle records -> arrays of physical parameters, one row per vehicle variant.

The batch simulator works on thousands of variants at once, so every parameter is an array; a
variant is a vehicle with some numbers changed (``with_changes``), e.g. another pack or mass.
Units are in the names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensdv.model.components import EAxle, EfficiencyMap
from opensdv.model.vehicles import ChargingSpec, Regulation, RoadLoad, Vehicle, VehicleDefinition
from opensdv.physics.mechanics import AIR_DENSITY, GRAVITY

__all__ = ["OCV_GRID", "PAYLOAD_KG", "VehicleParams"]

PAYLOAD_KG = 136.0  # EPA test weight: curb mass plus 300 lb
ROTATING_MASS_FACTOR = 0.03  # typical: four wheels' inertia plus the e-axle's rotor through the gear
CELL_HEAT_CAPACITY_J_PER_KG_K = 1000.0
CONDUCTANCE_W_PER_K_PER_MODULE = (
    1.2  # pack to ambient, passive (order of FASTSim's Leaf: 26.5 W/K, 24 modules)
)
OCV_GRID = np.linspace(0.0, 1.0, 101)
DEFAULT_CHARGER_EFFICIENCY = ChargingSpec.model_fields["efficiency"].default

Array = NDArray[np.float64]


@dataclass(frozen=True)
class VehicleParams:
    """Arrays of shape (N,) unless noted; ``axle_ids`` names each variant's e-axle maps."""

    names: tuple[str, ...]
    mass_kg: Array  # as driven: curb mass plus PAYLOAD_KG (a label's test sets its own, physics.labels)
    curb_mass_kg: Array
    gross_mass_kg: Array  # NaN where the catalog has none
    test_mass_kg: Array  # the mass a label's own coast-down was run at; NaN: the regulation's rule
    model_year: Array
    cda_m2: Array
    crr: Array
    linear_n_per_mps: Array  # the coast-down's f1 term (0 from drag and rolling coefficients)
    wheel_radius_m: Array
    aux_w: Array  # in use, climate control included
    test_load_w: Array  # on a dynamometer, climate control off
    rotating_mass_factor: Array  # wheels, gears and rotor as extra equivalent mass, share of mass
    # e-axles: up to two per vehicle, shape (N, 2); a missing axle has zero peak power
    axle_share: Array
    peak_power_w: Array
    peak_torque_nm: Array
    max_speed_rpm: Array
    gear_ratio: Array
    axle_ids: tuple[tuple[str, ...], ...]
    axle_map: Array  # (N, 2) index into ``maps_list``
    # pack
    capacity_ah: Array
    ocv_v: Array  # (N, len(OCV_GRID)), pack open-circuit voltage on OCV_GRID
    r0_ohm: Array
    r1_ohm: Array
    tau1_s: Array
    r2_ohm: Array
    tau2_s: Array
    max_discharge_a: Array
    max_charge_a: Array
    min_voltage_v: Array
    max_voltage_v: Array
    nominal_voltage_v: Array
    inverter_min_voltage_v: Array  # below it the e-axles deliver nothing
    traction_limit_w: Array  # e-axles' peak electrical power at nominal voltage
    heat_capacity_j_per_k: Array
    conductance_w_per_k: Array
    energy_kwh: Array
    usable_kwh: Array
    charger_efficiency: Array  # wall (AC) to pack
    maps_list: tuple[EfficiencyMap, ...]

    def __len__(self) -> int:
        return len(self.names)

    @classmethod
    def from_vehicles(cls, vehicles: Sequence[Vehicle], regulation: Regulation | None = None) -> VehicleParams:
        """One row per vehicle; with ``regulation``, as that regulation's test saw each vehicle: where
        its label gives the test's own coast-down, that road load and test mass replace the vehicle's."""
        rows = [_row(v, regulation) for v in vehicles]
        maps = {a.id: a.efficiency for v in vehicles for a in v.eaxles}
        order = list(maps)
        for row in rows:
            row["axle_map"] = [order.index(axle_id) for axle_id in row["axle_ids"]]
        columns: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ("names", "axle_ids", "maps_list"):
                continue
            columns[f.name] = np.array([row[f.name] for row in rows], dtype=np.float64)
        return cls(
            names=tuple(v.id for v in vehicles),
            axle_ids=tuple(row["axle_ids"] for row in rows),
            maps_list=tuple(maps[axle_id] for axle_id in order),
            **columns,
        )

    def with_changes(self, **arrays: Array | float) -> VehicleParams:
        """Variants: replace parameters (broadcast to N) without touching the catalog records."""
        updates: dict[str, Any] = {
            key: np.broadcast_to(np.asarray(value, dtype=np.float64), getattr(self, key).shape).copy()
            for key, value in arrays.items()
        }
        return replace(self, **updates)

    def repeat(self, count: int) -> VehicleParams:
        """``count`` copies of every row (for batch variants)."""
        updates: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                updates[f.name] = np.repeat(value, count, axis=0)
        updates["names"] = tuple(n for n in self.names for _ in range(count))
        updates["axle_ids"] = tuple(a for a in self.axle_ids for _ in range(count))
        return replace(self, **updates)


def _road_load(d: VehicleDefinition, regulation: Regulation | None) -> dict[str, float]:
    """Drag area, rolling coefficient and linear term (from coefficients or from a coast-down), and the
    coast-down's test mass where a label of ``regulation`` gives its own."""
    own = next((label.road_load for label in d.labels if label.regulation == regulation and label.road_load), None)
    if own is not None:
        return _coast_down(own) | {"test_mass_kg": own.test_mass_kg}
    if d.road_load is not None:
        return _coast_down(d.road_load) | {"test_mass_kg": np.nan}
    assert d.drag_coefficient is not None and d.frontal_area_m2 is not None and d.rolling_resistance is not None
    return {
        "cda_m2": d.drag_coefficient * d.frontal_area_m2,
        "crr": d.rolling_resistance,
        "linear_n_per_mps": 0.0,
        "test_mass_kg": np.nan,
    }


def _coast_down(load: RoadLoad) -> dict[str, float]:
    kmh = 3.6  # per km/h -> per m/s
    return {
        "cda_m2": 2 * load.f2_n_per_kmh2 * kmh * kmh / AIR_DENSITY,
        "crr": load.f0_n / (load.test_mass_kg * GRAVITY),
        "linear_n_per_mps": load.f1_n_per_kmh * kmh,
    }


def _row(vehicle: Vehicle, regulation: Regulation | None) -> dict[str, Any]:
    d, pack = vehicle.definition, vehicle.pack
    module, cell = pack.module, pack.module.cell_model
    ns = module.cells_series * pack.modules_series
    npar = module.cells_parallel * pack.modules_parallel
    axles: list[EAxle] = list(vehicle.eaxles)[:2]
    total = sum(a.peak_power_kw for a in axles)
    padded = axles + [axles[0]] * (2 - len(axles))
    share = [a.peak_power_kw / total for a in axles] + [0.0] * (2 - len(axles))
    ocv_cell = np.interp(OCV_GRID, cell.ocv_soc, cell.ocv_v)
    r2 = cell.r2_ohm if cell.r2_ohm is not None else 0.0
    c2 = cell.c2_f if cell.c2_f is not None else 1.0
    return {
        "mass_kg": d.curb_mass_kg + PAYLOAD_KG,
        "curb_mass_kg": d.curb_mass_kg,
        "gross_mass_kg": d.gross_mass_kg if d.gross_mass_kg is not None else np.nan,
        "model_year": d.model_year,
        **_road_load(d, regulation),
        "wheel_radius_m": d.wheel_radius_m,
        "aux_w": d.auxiliary_load_w,
        "test_load_w": d.test_load_w,
        "rotating_mass_factor": ROTATING_MASS_FACTOR,
        "axle_share": share,
        "peak_power_w": [a.peak_power_kw * 1000 for a in padded],
        "peak_torque_nm": [a.peak_torque_nm for a in padded],
        "max_speed_rpm": [a.max_speed_rpm for a in padded],
        "gear_ratio": [a.gear_ratio for a in padded],
        "axle_ids": tuple(a.id for a in padded),
        "capacity_ah": pack.capacity_ah,
        "ocv_v": ocv_cell * ns,
        "r0_ohm": cell.r0_ohm * ns / npar,
        "r1_ohm": cell.r1_ohm * ns / npar,
        "tau1_s": cell.r1_ohm * cell.c1_f,
        "r2_ohm": r2 * ns / npar,
        "tau2_s": r2 * c2 if r2 else 1.0,
        "max_discharge_a": pack.peak_discharge_a,
        "max_charge_a": module.peak_charge_a * pack.modules_parallel,
        "min_voltage_v": pack.min_voltage_v,
        "max_voltage_v": pack.max_voltage_v,
        "nominal_voltage_v": pack.nominal_voltage_v,
        "inverter_min_voltage_v": max(a.inverter.min_dc_voltage_v for a in axles),
        "traction_limit_w": sum(a.peak_electrical_power_kw * 1000 for a in axles),
        "heat_capacity_j_per_k": pack.modules_mass_kg * CELL_HEAT_CAPACITY_J_PER_KG_K,
        "conductance_w_per_k": pack.module_count * CONDUCTANCE_W_PER_K_PER_MODULE,
        "energy_kwh": pack.energy_kwh,
        "usable_kwh": vehicle.usable_energy_kwh,
        "charger_efficiency": d.charging.efficiency if d.charging is not None else DEFAULT_CHARGER_EFFICIENCY,
    }
