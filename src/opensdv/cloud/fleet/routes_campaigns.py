"""OTA campaigns: list them, start one, steer it (the platform operator only)."""

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, HTTPException

from opensdv.cloud.fleet.operators import PLATFORM
from opensdv.cloud.fleet.service import FleetCloud
from opensdv.cloud.ota.campaigns import CampaignProgress, CampaignSpec
from opensdv.errors import OpenSDVError

__all__ = ["campaign_routes"]


def campaign_routes(cloud: FleetCloud, Caller: Any) -> APIRouter:
    """The campaign endpoints (empty, or 404, where the cloud runs no OTA back end)."""
    app = APIRouter()

    @app.get("/api/v1/campaigns")
    def campaigns(caller: Caller) -> list[dict[str, Any]]:
        """The platform operator's view: a campaign's progress counts every brand's cars, so a
        brand's operator would learn how other brands' cars fared (it gets none)."""
        if cloud.ota is None or caller.tenant != PLATFORM:
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
            created = vars(cloud.ota.campaigns.create(spec))
        except OpenSDVError as exc:
            raise HTTPException(409, str(exc)) from None
        cloud.audit.record(caller, "campaign-create", spec.id, f"image {spec.image}, stages {spec.stages}")
        return created

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
            steered = vars(steer(campaign))
        except OpenSDVError as exc:
            raise HTTPException(409, str(exc)) from None
        cloud.audit.record(caller, f"campaign-{action}", campaign)
        return steered

    @app.get("/api/v1/audit")
    def audit(caller: Caller, limit: int = 100) -> list[dict[str, Any]]:
        """The newest commands and campaign actions (a brand's operator: its own tenant's)."""
        return [vars(entry) for entry in cloud.audit.entries(caller, min(max(limit, 1), 1000))]

    return app
