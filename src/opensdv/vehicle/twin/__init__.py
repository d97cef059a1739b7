"""Physical twins: standard packs, e-axles and whole vehicles on drive cycles.

``simulate`` runs one or thousands of vehicle variants over a cycle at once (numpy, batch);
``TwinRuntime`` steps one vehicle in real time to drive its CAN bus or a broker; ``age`` projects
state of health over years. Both modes share the same physics functions.
"""

from opensdv.vehicle.twin.ageing import AgeingProfile, AgeingResult, age, wear_cost_per_kwh
from opensdv.vehicle.twin.cycles import SHIPPED_CYCLES, CycleError, DriveCycle, load_cycle
from opensdv.vehicle.twin.params import VehicleParams
from opensdv.vehicle.twin.realtime import TwinRuntime
from opensdv.vehicle.twin.simulate import TwinResult, combined_range_km, simulate

__all__ = [
    "SHIPPED_CYCLES",
    "AgeingProfile",
    "AgeingResult",
    "CycleError",
    "DriveCycle",
    "TwinResult",
    "TwinRuntime",
    "VehicleParams",
    "age",
    "combined_range_km",
    "load_cycle",
    "simulate",
    "wear_cost_per_kwh",
]
