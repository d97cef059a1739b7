"""The physics, shared by batch and real-time modes.

Mechanics (road load, e-axle torque, speed and losses) are plain numpy expressions that work on a
whole (vehicles x time) array or on one value. The battery is a state machine stepped in time; its
step is written once against a tiny ``ops`` interface so that the same code runs on numpy arrays
(thousands of variants per step) and on Python floats (one vehicle, where numpy's per-call overhead
would dominate).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from opensdv.model.components import EfficiencyMap

__all__ = [
    "AIR_DENSITY",
    "GRAVITY",
    "Mechanics",
    "NumpyOps",
    "ScalarOps",
    "bilinear_efficiency",
    "mechanics",
    "pack_stepper",
]

AIR_DENSITY = 1.2  # kg/m3 at 20 degC
GRAVITY = 9.81
REGEN_FADE_MPS = (1.0, 4.0)
ROTATING_MASS_FACTOR = (
    0.03  # wheels, gears, rotor as extra equivalent mass  # regeneration fades in between these speeds (m/s)
)
RPM_PER_RAD_S = 60 / (2 * math.pi)


def bilinear_efficiency(efficiency_map: EfficiencyMap, torque_nm: Any, speed_rpm: Any) -> Any:
    """Efficiency at |torque| and speed, bilinear over the map's grid (clamped to its edges)."""
    torques = np.asarray(efficiency_map.torques_nm)
    speeds = np.asarray(efficiency_map.speeds_rpm)
    grid = np.asarray(efficiency_map.efficiency)
    t = np.clip(np.abs(torque_nm), torques[0], torques[-1])
    s = np.clip(np.abs(speed_rpm), speeds[0], speeds[-1])
    i = np.clip(np.searchsorted(torques, t, side="right") - 1, 0, len(torques) - 2)
    j = np.clip(np.searchsorted(speeds, s, side="right") - 1, 0, len(speeds) - 2)
    wt = (t - torques[i]) / (torques[i + 1] - torques[i])
    ws = (s - speeds[j]) / (speeds[j + 1] - speeds[j])
    return (
        grid[i, j] * (1 - wt) * (1 - ws)
        + grid[i + 1, j] * wt * (1 - ws)
        + grid[i, j + 1] * (1 - wt) * ws
        + grid[i + 1, j + 1] * wt * ws
    )


@dataclass
class Mechanics:
    """Per step (same shape as the speed input): what the wheels, motors and brakes do."""

    speed_mps: Any
    accel_mps2: Any
    wheel_power_w: Any  # demanded at the wheels (traction > 0)
    motor_torque_nm: Any  # summed over the e-axles
    motor_speed_rpm: Any  # fastest e-axle
    axle_mech_w: Any  # delivered by the e-axles at the wheels (traction > 0, regen < 0)
    axle_loss_w: Any
    electrical_w: Any  # drawn by the e-axles from the pack (before aux)
    friction_brake_w: Any
    shortfall_w: Any  # traction the e-axles could not deliver


