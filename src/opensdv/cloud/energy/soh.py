"""State of health from the telemetry a broker sees: capacity from charge throughput between
state-of-charge points, resistance from current steps — checked against the twin's ageing model.

Both estimators are robust fits rather than single differences, so sensor noise averages out:
capacity is the slope of the charge drawn against the BMS's state of charge (least squares);
resistance is the median of -dV/dI over the samples where the current jumps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from opensdv.model.vehicles import Vehicle
from opensdv.vehicle.twin import VehicleParams, load_cycle, simulate
from opensdv.vehicle.twin.cycles import DriveCycle
from opensdv.vehicle.twin.simulate import ShortfallWarning

__all__ = ["FleetEvaluation", "estimate_capacity_ah", "estimate_resistance_ohm", "evaluate_fleet"]

MIN_STEP_A = 20.0


def estimate_capacity_ah(current_a: NDArray[np.float64], soc: NDArray[np.float64], dt_s: float) -> float:
    """Capacity (Ah) from discharge current (positive) and the BMS's state of charge (0..1)."""
    drawn_ah = np.cumsum(current_a) * dt_s / 3600
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
    soh = rng.uniform(0.70, 1.0, cars)
    resistance = 1 + 1.5 * (1 - soh)
    base = VehicleParams.from_vehicles([vehicle]).repeat(cars)
    params = base.with_changes(capacity_ah=base.capacity_ah * soh, r0_ohm=base.r0_ohm * resistance)
    drive = load_cycle(cycle) if isinstance(cycle, str) else cycle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        result = simulate(params, drive, soc_start=0.9, keep_traces=True)
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
