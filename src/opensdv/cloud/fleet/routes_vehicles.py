"""The fleet and its vehicles: summaries, signals, live values, time series, remote commands,
battery passports and pack health measured from telemetry."""

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import StreamingResponse

from opensdv.cloud.fleet.commands import CommandOrder
from opensdv.cloud.fleet.limits import MAX_SERIES_POINTS, MIN_LIVE_PERIOD_S, LiveStreams, finite
from opensdv.cloud.fleet.operators import PLATFORM, TICKET_LIFETIME_S, AuthError
from opensdv.cloud.fleet.service import (
    ALERT_WINDOW_S,
    SPEED,
    CommandRequest,
    FleetCloud,
    VehicleSummary,
    summary,
)
from opensdv.cloud.fleet.service import visible as visible_to
from opensdv.cloud.jobs.fleet_health import SOC

__all__ = ["vehicle_routes"]


def vehicle_routes(cloud: FleetCloud, Caller: Any) -> APIRouter:
    """The vehicle endpoints, each answering only for the caller's tenant."""
    app = APIRouter()

    def visible(caller: Any, vin: str) -> Any:
        return visible_to(cloud, caller, vin)

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

    streams = LiveStreams()

    @app.post("/api/v1/vehicles/{vin}/live-ticket")
    def live_ticket(vin: str, caller: Caller) -> dict[str, Any]:
        """A one-use ticket for ``/live`` (the URL carries it, never the bearer token)."""
        visible(caller, vin)
        return {"ticket": cloud.operators.stream_ticket(caller, vin), "expires_in": TICKET_LIFETIME_S}

    @app.get("/api/v1/vehicles/{vin}/live")
    async def live(vin: str, ticket: str, period_s: float = 1.0) -> StreamingResponse:
        """Server-sent events: the vehicle's latest signals every ``period_s`` (at least
        ``MIN_LIVE_PERIOD_S``). Browsers' EventSource cannot send an Authorization header, so the
        stream opens with a ticket from ``POST .../live-ticket``: one use, 30 seconds. The
        operator's rights are checked again before every event: the stream ends when they go. An
        operator holds at most ``MAX_LIVE_STREAMS`` streams (429 past them)."""
        finite("period_s", period_s, 0.0)
        try:
            caller = cloud.operators.redeem_ticket(ticket, vin)
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None
        visible(caller, vin)
        stream = streams.open(caller.name)  # refused here (429) before the stream starts

        async def events() -> AsyncIterator[str]:
            try:
                while True:
                    try:
                        visible(cloud.operators.current(caller.name), vin)
                    except (AuthError, HTTPException):
                        yield "event: closed\ndata: {}\n\n"  # the token expired, or its rights went
                        return
                    latest = cloud.telemetry.latest(vin)
                    payload = {path: {"value": p.value, "ts": p.ts} for path, p in sorted(latest.items())}
                    yield f"event: signals\ndata: {json.dumps(payload)}\n\n"
                    await cloud.clock.sleep(max(MIN_LIVE_PERIOD_S, period_s))
            finally:
                streams.close(caller.name, stream)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/api/v1/vehicles/{vin}/series")
    def series(
        vin: str, path: str, caller: Caller, start: float | None = None, end: float | None = None,
        bucket_s: float | None = None,
    ) -> list[tuple[float, Any]]:  # fmt: skip
        """One signal's values in [start, end) (default: the last ten minutes), averaged per
        ``bucket_s`` when given; at most ``MAX_SERIES_POINTS`` buckets a request."""
        visible(caller, vin)
        for name, value in (("start", start), ("end", end)):
            finite(name, value)
        finite("bucket_s", bucket_s, 1e-3)
        end = cloud.clock.time() + 1 if end is None else end
        start = end - 600 if start is None else start
        if start >= end:
            raise HTTPException(422, "start must be before end")
        if bucket_s is not None and (end - start) / bucket_s > MAX_SERIES_POINTS:
            raise HTTPException(422, f"(end - start) / bucket_s is over {MAX_SERIES_POINTS} buckets")
        return [(p.ts, p.value) for p in cloud.telemetry.series(vin, path, start, end, bucket_s)]

    @app.post("/api/v1/vehicles/{vin}/commands", status_code=202)
    async def command(vin: str, body: CommandRequest, caller: Caller) -> dict[str, str]:
        visible(caller, vin)
        if not caller.can_command:
            raise HTTPException(403, f"operator {caller.name} may not command vehicles")
        sent = await cloud.send_command(CommandOrder(vin, caller.tenant, caller.name, body.path, body.value))
        cloud.audit.record(caller, "command", vin, f"{body.path} = {body.value!r} (command {sent.id})")
        return {"id": sent.id, "status": "sent; the vehicle's safety guard decides"}

    return app
