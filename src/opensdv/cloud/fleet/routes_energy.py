"""Charging sites: their stations, the plan's load curve, and the caller's sessions there."""

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from opensdv.cloud.energy.site import SiteView
from opensdv.cloud.fleet.operators import PLATFORM, Operator
from opensdv.cloud.fleet.service import FleetCloud

__all__ = ["energy_routes"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GridSignalRequest(_Body):
    """The site may draw at most ``cap_kw`` from ``start`` (default: now) to ``end``."""

    cap_kw: float = Field(ge=0, le=100_000)
    start: AwareDatetime | None = None
    end: AwareDatetime


class DriverNeedsRequest(_Body):
    """What the driver of a car that reports no ISO 15118 needs said: when it leaves, how much it wants."""

    departure: AwareDatetime
    kwh: float = Field(ge=0, le=500)


def energy_routes(cloud: FleetCloud, Caller: Any) -> APIRouter:
    """The charging-site endpoints; a brand's operators see only their own cars' sessions and the
    stations those cars are at."""
    app = APIRouter()

    def own_sessions(caller: Operator, site: SiteView) -> list[dict[str, Any]]:
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
        sessions = own_sessions(caller, site)
        # a brand's operators see the stations their own cars are at, not the others' energy and limits
        shown = None if caller.tenant == PLATFORM else {plan["station"] for plan in sessions}
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
            if shown is None or state.station_id in shown
        ]
        return {"id": site_id, "name": site.name, "cap_kw": site.cap_kw, "slot": site.slot, "slot_h": site.slot_h,
                "load_kw": site.load_curve(), "stations": stations, "sessions": sessions}  # fmt: skip

    def managed(site_id: str, caller: Operator) -> Any:
        """A managed site the caller may steer: platform operators with the right to command."""
        site = cloud.sites.get(site_id)
        if site is None:
            raise HTTPException(404, f"no charging site {site_id!r}")
        if caller.tenant != PLATFORM or not caller.can_command:
            raise HTTPException(403, f"operator {caller.name} may not steer charging sites")
        if not hasattr(site, "add_signal"):
            raise HTTPException(409, f"site {site_id!r} plans a fixed day; it takes no live input")
        return site

    @app.post("/api/v1/energy/sites/{site_id}/signals", status_code=202)
    def grid_signal(site_id: str, body: GridSignalRequest, caller: Caller) -> dict[str, Any]:
        """A grid signal for operators without a utility programme: the site re-plans under it."""
        from opensdv.cloud.energy.site_controller import GridSignal

        site = managed(site_id, caller)
        start = body.start.timestamp() if body.start is not None else cloud.clock.time()
        if body.end.timestamp() <= start:
            raise HTTPException(422, "end must be after start")
        site.add_signal(GridSignal(start, body.end.timestamp(), body.cap_kw, source=f"operator {caller.name}"))
        cloud.audit.record(caller, "grid signal", site_id, f"cap {body.cap_kw:g} kW until {body.end.isoformat()}")
        return {"status": "the site re-plans under the signal"}

    @app.put("/api/v1/energy/sites/{site_id}/sessions/{transaction_id}/needs", status_code=202)
    def driver_needs(site_id: str, transaction_id: str, body: DriverNeedsRequest, caller: Caller) -> dict[str, Any]:
        """The driver's departure and energy for a car plugged in at the site."""
        from opensdv.cloud.energy.site_controller import DriverNeeds

        site = managed(site_id, caller)
        if transaction_id not in {car.transaction_id for car in site.cars}:
            raise HTTPException(404, f"no car plugged in at {site_id!r} with transaction {transaction_id!r}")
        site.set_driver_needs(transaction_id, DriverNeeds(body.departure.timestamp(), body.kwh))
        cloud.audit.record(caller, "driver needs", site_id, f"{transaction_id}: {body.kwh:g} kWh by {body.departure.isoformat()}")
        return {"status": "the site re-plans with the driver's needs (ISO 15118 needs come first)"}

    return app
