"""The physics both halves share: drive cycles, vehicle parameters, mechanics, batch simulation,
ageing and range.

``simulate`` runs one or thousands of vehicle variants over a cycle at once (numpy, batch); the
car's real-time twin (``opensdv.vehicle.twin.TwinRuntime``) steps the same functions; ``age``
projects state of health over years.
"""

from opensdv.physics.ageing import AgeingProfile, AgeingResult, age, wear_cost_per_kwh
from opensdv.physics.cycles import SHIPPED_CYCLES, CycleError, DriveCycle, load_cycle
from opensdv.physics.labels import LabelFigures, combined_range_km, label_figures
from opensdv.physics.params import VehicleParams
from opensdv.physics.simulate import TwinResult, simulate

__all__ = [
    "SHIPPED_CYCLES",
    "AgeingProfile",
    "AgeingResult",
    "CycleError",
    "DriveCycle",
    "LabelFigures",
    "TwinResult",
    "VehicleParams",
    "age",
    "combined_range_km",
    "label_figures",
    "load_cycle",
    "simulate",
    "wear_cost_per_kwh",
]
