"""The director's per-vehicle targets for a campaign stage, as a fleet job: each piece opens the
OTA back end by location (its directory, its database URL), reads its vehicles, and signs and
records their targets, snapshot and timestamp. Each vehicle's repository and campaign row are its
own, so pieces never write the same file or row; they share the director's keys (read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["DirectorJob", "sign_targets"]


@dataclass(frozen=True)
class DirectorJob:
    ota_dir: Path
    database_url: str
    campaign: str
    vins: list[str]
    signed_at: datetime  # every piece signs as of the same instant, wherever it runs


def sign_targets(job: DirectorJob) -> None:
    """Sign and record the piece's vehicles' targets (``Campaigns.sign_vehicles``)."""
    from opensdv.cloud.ota.backend import OtaBackend
    from opensdv.storage import Database

    database = Database(job.database_url)
    try:
        OtaBackend(job.ota_dir, database, clock=lambda: job.signed_at).campaigns.sign_vehicles(job.campaign, job.vins)
    finally:
        database.close()
