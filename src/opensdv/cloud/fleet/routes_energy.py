"""Charging sites: their stations, the plan's load curve, and the caller's sessions there."""

from typing import Any

from fastapi import APIRouter, HTTPException

from opensdv.cloud.energy.site import ChargingSite
from opensdv.cloud.fleet.operators import PLATFORM, Operator
from opensdv.cloud.fleet.service import FleetCloud

__all__ = ["energy_routes"]


def energy_routes(cloud: FleetCloud, Caller: Any) -> APIRouter:
    """The charging-site endpoints; a brand's operators see only their own cars' sessions and the
    stations those cars are at."""
    app = APIRouter()

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

    return app
