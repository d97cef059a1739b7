"""What the fleet API serves from (``FleetCloud``), who is calling (a bearer token's operator), and
the typed answers the routers share. Every answer is filtered by the caller's tenant: a vehicle of
another brand answers 404 exactly like a VIN that does not exist.

(No ``from __future__ import annotations`` in the API's modules: FastAPI reads the ``Caller``
dependency from the handlers' annotations at run time.)
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, StrictBool, StrictInt

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.site import SiteView
from opensdv.cloud.fleet.audit import AuditLog
from opensdv.cloud.fleet.commands import CommandOrder
from opensdv.cloud.fleet.data_campaigns import DataCampaigns
from opensdv.cloud.fleet.operators import AuthError, Operator, Operators
from opensdv.cloud.fleet.registry import FleetEntry, RegisteredVehicle, VehicleRegistry
from opensdv.cloud.fleet.throttle import LoginThrottle
from opensdv.cloud.jobs.fleet_health import SOC
from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.telemetry.store import TelemetryStorage
from opensdv.config import GradingSettings
from opensdv.errors import OpenSDVError
from opensdv.link.fleet import Command
from opensdv.model.vehicles import Catalog, load_catalog

__all__ = ["ALERT_WINDOW_S", "CommandRequest", "FleetCloud", "VehicleSummary", "caller_type", "summary", "visible"]

SPEED = "Vehicle.Speed"
ALERT_WINDOW_S = 24 * 3600  # events this recent count as a vehicle's alerts on the fleet page


@dataclass
class FleetCloud:
    """What the API serves from; ``send_command`` signs an order and puts it on the link."""

    registry: VehicleRegistry
    telemetry: TelemetryStorage
    operators: Operators
    send_command: Callable[[CommandOrder], Awaitable[Command]]
    ota: OtaBackend | None = None
    data_campaigns: DataCampaigns | None = None
    passport_records: Path | None = None  # the makers' Battery Pass records, per module type
    sites: dict[str, SiteView] = field(default_factory=dict)  # charging sites by id
    catalog: Catalog = field(default_factory=load_catalog)
    grading: GradingSettings = field(default_factory=GradingSettings)
    clock: Clock = SYSTEM_CLOCK
    audit: AuditLog = field(init=False)
    throttle: LoginThrottle = field(init=False)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.operators.database, self.clock)
        self.throttle = LoginThrottle(self.clock)


class VehicleSummary(BaseModel):
    vin: str
    brand: str
    model: str
    market: str
    online: bool
    soc: float | None
    speed: float | None
    software: dict[str, str]
    last_seen: float | None
    alerts: int = 0


class CommandRequest(BaseModel):
    """A command as an operator sends it: a VSS path and a value (422 naming the field otherwise)."""

    path: str = Field(pattern=r"^Vehicle(\.[A-Za-z0-9_]+)+$", max_length=256)
    value: StrictBool | StrictInt | Annotated[float, Field(allow_inf_nan=False)] | Annotated[str, Field(max_length=256)]


def caller_type(cloud: FleetCloud) -> Any:
    """``Annotated[Operator, Depends(...)]``: the operator of the request's bearer token (401 without)."""
    bearer = HTTPBearer(auto_error=False)

    def operator(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Operator:
        if credentials is None:
            raise HTTPException(
                401, "bearer token required (POST /api/v1/token)", {"WWW-Authenticate": "Bearer"}
            )
        try:
            return cloud.operators.verify(credentials.credentials)
        except AuthError as exc:
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None

    return Annotated[Operator, Depends(operator)]


def visible(cloud: FleetCloud, caller: Operator, vin: str) -> RegisteredVehicle:
    """The vehicle if the caller's tenant may see it; 404 otherwise (as for an unknown VIN)."""
    try:
        vehicle = cloud.registry.get(vin)
    except OpenSDVError:
        vehicle = None
    if vehicle is None or not caller.sees(vehicle.brand):
        raise HTTPException(404, f"no vehicle {vin}")
    return vehicle


def summary(
    vehicle: RegisteredVehicle | FleetEntry,
    statuses: dict[str, Any],
    latest: dict[str, Any],
    seen: float | None,
    alerts: int = 0,
) -> VehicleSummary:
    """One row of the fleet page: the registry's facts, the link status and the latest values."""
    status = statuses.get(vehicle.vin)
    return VehicleSummary(
        vin=vehicle.vin, brand=vehicle.brand, model=vehicle.model, market=vehicle.market,
        online=bool(status and status.online),
        soc=latest[SOC].value if SOC in latest else None,
        speed=latest[SPEED].value if SPEED in latest else None,
        software=status.software if status else {},
        last_seen=seen, alerts=alerts,
    )  # fmt: skip
