"""Batch simulation: many vehicle variants over one drive cycle, vectorised with numpy.

The trace is imposed (the driver follows it); whatever the e-axles or the pack cannot deliver is
recorded as a shortfall with the time it first happens, never as NaN. Mechanics are computed for all
steps at once; the pack is stepped in time for all variants at once, in chunks to bound memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from opensdv.model.vehicles import Vehicle
from opensdv.physics.cycles import DriveCycle, load_cycle
from opensdv.physics.mechanics import NumpyOps, ScalarOps, mechanics, pack_stepper
from opensdv.physics.params import VehicleParams

__all__ = ["ShortfallWarning", "TwinResult", "pack_parameters", "simulate"]

USABLE_WINDOW = (0.05, 0.95)
TRACE_KEYS = (
    "speed_mps",
    "wheel_power_w",
    "electrical_w",
    "motor_torque_nm",
    "motor_speed_rpm",
    "current_a",
    "voltage_v",
    "soc",
    "temp_c",
)


class ShortfallWarning(UserWarning):
    """A vehicle could not deliver the cycle's power at some moment."""


@dataclass
class TwinResult:
    names: tuple[str, ...]
    cycle: DriveCycle
    distance_km: float
    terminal_kwh: NDArray[np.float64]  # energy out of the pack terminals (net of regeneration)
    wheel_kwh: NDArray[np.float64]  # net mechanical energy the e-axles delivered at the wheels
    axle_loss_kwh: NDArray[np.float64]
    aux_kwh: NDArray[np.float64]
    pack_heat_kwh: NDArray[np.float64]
    regen_kwh: NDArray[np.float64]
    friction_brake_kwh: NDArray[np.float64]
    shortfall_kwh: NDArray[np.float64]
    first_shortfall_s: NDArray[np.float64]  # NaN-free: -1 when none
    soc_final: NDArray[np.float64]
    temp_final_c: NDArray[np.float64]
    traces: dict[str, NDArray[np.float64]] = field(default_factory=dict)  # (N, steps) when kept

    @property
    def wh_per_km(self) -> NDArray[np.float64]:
        return self.terminal_kwh * 1000 / self.distance_km

    @property
    def balance_error(self) -> NDArray[np.float64]:
        """|pack terminals - (wheels + e-axle losses + aux)| relative to the pack energy."""
        flows = self.wheel_kwh + self.axle_loss_kwh + self.aux_kwh
        return np.abs(self.terminal_kwh - flows) / np.maximum(np.abs(self.terminal_kwh), 1e-12)


def pack_parameters(params: VehicleParams, rows: Any, dt: float, scalar: bool) -> dict[str, Any]:
    """The pack parameters of the selected vehicles (``rows``) for a stepper at ``dt`` s: as arrays, or
    as plain floats for one vehicle (``scalar``), with the RC decay factors precomputed."""
    keys = (
        "ocv_v",
        "r0_ohm",
        "r1_ohm",
        "r2_ohm",
        "capacity_ah",
        "max_charge_a",
        "max_discharge_a",
        "conductance_w_per_k",
        "heat_capacity_j_per_k",
        "nominal_voltage_v",
        "inverter_min_voltage_v",
        "traction_limit_w",
    )
    p: dict[str, Any] = {key: getattr(params, key)[rows] for key in keys}
    p["decay1"] = np.exp(-dt / params.tau1_s[rows])
    p["decay2"] = np.exp(-dt / params.tau2_s[rows])
    if scalar:
        p = {key: (value[0].tolist() if key == "ocv_v" else float(value[0])) for key, value in p.items()}
    return p


