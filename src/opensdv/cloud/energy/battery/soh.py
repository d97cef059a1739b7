"""State of health from the telemetry a broker sees: capacity from charge throughput between
state-of-charge points, resistance from current steps — checked against the twin's ageing model.

Both estimators are robust fits rather than single differences, so sensor noise averages out:
capacity is the slope of the charge drawn against the BMS's state of charge (least squares);
resistance is the median of -dV/dI over the samples where the current jumps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensdv.model.vehicles import Vehicle
from opensdv.physics import VehicleParams, load_cycle, simulate
from opensdv.physics.cycles import DriveCycle
from opensdv.physics.simulate import ShortfallWarning

__all__ = [
    "FleetEvaluation",
    "MeasuredHealth",
    "estimate_capacity_ah",
    "estimate_module_health",
    "estimate_resistance_ohm",
    "evaluate_fleet",
    "evaluate_modules",
    "health_from_telemetry",
]

MIN_STEP_A = 20.0
MAX_GAP_S = 5.0  # telemetry further apart than this is not one stretch (the car was off or offline)


def estimate_capacity_ah(
    current_a: NDArray[np.float64], soc: NDArray[np.float64], dt_s: float | NDArray[np.float64]
) -> float:
    """Capacity (Ah) from discharge current (positive) and the BMS's state of charge (0..1);
    ``dt_s`` is the sample period, or each sample's own (irregular telemetry)."""
    drawn_ah = np.cumsum(current_a * dt_s) / 3600
    span = soc.max() - soc.min()
    if span < 0.02:
        raise ValueError(f"state of charge moved only {span * 100:.1f} %: too little to estimate capacity")
    slope = np.polyfit(soc, drawn_ah, 1)[0]
    return float(-slope)


def estimate_resistance_ohm(current_a: NDArray[np.float64], voltage_v: NDArray[np.float64]) -> float:
    """Internal resistance (ohm) from the voltage response to current steps of at least 20 A."""
    d_current = np.diff(current_a)
    d_voltage = np.diff(voltage_v)
    steps = np.abs(d_current) >= MIN_STEP_A
    if steps.sum() < 5:
        raise ValueError(
            f"only {int(steps.sum())} current steps of {MIN_STEP_A:g} A or more: too few to estimate resistance"
        )
    return float(np.median(-d_voltage[steps] / d_current[steps]))


@dataclass(frozen=True)
class FleetEvaluation:
    """True and estimated state of health and resistance factor: of a fleet's packs, or of one
    pack's modules."""

    true_soh: NDArray[np.float64]
    estimated_soh: NDArray[np.float64]
    true_resistance_factor: NDArray[np.float64]
    estimated_resistance_factor: NDArray[np.float64]

    @property
    def soh_rmse_points(self) -> float:
        return float(np.sqrt(np.mean((self.estimated_soh - self.true_soh) ** 2)) * 100)

    @property
    def resistance_rmse(self) -> float:
        return float(np.sqrt(np.mean((self.estimated_resistance_factor - self.true_resistance_factor) ** 2)))


@dataclass(frozen=True)
class MeasuredHealth:
    """A pack's health from its own telemetry; an estimate it could not make is None, with the
    reason in ``notes``."""

    samples: int
    window_s: float
    capacity_ah: float | None
    soh: float | None
    resistance_ohm: float | None
    resistance_factor: float | None  # against the new pack's
    notes: tuple[str, ...]


def health_from_telemetry(
    vehicle: Vehicle,
    time_s: NDArray[np.float64],
    current_a: NDArray[np.float64],
    voltage_v: NDArray[np.float64],
    soc: NDArray[np.float64],
) -> MeasuredHealth:
    """State of health and resistance from battery telemetry as VSS has it (current positive into
    the battery, state of charge 0..1), sampled together; the longest stretch without a gap of
    more than ``MAX_GAP_S`` is used, so charge is only counted while it was measured."""
    if len(time_s) < 2:
        return MeasuredHealth(
            len(time_s), 0.0, None, None, None, None, ("no battery telemetry in the window",)
        )
    breaks = np.flatnonzero(np.diff(time_s) > MAX_GAP_S) + 1
    edges = np.concatenate([[0], breaks, [len(time_s)]])
    longest = int(np.argmax(np.diff(edges)))
    part = slice(int(edges[longest]), int(edges[longest + 1]))
    t, discharge, volts, state = time_s[part], -current_a[part], voltage_v[part], soc[part]
    new = VehicleParams.from_vehicles([vehicle])
    notes: list[str] = []
    capacity = soh = resistance = factor = None
    try:
        capacity = estimate_capacity_ah(discharge, state, np.diff(t, prepend=t[0]))
        soh = capacity / float(new.capacity_ah[0])
    except ValueError as error:
        notes.append(f"capacity: {error}")
    try:
        resistance = estimate_resistance_ohm(discharge, volts)
        factor = resistance / float(new.r0_ohm[0])
    except ValueError as error:
        notes.append(f"resistance: {error}")
    return MeasuredHealth(len(t), float(t[-1] - t[0]), capacity, soh, resistance, factor, tuple(notes))


