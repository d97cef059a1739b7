"""Logging in (OAuth2 password and client-credentials grants, throttled per operator and per
address) and the dashboard page."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse

from opensdv.cloud.fleet.operators import PLATFORM, AuthError, Operator
from opensdv.cloud.fleet.service import FleetCloud

__all__ = ["auth_routes"]


def auth_routes(cloud: FleetCloud) -> APIRouter:
    """``POST /api/v1/token`` gives a bearer token; ``/`` is the dashboard."""
    app = APIRouter()
    hashing = ThreadPoolExecutor(max_workers=2, thread_name_prefix="opensdv-login")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        """The dashboard: one static page (no build step) that polls this API every second."""
        return FileResponse(Path(__file__).with_name("static") / "index.html", media_type="text/html")

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
        keys = (f"operator:{name}", f"address:{request.client.host if request.client else '?'}")
        wait_s = cloud.throttle.retry_after_s(*keys)
        if wait_s > 0:
            raise HTTPException(429, {"error": "slow_down", "retry_after_s": round(wait_s, 1)},
                                {"Retry-After": str(max(1, round(wait_s)))})  # fmt: skip
        try:
            # scrypt (~50 ms of a core) off the event loop, at most two at once
            who = await asyncio.get_running_loop().run_in_executor(hashing, cloud.operators.authenticate, name, secret)
        except AuthError:
            for key in cloud.throttle.failed(*keys):  # a lockout begins: the operators' audit shows it
                account = next((o for o in cloud.operators.all() if o.name == name), None)
                who = Operator(name or "?", account.tenant if account else PLATFORM, False)
                cloud.audit.record(who, "login-locked-out", key, f"{cloud.throttle.free} failed logins in a row")
            raise HTTPException(400, {"error": "invalid_client"}) from None
        cloud.throttle.succeeded(*keys)
        return {"access_token": cloud.operators.token(who), "token_type": "bearer",
                "expires_in": int(cloud.operators.token_lifetime_s), "tenant": who.tenant}  # fmt: skip

    return app