def simulate(
    vehicles: Sequence[Vehicle] | VehicleParams,
    cycle: DriveCycle | str = "udds",
    *,
    soc_start: float = USABLE_WINDOW[1],
    ambient_c: float = 25.0,
    keep_traces: bool | None = None,
    chunk: int = 500,
    progress: Callable[[int], None] | None = None,
) -> TwinResult:
    """Every variant over ``cycle``; traces are kept for up to 16 variants unless told otherwise."""
    params = vehicles if isinstance(vehicles, VehicleParams) else VehicleParams.from_vehicles(list(vehicles))
    drive = load_cycle(cycle) if isinstance(cycle, str) else cycle
    n = len(params)
    keep = n <= 16 if keep_traces is None else keep_traces
    dt = float(drive.time_s[1] - drive.time_s[0])
    v0, v1 = drive.speed_mps[:-1], drive.speed_mps[1:]
    grade = (drive.grade[:-1] + drive.grade[1:]) / 2
    steps = len(v0)
    out = {
        key: np.zeros(n)
        for key in (
            "terminal",
            "wheel",
            "loss",
            "aux",
            "heat",
            "regen",
            "friction",
            "shortfall",
            "soc",
            "temp",
        )
    }
    first_shortfall = np.full(n, -1.0)
    traces: dict[str, NDArray[np.float64]] = {key: np.zeros((n, steps)) for key in TRACE_KEYS} if keep else {}
    for start in range(0, n, chunk):
        rows = np.arange(start, min(start + chunk, n))
        m = len(rows)
        mech = mechanics(params, rows, v0, v1, grade, dt)
        demand = mech.electrical_w + params.aux_w[rows][:, None]
        scalar = m == 1
        ops = ScalarOps if scalar else NumpyOps
        p = pack_parameters(params, rows, dt, scalar)
        state: dict[str, Any] = {"soc": soc_start, "v1": 0.0, "v2": 0.0, "temp_c": ambient_c}
        if not scalar:
            state = {key: np.full(m, value) for key, value in state.items()}
        demand_columns = demand[0].tolist() if scalar else demand.T
        step, snapshot, _ = pack_stepper(p, state, dt, ambient_c, ops)
        columns: dict[str, list[Any]] = {"current": [], "voltage": [], "heat": [], "soc": [], "temp": []}
        if keep:
            for power in demand_columns:
                current_k, voltage_k, heat_k = step(power)
                columns["current"].append(current_k)
                columns["voltage"].append(voltage_k)
                columns["heat"].append(heat_k)
                now = snapshot()
                columns["soc"].append(now["soc"])
                columns["temp"].append(now["temp_c"])
        else:
            columns["current"], columns["voltage"], columns["heat"] = (
                list(c) for c in zip(*map(step, demand_columns), strict=True)
            )
        state = snapshot()
        as_rows = {
            key: np.array(values, dtype=np.float64).reshape(steps, m).T
            for key, values in columns.items()
            if values
        }
        current, voltage, heat = as_rows["current"], as_rows["voltage"], as_rows["heat"]
        delivered = current * voltage
        pack_short = np.maximum(demand - delivered, 0.0) * (demand > 0)
        shortfall = mech.shortfall_w + pack_short
        hours = dt / 3600 / 1000
        out["terminal"][rows] = delivered.sum(axis=1) * hours
        # the pack's own shortfall reduces what reached the e-axles: book it against the wheels
        out["wheel"][rows] = (mech.axle_mech_w.sum(axis=1) - pack_short.sum(axis=1)) * hours
        out["loss"][rows] = mech.axle_loss_w.sum(axis=1) * hours
        out["aux"][rows] = params.aux_w[rows] * steps * dt / 3600 / 1000
        out["heat"][rows] = heat.sum(axis=1) * hours
        out["regen"][rows] = -np.minimum(mech.axle_mech_w, 0.0).sum(axis=1) * hours
        out["friction"][rows] = np.maximum(mech.friction_brake_w, 0.0).sum(axis=1) * hours
        out["shortfall"][rows] = shortfall.sum(axis=1) * hours
        out["soc"][rows] = state["soc"]
        out["temp"][rows] = state["temp_c"]
        missed = shortfall > 1.0
        has = missed.any(axis=1)
        first_shortfall[rows[has]] = drive.time_s[1:][missed[has].argmax(axis=1)]
        if keep:
            for key, value in (("speed_mps", mech.speed_mps), ("wheel_power_w", mech.wheel_power_w), ("electrical_w", demand),
                               ("motor_torque_nm", mech.motor_torque_nm), ("motor_speed_rpm", mech.motor_speed_rpm),
                               ("current_a", current), ("voltage_v", voltage), ("soc", as_rows["soc"]), ("temp_c", as_rows["temp"])):  # fmt: skip
                traces[key][rows] = value
        if progress is not None:
            progress(m)
    for i in np.flatnonzero(first_shortfall >= 0)[:5]:
        warnings.warn(
            f"{params.names[i]}: could not deliver the {drive.name} trace at t={first_shortfall[i]:g} s "
            f"({out['shortfall'][i] * 1000:.1f} Wh short over the cycle)",
            ShortfallWarning,
            stacklevel=2,
        )
    return TwinResult(
        names=params.names,
        cycle=drive,
        distance_km=drive.distance_km,
        terminal_kwh=out["terminal"],
        wheel_kwh=out["wheel"],
        axle_loss_kwh=out["loss"],
        aux_kwh=out["aux"],
        pack_heat_kwh=out["heat"],
        regen_kwh=out["regen"],
        friction_brake_kwh=out["friction"],
        shortfall_kwh=out["shortfall"],
        first_shortfall_s=first_shortfall,
        soc_final=out["soc"],
        temp_final_c=out["temp"],
        traces=traces,
    )
