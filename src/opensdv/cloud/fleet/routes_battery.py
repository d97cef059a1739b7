"""A vehicle's battery: its passport (the twin's ageing) and its health measured from telemetry."""

import time
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from opensdv.cloud.energy.battery.batterypass import (
    MAKER_ASPECTS,
    PERFORMANCE,
    AccessGroup,
    battery_usage,
    general_product_information,
    maker_records,
    passport_identifier,
    performance_and_durability,
    readable_by,
)
from opensdv.cloud.energy.battery.pack_age import age_pack, pack_passport
from opensdv.cloud.energy.battery.passport import PassportError
from opensdv.cloud.fleet.limits import finite
from opensdv.cloud.fleet.operators import AUTHORITY, AuthError
from opensdv.cloud.fleet.service import FleetCloud
from opensdv.cloud.fleet.service import visible as visible_to
from opensdv.cloud.jobs.fleet_health import measured_health
from opensdv.errors import OpenSDVError
from opensdv.physics import AgeingProfile

__all__ = ["battery_routes"]


def battery_routes(cloud: FleetCloud, Caller: Any) -> APIRouter:
    """The battery endpoints, each answering only for the caller's tenant."""
    app = APIRouter()

    def visible(caller: Any, vin: str) -> Any:
        return visible_to(cloud, caller, vin)

    @lru_cache(maxsize=256)
    def aged_passport(
        definition: str, vin: str, years: float, daily_km: float, ambient_c: float
    ) -> dict[str, Any]:
        """Passports take the twin a second to age; the same question gets the same answer."""
        profile = AgeingProfile(daily_km=daily_km, ambient_c=ambient_c)
        aged = age_pack(cloud.catalog.vehicle(definition), years, profile, cloud.grading)
        return pack_passport(aged, vin=vin, serial=f"{vin}-PACK")

    @app.get("/api/v1/vehicles/{vin}/passport")
    def passport(
        vin: str, caller: Caller, years: float | None = None, daily_km: float = 40.0, ambient_c: float = 15.0
    ) -> dict[str, Any]:
        """The pack's battery passport (EU 2023/1542 attributes, validated against the schema): the
        twin's ageing over ``years`` of use (default: since the model year) and every module graded."""
        found = visible(caller, vin)
        if years is None:
            years = max(time.gmtime(cloud.clock.time()).tm_year - found.model_year, 0.1)
        finite("years", years, 0.01, 30)
        finite("daily_km", daily_km, 0, 2000)
        finite("ambient_c", ambient_c, -40, 60)  # where the ageing model holds
        return aged_passport(found.definition_id, vin, years, daily_km, ambient_c)

    @app.get("/api/v1/vehicles/{vin}/health")
    def health(vin: str, caller: Caller, hours: float = 24.0) -> dict[str, Any]:
        """The pack's state of health and internal resistance measured from its own telemetry of
        the last ``hours`` (current, voltage and state of charge, second by second): capacity from
        the charge counted between state-of-charge points, resistance from current steps. An
        estimate the data cannot support is null, with the reason in ``notes``."""
        found = visible(caller, vin)
        finite("hours", hours, 0.001, 744)
        end = cloud.clock.time() + 1
        vehicle = cloud.catalog.vehicle(found.definition_id)
        measured = measured_health(cloud.telemetry, vehicle, vin, end - hours * 3600, end)
        rounded = {name: None if value is None else round(value, digits) for name, value, digits in (
            ("capacity_ah", measured.capacity_ah, 2), ("soh_percent", measured.soh and measured.soh * 100, 2),
            ("resistance_ohm", measured.resistance_ohm, 4), ("resistance_factor", measured.resistance_factor, 3),
        )}  # fmt: skip
        return {"vin": vin, "hours": hours, "samples": measured.samples, "window_s": round(measured.window_s, 1),
                "rated_capacity_ah": round(vehicle.pack.capacity_ah, 2), **rounded, "notes": list(measured.notes)}  # fmt: skip

    bearer = HTTPBearer(auto_error=False)

    def access_group(credentials: HTTPAuthorizationCredentials | None, brand: str) -> AccessGroup:
        """Anyone: public; the car's brand and the platform: legitimate interest; authorities: all."""
        if credentials is None:
            return "public"
        try:
            who = cloud.operators.verify(credentials.credentials)
        except AuthError as exc:
            raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from None
        if who.tenant == AUTHORITY:
            return "authorities"
        return "legitimate-interest" if who.sees(brand) else "public"

    @app.get("/api/v1/batterypass/{vin}")
    def battery_pass(vin: str, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> dict[str, Any]:
        """The pack's passport in the Battery Pass data model v1.2.0: Performance and Durability
        from the car's telemetry, the other aspects from the maker's records where supplied; as
        much of each as the caller's access group may read (no token: the public parts)."""
        try:
            found = cloud.registry.get(vin)
        except OpenSDVError:
            raise HTTPException(404, f"no battery passport for {vin}") from None
        group = access_group(credentials, found.brand)
        vehicle = cloud.catalog.vehicle(found.definition_id)
        now = cloud.clock.time()
        usage = battery_usage(cloud.telemetry, vehicle, vin, 0.0, now + 1)
        if usage is None:
            raise HTTPException(409, f"{vin} has sent no battery telemetry yet: its passport has no condition to give")
        health = measured_health(cloud.telemetry, vehicle, vin, now - 24 * 3600, now + 1)
        years = max(time.gmtime(now).tm_year - found.model_year, 0.1)
        aged = age_pack(vehicle, years, AgeingProfile(), cloud.grading).ageing
        performance, provenance = performance_and_durability(vehicle, usage, health, aged, now)
        aspects = {PERFORMANCE: performance}
        try:
            records = maker_records(cloud.passport_records, vehicle.pack.module.id) if cloud.passport_records else {}
        except PassportError as exc:  # the operator's files: say which and why, serve nothing half-valid
            raise HTTPException(500, f"the makers' passport records are unusable: {exc}") from None
        for aspect, record in records.items():
            if aspect == "GeneralProductInformation":
                record, known = general_product_information(record, vehicle, vin, found.registered_at)
                provenance |= known
            else:
                provenance[aspect] = "the maker's record (passport records directory)"
            aspects[aspect] = record
        return {
            "batteryPassportIdentifier": passport_identifier(vin), "dataModel": "Battery Pass 1.2.0",
            **readable_by(group, aspects, provenance),
            "not_supplied": [a for a in MAKER_ASPECTS if a not in records],  # the maker has given no record
        }  # fmt: skip

    return app
