"""The app SDK: a kuksa.val.v2 client, a typed VSS model, and ``VehicleApp``."""

from opensdv.vehicle.apps.app import VehicleApp, every, on_change
from opensdv.vehicle.apps.client import VehicleClient
from opensdv.vehicle.apps.errors import (
    AppError,
    BrokerUnreachable,
    SignalDenied,
    SignalNotFound,
    SignalUnavailable,
)
from opensdv.vehicle.apps.model import Signal
from opensdv.vehicle.apps.vehicle_model import Vehicle

__all__ = [
    "AppError",
    "BrokerUnreachable",
    "Signal",
    "SignalDenied",
    "SignalNotFound",
    "SignalUnavailable",
    "Vehicle",
    "VehicleApp",
    "VehicleClient",
    "every",
    "on_change",
]