def mechanics(params: Any, rows: Any, v0: Any, v1: Any, grade: Any, dt: float) -> Mechanics:
    """Road load and e-axle response between speeds ``v0`` and ``v1`` (m/s) over ``dt`` seconds.

    ``rows`` selects the vehicles of ``params`` (an index array); speeds are (steps,) — the same
    trace for every selected vehicle — or (vehicles, steps).
    """
    column = (slice(None), None)
    m = params.mass_kg[rows][column]
    accel = (v1 - v0) / dt
    speed = (v0 + v1) / 2
    grade_force = 0.0
    rolling = np.where(speed > 0.01, 1.0, 0.0)
    if np.any(grade):
        angle = np.arctan(grade)
        rolling = rolling * np.cos(angle)
        grade_force = m * GRAVITY * np.sin(angle)
    force = m * (1 + params.rotating_mass_factor[rows][column]) * accel + (
        0.5 * AIR_DENSITY * params.cda_m2[rows][column]
    ) * (speed * speed)
    force = force + (m * GRAVITY * params.crr[rows][column] + params.linear_n_per_mps[rows][column] * speed) * rolling
    force = force + grade_force
    wheel_power = force * speed
    omega_wheel = speed / params.wheel_radius_m[rows][column]
    regen_fraction = np.clip((speed - REGEN_FADE_MPS[0]) / (REGEN_FADE_MPS[1] - REGEN_FADE_MPS[0]), 0.0, 1.0)
    traction = wheel_power > 0
    shape = np.broadcast_shapes(np.shape(wheel_power), np.shape(omega_wheel))
    torque_sum = np.zeros(shape)
    rpm_max = np.zeros(shape)
    mech_sum = np.zeros(shape)
    loss_sum = np.zeros(shape)
    shortfall = np.zeros(shape)
    for axle in (0, 1):
        share_rows = params.axle_share[rows, axle]
        if not np.any(share_rows):
            continue  # no second e-axle in this chunk
        share = share_rows[column]
        omega = omega_wheel * params.gear_ratio[rows, axle][column]
        rpm_axle = np.minimum(omega * RPM_PER_RAD_S, params.max_speed_rpm[rows, axle][column])
        safe_omega = np.maximum(omega, 1e-6)
        limit_w = np.minimum(
            params.peak_power_w[rows, axle][column], params.peak_torque_nm[rows, axle][column] * safe_omega
        )
        demand = wheel_power * share
        delivered = np.where(
            traction, np.minimum(demand, limit_w), np.maximum(demand, -limit_w * regen_fraction)
        )
        shortfall += np.where(traction, demand - delivered, 0.0)
        torque = delivered / safe_omega
        efficiency = _efficiency(params, rows, axle, torque, rpm_axle)
        electrical = np.where(delivered >= 0, delivered / efficiency, delivered * efficiency)
        torque_sum += torque
        np.maximum(rpm_max, rpm_axle, out=rpm_max)
        mech_sum += delivered
        loss_sum += (electrical - delivered) * (share > 0)
    return Mechanics(
        speed_mps=np.broadcast_to(speed, shape),
        accel_mps2=np.broadcast_to(accel, shape),
        wheel_power_w=wheel_power,
        motor_torque_nm=torque_sum,
        motor_speed_rpm=rpm_max,
        axle_mech_w=mech_sum,
        axle_loss_w=loss_sum,
        electrical_w=mech_sum + loss_sum,
        friction_brake_w=np.where(wheel_power < 0, mech_sum - wheel_power, 0.0),
        shortfall_w=shortfall,
    )


def _efficiency(params: Any, rows: Any, axle: int, torque: Any, rpm: Any) -> Any:
    """Each variant's own map; variants sharing an e-axle are looked up together."""
    which = params.axle_map[rows, axle].astype(np.int64)
    kinds = np.unique(which)
    if len(kinds) == 1:
        return bilinear_efficiency(params.maps_list[kinds[0]], torque, rpm)
    result = np.ones(np.broadcast_shapes(np.shape(torque), np.shape(rpm)))
    for index in kinds:
        chosen = which == index
        result[chosen] = bilinear_efficiency(
            params.maps_list[index], torque[chosen], np.broadcast_to(rpm, result.shape)[chosen]
        )
    return result


class NumpyOps:
    """Array operations for stepping many vehicles at once."""
    sqrt = staticmethod(np.sqrt)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)


class ScalarOps:
    """Scalar operations for stepping one vehicle (no numpy overhead per step)."""
    sqrt = staticmethod(math.sqrt)
    minimum = staticmethod(min)
    maximum = staticmethod(max)

    @staticmethod
    def where(condition: bool, a: float, b: float) -> float:
        return a if condition else b


def _ocv_function(ocv_table: Any, ops: Any) -> Any:
    """Pack OCV on the 0.01-step SoC grid, linear between points (per row for arrays)."""
    if ops is ScalarOps:
        table: list[float] = [float(v) for v in ocv_table]

        def scalar(soc: float) -> float:
            position = min(max(soc, 0.0), 1.0) * 100
            i = min(int(position), 99)
            w = position - i
            return table[i] * (1 - w) + table[i + 1] * w

        return scalar
    rows = np.arange(len(ocv_table))

    def vector(soc: Any) -> Any:
        position = np.clip(soc, 0.0, 1.0) * 100
        i = np.minimum(position.astype(np.int64), 99)
        w = position - i
        return ocv_table[rows, i] * (1 - w) + ocv_table[rows, i + 1] * w

    return vector


