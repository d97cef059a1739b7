"""The fleet REST API (FastAPI; OpenAPI at /docs): fleet, vehicles, time series, remote commands,
charging sites, OTA campaigns — every answer filtered by the caller's tenant.

Authentication is OAuth2: ``POST /api/v1/token`` with ``grant_type=password`` (username/password)
or ``client_credentials`` (client_id/client_secret) gives a bearer token. The app is composed of
one router per area (``routes_*``) over the ``FleetCloud`` service object.

Every answer carries security headers: a Content-Security-Policy that lets the dashboard run only
its own inline script and style (by their SHA-256) and talk only to this origin, no framing, no
MIME sniffing, no referrer, no caching of API answers. Cross-origin calls (CORS) are refused unless
origins are configured (``[cloud] api_cors_origins``).
"""

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from opensdv.cloud.fleet.limits import BodyLimit
from opensdv.cloud.fleet.routes_auth import auth_routes
from opensdv.cloud.fleet.routes_battery import battery_routes
from opensdv.cloud.fleet.routes_campaigns import campaign_routes
from opensdv.cloud.fleet.routes_data import data_routes
from opensdv.cloud.fleet.routes_energy import energy_routes
from opensdv.cloud.fleet.routes_vehicles import vehicle_routes
from opensdv.cloud.fleet.service import FleetCloud, VehicleSummary, caller_type

__all__ = ["FleetCloud", "VehicleSummary", "create_api"]


_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)
_DOCS = ("/docs", "/openapi.json", "/docs/oauth2-redirect")  # Swagger UI loads its own assets


def dashboard_csp() -> str:
    """The policy for the dashboard page: its inline blocks by hash, connections to this origin."""
    page = (Path(__file__).with_name("static") / "index.html").read_text()
    sources: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(page):
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        sources[kind].append(f"'sha256-{digest}'")
    script, style = (" ".join(sources[kind]) or "'none'" for kind in ("script", "style"))
    return (
        f"default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _security_headers(csp: str) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def add(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        headers = response.headers
        if request.url.path not in _DOCS:
            headers.setdefault("Content-Security-Policy", csp)
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        if request.url.path.startswith("/api/"):
            headers.setdefault("Cache-Control", "no-store")
        return response

    return add


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """422 naming each bad field, without echoing the input (which may be huge, secret or NaN)."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    return JSONResponse(status_code=422, content={"detail": detail})


def create_api(cloud: FleetCloud, cors_origins: Sequence[str] = (), docs: bool = False) -> FastAPI:
    """The fleet REST API and dashboard as a FastAPI app over ``cloud``. ``docs``: Swagger UI at
    ``/docs``, off by default because it loads scripts from a CDN (``/openapi.json`` is always
    served: the description of the API, for clients and generators)."""
    app = FastAPI(title="OpenSDV fleet cloud", version="1", docs_url="/docs" if docs else None, redoc_url=None)
    app.middleware("http")(_security_headers(dashboard_csp()))
    app.add_exception_handler(RequestValidationError, _invalid_request)
    if cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(cors_origins), allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )  # fmt: skip
    app.add_middleware(BodyLimit)  # outermost: no body over the limit reaches anything
    app.state.cloud = cloud  # for embedding applications (and tests) to reach what it serves
    caller = caller_type(cloud)
    app.include_router(auth_routes(cloud))
    app.include_router(vehicle_routes(cloud, caller))
    app.include_router(battery_routes(cloud, caller))
    app.include_router(energy_routes(cloud, caller))
    app.include_router(campaign_routes(cloud, caller))
    app.include_router(data_routes(cloud, caller))
    return app
