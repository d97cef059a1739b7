"""The director's per-vehicle targets for a campaign stage, as a fleet job: each piece opens the
OTA back end by location (its directory, its database URL) and signs its vehicles' targets,
snapshot and timestamp. Each vehicle's repository is its own, so pieces never touch the same file;
they share the director's keys (read-only) and the inventory (read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from opensdv.cloud.ota.director import Assignment
from opensdv.cloud.ota.inventory import VehicleState

__all__ = ["DirectorJob", "sign_targets"]


@dataclass(frozen=True)
class DirectorJob:
    ota_dir: Path
    database_url: str
    work: list[tuple[VehicleState, list[Assignment]]]  # each vehicle as the stage read it, what its ECUs install
    terms: dict[str, Any]
    campaign: str
    signed_at: datetime  # every piece signs as of the same instant, wherever it runs


def sign_targets(job: DirectorJob) -> list[str]:
    """Sign the piece's vehicles' targets; returns their VINs."""
    from opensdv.cloud.ota.backend import OtaBackend
    from opensdv.storage import Database

    database = Database(job.database_url)
    try:
        director = OtaBackend(job.ota_dir, database, clock=lambda: job.signed_at).director
        for vehicle, assignments in job.work:
            director.assign(vehicle.vin, assignments, job.terms, campaign=job.campaign, state=vehicle)
    finally:
        database.close()
    return [vehicle.vin for vehicle, _ in job.work]
