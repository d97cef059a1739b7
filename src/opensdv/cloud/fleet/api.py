"""The fleet REST API (FastAPI; OpenAPI at /docs): fleet, vehicles, time series, remote commands,
OTA campaigns — every answer filtered by the caller's tenant.

Authentication is OAuth2: ``POST /api/v1/token`` with ``grant_type=password`` (username/password)
or ``client_credentials`` (client_id/client_secret) gives a bearer token. A vehicle of another
brand answers 404 exactly like a VIN that does not exist.

(No ``from __future__ import annotations`` here: FastAPI reads the ``Caller`` dependency from the
handlers' annotations at run time, and it is local to ``create_api``.)
"""

import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.battery.pack_age import age_pack, pack_passport
from opensdv.cloud.energy.battery.soh import health_from_telemetry
from opensdv.cloud.energy.site import ChargingSite
from opensdv.cloud.fleet.operators import PLATFORM, AuthError, Operator, Operators
from opensdv.cloud.fleet.registry import FleetEntry, RegisteredVehicle, VehicleRegistry
from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.campaigns import CampaignProgress, CampaignSpec
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.config import GradingSettings
from opensdv.errors import OpenSDVError
from opensdv.link.fleet import Command
from opensdv.model.vehicles import Catalog, load_catalog
from opensdv.physics import AgeingProfile

__all__ = ["FleetCloud", "create_api"]

SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
SPEED = "Vehicle.Speed"
CURRENT = "Vehicle.Powertrain.TractionBattery.CurrentCurrent"
VOLTAGE = "Vehicle.Powertrain.TractionBattery.CurrentVoltage"


ALERT_WINDOW_S = 24 * 3600  # events this recent count as a vehicle's alerts on the fleet page


@dataclass
class FleetCloud:
    """What the API serves from; ``send_command`` puts a command on the link."""

    registry: VehicleRegistry
    telemetry: TelemetryStore
    operators: Operators
    send_command: Callable[[str, Command], Awaitable[None]]
    ota: OtaBackend | None = None
    sites: dict[str, ChargingSite] = field(default_factory=dict)  # charging sites by id
    catalog: Catalog = field(default_factory=load_catalog)
    grading: GradingSettings = field(default_factory=GradingSettings)
    clock: Clock = SYSTEM_CLOCK


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
    path: str
    value: bool | int | float | str


