"""Data collection campaigns: create, list, show, suspend, resume, delete; what they collected,
per capture and as Parquet. Each answer is the caller's tenant's only; changes need the right to
command the fleet and are audited."""

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, HTTPException
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from opensdv.cloud.fleet.data_campaigns import (
    CampaignConflict,
    CampaignForbidden,
    DataCampaign,
    DataCampaigns,
    State,
    may_change,
)
from opensdv.cloud.fleet.service import FleetCloud
from opensdv.model import CatalogError
from opensdv.model.campaigns import parse_campaign

__all__ = ["data_routes"]

MAX_CAPTURES_LISTED = 1000


def _described(cloud: FleetCloud, found: DataCampaign) -> dict[str, Any]:
    """A campaign as the list shows it: its state, the cars it targets and their states, counted."""
    assert cloud.data_campaigns is not None
    campaign = found.campaign
    reports = cloud.telemetry.campaign_states().values()
    states = [state for report in reports for state in report.campaigns if state.id == campaign.id]
    counts: dict[str, int] = {}
    for state in states:
        counts[state.state] = counts.get(state.state, 0) + 1
    return {
        "id": campaign.id, "version": campaign.version, "description": campaign.description,
        "tenant": found.tenant, "state": found.state, "created_by": found.created_by,
        "updated_at": found.updated_at, "cars": len(cloud.data_campaigns.targets(campaign)), "car_states": counts,
        "captures": len(cloud.telemetry.captures(campaign.id)),
    }  # fmt: skip


def data_routes(cloud: FleetCloud, Caller: Any) -> APIRouter:
    """The ``/api/v1/data/campaigns`` endpoints (404 where the cloud runs without a command key)."""
    app = APIRouter()

    def service() -> DataCampaigns:
        if cloud.data_campaigns is None:
            raise HTTPException(404, "no data campaigns here (the API runs without the command key)")
        return cloud.data_campaigns

    def found(campaign_id: str, caller: Any) -> DataCampaign:
        campaign = service().get(campaign_id, caller)
        if campaign is None:
            raise HTTPException(404, f"no campaign {campaign_id}")
        return campaign

    @app.get("/api/v1/data/campaigns")
    def campaigns(caller: Caller) -> list[dict[str, Any]]:
        return [_described(cloud, c) for c in service().all(caller)]

    @app.post("/api/v1/data/campaigns", status_code=201)
    async def create(caller: Caller, document: dict[str, Any] = Body(...)) -> dict[str, Any]:
        """A campaign (the YAML of docs/campaigns.md, as JSON), or a newer version of one."""
        try:
            may_change(caller)  # before the document is looked at: no validation answers for the unauthorised
            created = await service().create(parse_campaign(document, "campaign"), caller)
        except CatalogError as exc:
            raise HTTPException(422, str(exc)) from None
        except CampaignForbidden as exc:
            raise HTTPException(403, str(exc)) from None
        except CampaignConflict as exc:
            raise HTTPException(409, str(exc)) from None
        cloud.audit.record(caller, "data-campaign-create", created.campaign.id, f"version {created.campaign.version}")
        return _described(cloud, created)

    @app.get("/api/v1/data/campaigns/{campaign_id}")
    def show(campaign_id: str, caller: Caller) -> dict[str, Any]:
        """The campaign, each targeted car's state as it reported it, and its captures."""
        campaign = found(campaign_id, caller)
        reports = cloud.telemetry.campaign_states()
        cars = []
        for car in service().targets(campaign.campaign):
            report = reports.get(car.vin)
            state = next((s for s in report.campaigns if s.id == campaign_id), None) if report else None
            cars.append({
                "vin": car.vin, "brand": car.brand, "model": car.model,
                "state": state.state if state else "pending", "version": state.version if state else None,
                "reason": state.reason if state else "", "revision": report.revision if report else 0,
            })  # fmt: skip
        captures = [vars(c) for c in cloud.telemetry.captures(campaign_id)[-MAX_CAPTURES_LISTED:]]
        return _described(cloud, campaign) | {
            "document": campaign.campaign.model_dump(mode="json"), "vehicles": cars, "capture_list": captures
        }

    @app.get("/api/v1/data/campaigns/{campaign_id}/captures/{vin}/{seq}")
    def capture(campaign_id: str, vin: str, seq: int, caller: Caller) -> dict[str, Any]:
        """One capture's samples per signal (what the dashboard plots around a trigger)."""
        found(campaign_id, caller)
        match = next((c for c in cloud.telemetry.captures(campaign_id) if c.vin == vin and c.seq == seq), None)
        if match is None:
            raise HTTPException(404, f"campaign {campaign_id} has no capture {vin}/{seq}")
        samples = cloud.telemetry.capture_samples(vin, seq)
        catalog = service().catalog
        units = {path: leaf.unit for path in samples if (leaf := catalog.get(path)) is not None and leaf.unit}
        signals = {path: [[p.ts, p.value] for p in points] for path, points in samples.items()}
        return vars(match) | {"signals": signals, "units": units}

    @app.get("/api/v1/data/campaigns/{campaign_id}/export")
    def export(campaign_id: str, caller: Caller) -> FileResponse:
        """Everything the campaign collected as Parquet (vin, version, trigger_ts, path, ts, num, other)."""
        found(campaign_id, caller)
        directory = Path(tempfile.mkdtemp(prefix="opensdv-export-"))
        target = directory / f"{campaign_id}.parquet"
        cloud.telemetry.export_campaign(campaign_id, target)

        def cleanup() -> None:
            target.unlink(missing_ok=True)
            directory.rmdir()

        return FileResponse(
            target, media_type="application/vnd.apache.parquet", filename=target.name, background=BackgroundTask(cleanup)
        )

    async def change(campaign_id: str, state: State, action: str, caller: Any) -> dict[str, Any]:
        try:
            changed = await service().set_state(campaign_id, state, caller)
        except KeyError:
            raise HTTPException(404, f"no campaign {campaign_id}") from None
        except CampaignForbidden as exc:
            raise HTTPException(403, str(exc)) from None
        except CampaignConflict as exc:
            raise HTTPException(409, str(exc)) from None
        cloud.audit.record(caller, f"data-campaign-{action}", campaign_id)
        return _described(cloud, changed)

    @app.post("/api/v1/data/campaigns/{campaign_id}/suspend")
    async def suspend(campaign_id: str, caller: Caller) -> dict[str, Any]:
        return await change(campaign_id, "suspended", "suspend", caller)

    @app.post("/api/v1/data/campaigns/{campaign_id}/resume")
    async def resume(campaign_id: str, caller: Caller) -> dict[str, Any]:
        return await change(campaign_id, "active", "resume", caller)

    @app.delete("/api/v1/data/campaigns/{campaign_id}")
    async def delete(campaign_id: str, caller: Caller) -> dict[str, Any]:
        """The cars stop and drop it; what it collected stays (and can still be exported)."""
        return await change(campaign_id, "deleted", "delete", caller)

    return app
