"""One vehicle stepped in real time (10-100 Hz), producing VSS values for its CAN bus or a broker.

The same mechanics and pack step as the batch simulator, on one vehicle; the cycle repeats when it
ends. ``vss_values`` uses VSS conventions (battery current positive while charging).
"""

from __future__ import annotations

from typing import Any

import can
import numpy as np

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.model.vehicles import Vehicle
from opensdv.physics.cycles import DriveCycle, load_cycle
from opensdv.physics.mechanics import ScalarOps, mechanics, pack_stepper
from opensdv.physics.params import VehicleParams
from opensdv.physics.simulate import pack_parameters
from opensdv.vehicle.can import EcuSimulator
from opensdv.vehicle.twin.driver import CruiseDriver

__all__ = ["TwinRuntime", "drive_bus"]

ROW = np.array([0])


class TwinRuntime:
    """A twin stepping in real time, publishing its signals as the car's would be measured."""
    def __init__(
        self,
        vehicle: Vehicle,
        cycle: DriveCycle | str = "udds",
        *,
        soc_start: float = 0.9,
        ambient_c: float = 25.0,
        start_s: float = 0.0,
    ) -> None:
        self.vehicle = vehicle
        self.cycle = load_cycle(cycle) if isinstance(cycle, str) else cycle
        self.params = VehicleParams.from_vehicles([vehicle])
        self.ambient_c = ambient_c
        self.time_s = start_s  # where in the cycle to begin (the cycle repeats)
        self.distance_m = 0.0
        self.state: dict[str, Any] = {"soc": soc_start, "v1": 0.0, "v2": 0.0, "temp_c": ambient_c}
        self._plans: dict[float, dict[str, Any]] = {}
        self._stepper: Any = None
        self._stepper_dt = 0.0
        self.last: dict[str, float] = {}
        self.driver = CruiseDriver()

    def _plan(self, dt: float) -> dict[str, Any]:
        """Mechanics do not depend on the pack, so they are computed once for the whole cycle at
        this ``dt`` (vectorised); each real-time step then only steps the pack."""
        plan = self._plans.get(dt)
        if plan is None:
            times = np.arange(0.0, self.cycle.duration_s, dt)
            ends = np.minimum(times + dt, self.cycle.duration_s)
            v0 = np.interp(times, self.cycle.time_s, self.cycle.speed_mps)
            v1 = np.interp(ends, self.cycle.time_s, self.cycle.speed_mps)
            grade = np.interp(times, self.cycle.time_s, self.cycle.grade)
            mech = mechanics(self.params, ROW, v0, v1, grade, dt)
            plan = self._plans[dt] = {
                "speed_mps": mech.speed_mps[0].tolist(),
                "accel_mps2": mech.accel_mps2[0].tolist(),
                "motor_torque_nm": mech.motor_torque_nm[0].tolist(),
                "motor_speed_rpm": mech.motor_speed_rpm[0].tolist(),
                "motor_power_w": mech.axle_mech_w[0].tolist(),
                "demand_w": (mech.electrical_w[0] + self.params.aux_w[0]).tolist(),
                "pack": pack_parameters(self.params, ROW, dt, scalar=True),
            }
        return plan

    def step(self, dt: float) -> dict[str, float]:
        """Advance ``dt`` seconds along the cycle (wrapping at its end); return this step's physics."""
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        plan = self._plan(dt)
        if self._stepper_dt != dt:  # the pack continues from its state at whatever step size
            self._stepper = pack_stepper(plan["pack"], self.state, dt, self.ambient_c, ScalarOps)
            self._stepper_dt = dt
        step, snapshot, _ = self._stepper
        k = round(self.time_s / dt) % len(plan["speed_mps"])
        current, voltage, _ = step(plan["demand_w"][k])
        self.state = snapshot()
        self.time_s += dt
        self.distance_m += plan["speed_mps"][k] * dt
        self.driver.step(dt, plan["speed_mps"][k] * 3.6, plan["accel_mps2"][k])
        self.last = {
            "speed_mps": plan["speed_mps"][k],
            "accel_mps2": plan["accel_mps2"][k],
            "motor_torque_nm": plan["motor_torque_nm"][k],
            "motor_speed_rpm": plan["motor_speed_rpm"][k],
            "motor_power_w": plan["motor_power_w"][k],
            "current_a": current,
            "voltage_v": voltage,
            "soc": self.state["soc"],
            "temp_c": self.state["temp_c"],
        }
        return self.last

    def vss_values(self) -> dict[str, Any]:
        """The latest step as VSS signal values (the ones the brand adapters map)."""
        s = self.last
        speed_kmh = s["speed_mps"] * 3.6
        return {
            "Vehicle.Speed": round(speed_kmh, 2),
            "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed": round(speed_kmh, 2),
            "Vehicle.Chassis.Axle.Row1.Wheel.Right.Speed": round(speed_kmh, 2),
            "Vehicle.Chassis.Axle.Row2.Wheel.Left.Speed": round(speed_kmh, 2),
            "Vehicle.Chassis.Axle.Row2.Wheel.Right.Speed": round(speed_kmh, 2),
            "Vehicle.Acceleration.Longitudinal": round(s["accel_mps2"], 2),
            "Vehicle.Powertrain.ElectricMotor.Speed": round(s["motor_speed_rpm"]),
            "Vehicle.Powertrain.ElectricMotor.Torque": round(s["motor_torque_nm"]),
            "Vehicle.Powertrain.ElectricMotor.Power": round(s["motor_power_w"] / 1000),
            "Vehicle.Powertrain.TractionBattery.CurrentVoltage": round(s["voltage_v"], 1),
            "Vehicle.Powertrain.TractionBattery.CurrentCurrent": round(-s["current_a"], 1),
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": round(s["soc"] * 100, 1),
            "Vehicle.Powertrain.TractionBattery.Temperature.Average": round(s["temp_c"]),
            "Vehicle.Powertrain.TractionBattery.Temperature.Min": round(s["temp_c"]) - 1,
            "Vehicle.Powertrain.TractionBattery.Temperature.Max": round(s["temp_c"]) + 1,
            "Vehicle.TraveledDistance": int(self.distance_m),
        } | self.driver.vss_values()


async def drive_bus(
    twin: TwinRuntime,
    bus: can.BusABC,
    simulator: EcuSimulator,
    tick_s: float = 0.01,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """Step the twin in real time and put its signals on ``bus`` as the brand's ECUs would: a
    simulated car for the demo, benches and ``vehicle run`` with ``bus.simulate``."""
    started = clock.monotonic()
    ticks = 0
    while True:
        twin.step(tick_s)
        simulator.update(twin.vss_values())
        for frame in simulator.frames_due(ticks * tick_s):
            bus.send(frame)
        ticks += 1
        await clock.sleep(max(0.0, started + ticks * tick_s - clock.monotonic()))