def _aged(rng: np.random.Generator, count: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Capacity 70-100 % of new, resistance growing 1.5 % per 1 % lost (as the ageing model says)."""
    soh = rng.uniform(0.70, 1.0, count)
    return soh, 1 + 1.5 * (1 - soh)


def _drive(params: VehicleParams, cycle: DriveCycle | str) -> tuple[DriveCycle, Any]:
    """The twin from 90 % state of charge, with traces (shortfalls of a weak pack are expected)."""
    drive = load_cycle(cycle) if isinstance(cycle, str) else cycle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        return drive, simulate(params, drive, soc_start=0.9, keep_traces=True)


def evaluate_fleet(
    vehicle: Vehicle,
    cars: int = 50,
    *,
    cycle: DriveCycle | str = "udds",
    noise_current_a: float = 0.5,
    noise_voltage_v: float = 0.2,
    noise_soc: float = 0.002,
    seed: int = 1,
) -> FleetEvaluation:
    """Simulate a fleet of ``vehicle`` with aged packs (capacity 70-100 %, resistance growing 1.5 %
    per 1 % lost, as the ageing model says), add sensor noise, estimate, compare with the truth."""
    rng = np.random.default_rng(seed)
    soh, resistance = _aged(rng, cars)
    base = VehicleParams.from_vehicles([vehicle]).repeat(cars)
    params = base.with_changes(capacity_ah=base.capacity_ah * soh, r0_ohm=base.r0_ohm * resistance)
    drive, result = _drive(params, cycle)
    dt = float(drive.time_s[1] - drive.time_s[0])
    current = result.traces["current_a"] + rng.normal(0, noise_current_a, result.traces["current_a"].shape)
    voltage = result.traces["voltage_v"] + rng.normal(0, noise_voltage_v, result.traces["voltage_v"].shape)
    soc = result.traces["soc"] + rng.normal(0, noise_soc, result.traces["soc"].shape)
    new_capacity, new_r0 = float(base.capacity_ah[0]), float(base.r0_ohm[0])
    estimated_soh = np.array(
        [estimate_capacity_ah(current[i], soc[i], dt) / new_capacity for i in range(cars)]
    )
    estimated_r = np.array([estimate_resistance_ohm(current[i], voltage[i]) / new_r0 for i in range(cars)])
    return FleetEvaluation(soh, estimated_soh, resistance, estimated_r)


def estimate_module_health(
    current_a: NDArray[np.float64],
    module_voltage_v: NDArray[np.float64],
    module_soc: NDArray[np.float64],
    dt_s: float,
    new_capacity_ah: float,
    new_module_r0_ohm: float,
) -> list[tuple[float, float]]:
    """(SoH, resistance factor) of each module in series from what its slave board reports: the
    pack current is every module's current, so the pack estimators apply module by module."""
    return [
        (
            estimate_capacity_ah(current_a, module_soc[m], dt_s) / new_capacity_ah,
            estimate_resistance_ohm(current_a, module_voltage_v[m]) / new_module_r0_ohm,
        )
        for m in range(module_voltage_v.shape[0])
    ]


def evaluate_modules(
    vehicle: Vehicle,
    *,
    cycle: DriveCycle | str = "wltc_class3b",
    noise_voltage_v: float = 0.01,
    noise_soc: float = 0.002,
    noise_current_a: float = 0.5,
    seed: int = 1,
) -> FleetEvaluation:
    """One pack whose modules aged differently (70-100 % capacity, resistance growing 1.5 % per 1 %
    lost): the pack current comes from the twin, each module's voltage and state of charge follow
    from its own capacity, open-circuit voltage and resistance (modules in series carry one current),
    sensor noise is added, and the module estimates are compared with the truth."""
    rng = np.random.default_rng(seed)
    modules = vehicle.pack.modules_series
    soh, resistance = _aged(rng, modules)
    params = VehicleParams.from_vehicles([vehicle])
    drive, result = _drive(params, cycle)
    dt = float(drive.time_s[1] - drive.time_s[0])
    current = result.traces["current_a"][0]
    capacity = float(params.capacity_ah[0])
    module_r0 = float(params.r0_ohm[0]) / modules
    module_ocv = params.ocv_v[0] / modules  # on the 0.01-step SoC grid
    drawn_ah = np.cumsum(current) * dt / 3600
    soc = 0.9 - drawn_ah[None, :] / (capacity * soh[:, None])
    voltage = np.interp(soc, np.linspace(0, 1, len(module_ocv)), module_ocv) - current[None, :] * (
        module_r0 * resistance[:, None]
    )
    noisy_current = current + rng.normal(0, noise_current_a, current.shape)
    estimates = estimate_module_health(
        noisy_current,
        voltage + rng.normal(0, noise_voltage_v, voltage.shape),
        soc + rng.normal(0, noise_soc, soc.shape),
        dt,
        capacity,
        module_r0,
    )
    return FleetEvaluation(
        soh, np.array([e[0] for e in estimates]), resistance, np.array([e[1] for e in estimates])
    )