PackStep = Callable[[Any], tuple[Any, Any, Any]]


def pack_stepper(
    p: Any, state: dict[str, Any], dt: float, ambient_c: Any, ops: Any
) -> tuple[PackStep, Callable[[], dict[str, Any]], Callable[[Any], tuple[Any, Any]]]:
    """Functions advancing the pack by ``dt``: ``step(power)`` delivers a power at its terminals
    (discharge > 0), ``advance(current)`` carries a current (what a charger or a cell tester
    imposes), and ``snapshot()`` reads the state (soc, v1, v2, temp_c).

    ``p`` holds the pack parameters (arrays for many variants with ``NumpyOps``, floats for one with
    ``ScalarOps``). Each step returns (current, terminal voltage, heat); the power delivered is
    current x voltage. Current is limited by the cell limits and by the most power the pack can give
    (the top of V*I); what is missing shows as delivered < asked. Parameters are bound once, so a
    step costs only its arithmetic.
    """
    ocv_of = _ocv_function(p["ocv_v"], ops)
    r0, r1, r2 = p["r0_ohm"], p["r1_ohm"], p["r2_ohm"]
    decay1, decay2 = p["decay1"], p["decay2"]
    charge_limit, discharge_limit = -p["max_charge_a"], p["max_discharge_a"]
    ah_per_step = dt / 3600 / p["capacity_ah"]
    conductance, heat_step = p["conductance_w_per_k"], dt / p["heat_capacity_j_per_k"]
    sqrt, minimum, maximum, where = ops.sqrt, ops.minimum, ops.maximum, ops.where
    # e-axle derating by pack voltage: constant current below nominal, nothing below the inverter's minimum
    nominal = p.get("nominal_voltage_v", 1.0)
    limit_per_volt = p.get("traction_limit_w", math.inf) / nominal
    inverter_min = p.get("inverter_min_voltage_v", 0.0)
    soc, v1, v2, temp = state["soc"], state["v1"], state["v2"], state["temp_c"]
    last_voltage = state.get("voltage_v", ocv_of(soc))

    def carry(current: Any, v_oc: Any) -> tuple[Any, Any]:
        nonlocal soc, v1, v2, temp, last_voltage
        terminal = v_oc - current * r0
        last_voltage = terminal
        heat = current * current * r0 + current * (v1 + v2)  # ocv*I - terminal*I
        v1 = v1 * decay1 + r1 * current * (1 - decay1)
        v2 = v2 * decay2 + r2 * current * (1 - decay2)
        soc = soc - current * ah_per_step
        temp = temp + (heat - conductance * (temp - ambient_c)) * heat_step
        return terminal, heat

    def advance(current: Any) -> tuple[Any, Any]:
        """Carry ``current`` (discharge > 0) for one step: (terminal voltage, heat)."""
        return carry(current, ocv_of(soc) - v1 - v2)

    def step(power_w: Any) -> tuple[Any, Any, Any]:
        """Deliver ``power_w`` at the terminals (as far as the limits allow): (current, voltage, heat)."""
        ceiling = where(last_voltage < inverter_min, 0.0, minimum(last_voltage, nominal) * limit_per_volt)
        power_w = minimum(power_w, ceiling)
        v_oc = ocv_of(soc) - v1 - v2
        current = (v_oc - sqrt(maximum(v_oc * v_oc - 4 * r0 * power_w, 0.0))) / (2 * r0)
        current = minimum(maximum(current, charge_limit), discharge_limit)
        terminal, heat = carry(current, v_oc)
        return current, terminal, heat

    def snapshot() -> dict[str, Any]:
        return {"soc": soc, "v1": v1, "v2": v2, "temp_c": temp, "voltage_v": last_voltage}

    return step, snapshot, advance
