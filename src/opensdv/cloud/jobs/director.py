"""A campaign's per-vehicle work as fleet jobs: which vehicles are eligible (at its creation), and
the director's targets for each stage. Each piece opens the OTA back end by location (its
directory, its database URL) and reads its own vehicles; a stage's piece signs and records their
targets, snapshot and timestamp. Each vehicle's repository and campaign row are its own, so pieces
never write the same file or row; they share the director's keys (read-only)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from opensdv.cloud.ota.campaigns import Campaigns, CampaignSpec

__all__ = ["DirectorJob", "EligibilityJob", "judge_vehicles", "sign_targets"]


@dataclass(frozen=True)
class EligibilityJob:
    """Which of ``vins`` a new campaign takes (its spec travels whole: it is not stored yet)."""

    ota_dir: Path
    database_url: str
    spec: CampaignSpec
    vins: list[str]


@dataclass(frozen=True)
class DirectorJob:
    """A stage's ``vins`` to sign for ``campaign`` (read from the database by the piece)."""

    ota_dir: Path
    database_url: str
    campaign: str
    vins: list[str]
    signed_at: datetime  # every piece signs as of the same instant, wherever it runs


@contextmanager
def _campaigns(ota_dir: Path, database_url: str, signed_at: datetime | None = None) -> Iterator[Campaigns]:
    """The campaigns of the OTA back end at this location, for one piece."""
    from opensdv.cloud.ota.backend import OtaBackend
    from opensdv.storage import Database

    database = Database(database_url)
    try:
        backend = OtaBackend(ota_dir, database) if signed_at is None else OtaBackend(ota_dir, database, lambda: signed_at)
        yield backend.campaigns
    finally:
        database.close()


def judge_vehicles(job: EligibilityJob) -> list[tuple[str, str]]:
    """(VIN, '' or why excluded) for the piece's vehicles (``Campaigns.judge``)."""
    with _campaigns(job.ota_dir, job.database_url) as campaigns:
        return campaigns.judge(job.spec, job.vins)


def sign_targets(job: DirectorJob) -> None:
    """Sign and record the piece's vehicles' targets (``Campaigns.sign_vehicles``)."""
    with _campaigns(job.ota_dir, job.database_url, job.signed_at) as campaigns:
        campaigns.sign_vehicles(job.campaign, job.vins)
