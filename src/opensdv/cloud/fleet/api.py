"""The fleet REST API (FastAPI; OpenAPI at /docs): fleet, vehicles, time series, remote commands,
charging sites, OTA campaigns — every answer filtered by the caller's tenant.

Authentication is OAuth2: ``POST /api/v1/token`` with ``grant_type=password`` (username/password)
or ``client_credentials`` (client_id/client_secret) gives a bearer token. The app is composed of
one router per area (``routes_*``) over the ``FleetCloud`` service object.
"""

from fastapi import FastAPI

from opensdv.cloud.fleet.routes_auth import auth_routes
from opensdv.cloud.fleet.routes_battery import battery_routes
from opensdv.cloud.fleet.routes_campaigns import campaign_routes
from opensdv.cloud.fleet.routes_energy import energy_routes
from opensdv.cloud.fleet.routes_vehicles import vehicle_routes
from opensdv.cloud.fleet.service import FleetCloud, VehicleSummary, caller_type

__all__ = ["FleetCloud", "VehicleSummary", "create_api"]


def create_api(cloud: FleetCloud) -> FastAPI:
    """The fleet REST API and dashboard as a FastAPI app over ``cloud``."""
    app = FastAPI(title="OpenSDV fleet cloud", version="1", docs_url="/docs")
    app.state.cloud = cloud  # for embedding applications (and tests) to reach what it serves
    caller = caller_type(cloud)
    app.include_router(auth_routes(cloud))
    app.include_router(vehicle_routes(cloud, caller))
    app.include_router(battery_routes(cloud, caller))
    app.include_router(energy_routes(cloud, caller))
    app.include_router(campaign_routes(cloud, caller))
    return app