def create_api(cloud: FleetCloud) -> FastAPI:
    """The fleet REST API and dashboard as a FastAPI app over ``cloud``."""
    app = FastAPI(title="OpenSDV fleet cloud", version="1", docs_url="/docs")
    app.state.cloud = cloud  # for embedding applications (and tests) to reach what it serves

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        """The dashboard: one static page (no build step) that polls this API every second."""
        return FileResponse(Path(__file__).with_name("static") / "index.html", media_type="text/html")

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

    Caller = Annotated[Operator, Depends(operator)]

    @lru_cache(maxsize=256)
    def aged_passport(
        definition: str, vin: str, years: float, daily_km: float, ambient_c: float
    ) -> dict[str, Any]:
        """Passports take the twin a second to age; the same question gets the same answer."""
        profile = AgeingProfile(daily_km=daily_km, ambient_c=ambient_c)
        aged = age_pack(cloud.catalog.vehicle(definition), years, profile, cloud.grading)
        return pack_passport(aged, vin=vin, serial=f"{vin}-PACK")

    def visible(caller: Operator, vin: str) -> RegisteredVehicle:
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
        status = statuses.get(vehicle.vin)
        return VehicleSummary(
            vin=vehicle.vin, brand=vehicle.brand, model=vehicle.model, market=vehicle.market,
            online=bool(status and status.online),
            soc=latest[SOC].value if SOC in latest else None,
            speed=latest[SPEED].value if SPEED in latest else None,
            software=status.software if status else {},
            last_seen=seen, alerts=alerts,
        )  # fmt: skip

    @app.post("/api/v1/token")
    async def token(request: Request) -> dict[str, Any]:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        if grant == "password":
            name, secret = form.get("username", ""), form.get("password", "")
        elif grant == "client_credentials":
            name, secret = form.get("client_id", ""), form.get("client_secret", "")
        else:
            raise HTTPException(400, {"error": "unsupported_grant_type"})
        try:
            who = cloud.operators.authenticate(name, secret)
        except AuthError:
            raise HTTPException(400, {"error": "invalid_client"}) from None
        return {"access_token": cloud.operators.token(who), "token_type": "bearer",
                "expires_in": int(cloud.operators.token_lifetime_s), "tenant": who.tenant}  # fmt: skip

    @app.get("/api/v1/fleet")
    def fleet(caller: Caller) -> list[VehicleSummary]:
        statuses, seen = cloud.telemetry.statuses(), cloud.telemetry.last_seen()
        latest = cloud.telemetry.latest_of([SOC, SPEED])
        alerts = cloud.telemetry.event_counts(cloud.clock.time() - ALERT_WINDOW_S)
        brand = None if caller.tenant == PLATFORM else caller.tenant
        return [
            summary(v, statuses, latest.get(v.vin, {}), seen.get(v.vin), alerts.get(v.vin, 0))
            for v in cloud.registry.entries(brand=brand)
        ]

    @app.get("/api/v1/vehicles/{vin}")
    def vehicle(vin: str, caller: Caller) -> dict[str, Any]:
        found = visible(caller, vin)
        latest = cloud.telemetry.latest(vin)
        return {
            **summary(
                found, cloud.telemetry.statuses(), latest, cloud.telemetry.last_seen().get(vin)
            ).model_dump(),
            "ecus": [{"name": e.name, "hardware_id": e.hardware_id, "serial": e.serial} for e in found.ecus],
            "signals": {path: {"value": p.value, "ts": p.ts} for path, p in sorted(latest.items())},
            "events": [e.model_dump() for e in cloud.telemetry.events(vin)],
        }

    @app.get("/api/v1/vehicles/{vin}/live")
    async def live(vin: str, token: str, period_s: float = 1.0) -> StreamingResponse:
        """Server-sent events: the vehicle's latest signals every ``period_s``. The token comes as a
        query parameter because browsers' EventSource cannot send an Authorization header."""
        try:
            caller = cloud.operators.verify(token)
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None
        visible(caller, vin)

        async def events() -> AsyncIterator[str]:
            while True:
                latest = cloud.telemetry.latest(vin)
                payload = {path: {"value": p.value, "ts": p.ts} for path, p in sorted(latest.items())}
                yield f"event: signals\ndata: {json.dumps(payload)}\n\n"
                await cloud.clock.sleep(max(0.2, period_s))

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/api/v1/vehicles/{vin}/series")
    def series(
        vin: str, path: str, caller: Caller, start: float | None = None, end: float | None = None,
        bucket_s: float | None = None,
    ) -> list[tuple[float, Any]]:  # fmt: skip
        visible(caller, vin)
        end = cloud.clock.time() + 1 if end is None else end
        start = end - 600 if start is None else start
        if bucket_s is not None and bucket_s <= 0:
            raise HTTPException(422, "bucket_s must be positive")
        return [(p.ts, p.value) for p in cloud.telemetry.series(vin, path, start, end, bucket_s)]

    @app.post("/api/v1/vehicles/{vin}/commands", status_code=202)
    async def command(vin: str, body: CommandRequest, caller: Caller) -> dict[str, str]:
        visible(caller, vin)
        if not caller.can_command:
            raise HTTPException(403, f"operator {caller.name} may not command vehicles")
        sent = Command(
            id=uuid.uuid4().hex[:16],
            operator=caller.name,
            path=body.path,
            value=body.value,
            issued_at=cloud.clock.time(),
        )
        await cloud.send_command(vin, sent)
        return {"id": sent.id, "status": "sent; the vehicle's safety guard decides"}

    def own_sessions(caller: Operator, site: ChargingSite) -> list[dict[str, Any]]:
        """A site's sessions the caller may see: a brand's operators only their own cars'."""
        plans = site.session_plans()
        if caller.tenant == PLATFORM:
            return plans
        own = {v.vin for v in cloud.registry.entries(brand=caller.tenant)}
        return [plan for plan in plans if plan["id"] in own]

    @app.get("/api/v1/energy/sites")
    def energy_sites(caller: Caller) -> list[dict[str, Any]]:
        """Every charging site: its cap, stations, the caller's sessions there and the planned peak."""
        return [
            {"id": site_id, "name": site.name, "cap_kw": site.cap_kw, "stations": len(site.csms.stations),
             "sessions": len(own_sessions(caller, site)), "peak_kw": max(site.load_curve(), default=None)}
            for site_id, site in cloud.sites.items()
        ]  # fmt: skip

    @app.get("/api/v1/energy/sites/{site_id}")
    def energy_site(site_id: str, caller: Caller) -> dict[str, Any]:
        """A charging site: stations (OCPP state, limit sent), the plan's load curve and cap, and
        the caller's sessions with what the plan gives them."""
        site = cloud.sites.get(site_id)
        if site is None:
            raise HTTPException(404, f"no charging site {site_id!r}")
        stations = [
            {
                "id": state.station_id,
                "model": state.model,
                "connected": state.booted,
                "connectors": {f"{evse}/{connector}": s for (evse, connector), s in state.connectors.items()},
                "limit_w": site.dispatcher.sent.get(state.station_id),
                "energy_kwh": round(sum(t.energy_wh for t in state.transactions.values()) / 1000, 3),
                "open_transactions": sum(t.ended is None for t in state.transactions.values()),
            }
            for state in site.csms.stations.values()
        ]
        return {"id": site_id, "name": site.name, "cap_kw": site.cap_kw, "slot": site.slot, "slot_h": site.slot_h,
                "load_kw": site.load_curve(), "stations": stations, "sessions": own_sessions(caller, site)}  # fmt: skip

    @app.get("/api/v1/vehicles/{vin}/passport")
    def passport(
        vin: str, caller: Caller, years: float | None = None, daily_km: float = 40.0, ambient_c: float = 15.0
    ) -> dict[str, Any]:
        """The pack's battery passport (EU 2023/1542 attributes, validated against the schema): the
        twin's ageing over ``years`` of use (default: since the model year) and every module graded."""
        found = visible(caller, vin)
        if years is None:
            years = max(time.gmtime(cloud.clock.time()).tm_year - found.model_year, 0.1)
        if not 0 < years <= 30 or daily_km < 0:
            raise HTTPException(422, "years must be in (0, 30] and daily_km >= 0")
        return aged_passport(found.definition_id, vin, years, daily_km, ambient_c)

    @app.get("/api/v1/vehicles/{vin}/health")
    def health(vin: str, caller: Caller, hours: float = 24.0) -> dict[str, Any]:
        """The pack's state of health and internal resistance measured from its own telemetry of
        the last ``hours`` (current, voltage and state of charge, second by second): capacity from
        the charge counted between state-of-charge points, resistance from current steps. An
        estimate the data cannot support is null, with the reason in ``notes``."""
        found = visible(caller, vin)
        if not 0 < hours <= 744:
            raise HTTPException(422, "hours must be in (0, 744]")
        end = cloud.clock.time() + 1
        columns = [
            {p.ts: float(p.value) for p in cloud.telemetry.series(vin, path, end - hours * 3600, end, 1.0)}
            for path in (CURRENT, VOLTAGE, SOC)
        ]
        seconds = sorted(set(columns[0]).intersection(*columns[1:]))
        current, voltage, soc = (np.array([c[t] for t in seconds]) for c in columns)
        vehicle = cloud.catalog.vehicle(found.definition_id)
        measured = health_from_telemetry(vehicle, np.array(seconds), current, voltage, soc / 100)
        rounded = {name: None if value is None else round(value, digits) for name, value, digits in (
            ("capacity_ah", measured.capacity_ah, 2), ("soh_percent", measured.soh and measured.soh * 100, 2),
            ("resistance_ohm", measured.resistance_ohm, 4), ("resistance_factor", measured.resistance_factor, 3),
        )}  # fmt: skip
        return {"vin": vin, "hours": hours, "samples": measured.samples, "window_s": round(measured.window_s, 1),
                "rated_capacity_ah": round(vehicle.pack.capacity_ah, 2), **rounded, "notes": list(measured.notes)}  # fmt: skip

    @app.get("/api/v1/campaigns")
    def campaigns(caller: Caller) -> list[dict[str, Any]]:
        if cloud.ota is None:
            return []
        return [vars(p) for p in cloud.ota.campaigns.all()]

    @app.post("/api/v1/campaigns", status_code=201)
    def create_campaign(spec: CampaignSpec, caller: Caller) -> dict[str, Any]:
        """Start a campaign: who is eligible is worked out now and stage 1 is assigned."""
        if cloud.ota is None:
            raise HTTPException(404, "no OTA back end")
        if caller.tenant != PLATFORM:
            raise HTTPException(403, "only the platform operator steers campaigns")
        try:
            return vars(cloud.ota.campaigns.create(spec))
        except OpenSDVError as exc:
            raise HTTPException(409, str(exc)) from None

    @app.post("/api/v1/campaigns/{campaign}/{action}")
    def campaign_action(campaign: str, action: str, caller: Caller) -> dict[str, Any]:
        if cloud.ota is None:
            raise HTTPException(404, "no OTA back end")
        if caller.tenant != PLATFORM:
            raise HTTPException(403, "only the platform operator steers campaigns")
        if action not in ("pause", "resume", "advance", "cancel"):
            raise HTTPException(404, f"no action {action!r}")
        steer: Callable[[str], CampaignProgress] = getattr(cloud.ota.campaigns, action)
        try:
            return vars(steer(campaign))
        except OpenSDVError as exc:
            raise HTTPException(409, str(exc)) from None

    return app
