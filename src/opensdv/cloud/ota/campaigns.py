"""OTA campaigns: who gets an image, in which order, and when a rollout stops by itself.

A campaign targets vehicles by brand, model, market, hardware id, installed version and RXSWIN;
checks each one's last reported configuration against the campaign's dependencies (e.g. inverter
firmware 2.4 needs BMS >= 2.3) and excludes, with the reason, those that fail; then rolls out in
stages (cumulative percentages of the eligible vehicles). A stage advances when its success rate
reaches ``success_threshold`` and the campaign pauses itself when failures exceed
``error_threshold`` — before the next stage ever sees the image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from opensdv.cloud.jobs.runner import JobRunner
from opensdv.cloud.ota.director import Assignment, Director, ManifestOutcome
from opensdv.cloud.ota.images import ImageRepository
from opensdv.cloud.ota.inventory import Inventory, VehicleState
from opensdv.cloud.ota.repository import OtaRepositoryError
from opensdv.storage.database import Database
from opensdv.storage.tables import OtaCampaignRow, OtaCampaignVehicleRow

__all__ = ["CampaignProgress", "CampaignSpec", "Campaigns", "Consent", "Requirement", "Targeting"]

State = Literal["running", "paused", "completed", "cancelled"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Targeting(_Spec):
    brands: list[str] = []
    models: list[str] = []
    markets: list[str] = []
    hardware_ids: list[str] = Field(
        default=[], description="default: every hardware id the image is built for"
    )
    current_versions: list[str] = Field(default=[], description="only ECUs now running one of these")
    rxswin: list[str] = []


class Requirement(_Spec):
    """The vehicle's ECU ``ecu`` (by name, e.g. BMS) must run at least ``min_version``."""

    ecu: str
    min_version: str = Field(pattern=r"^\d+(\.\d+){0,3}$")


class Consent(_Spec):
    """What UN R156 says the user must be told before an update that needs consent."""

    purpose: str = Field(min_length=1)
    duration_min: int = Field(gt=0)
    unavailable_functions: list[str] = []


class CampaignSpec(_Spec):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")
    image: str
    target: Targeting = Targeting()
    requires: list[Requirement] = []
    stages: list[float] = Field(default=[10.0, 50.0, 100.0], description="cumulative % of eligible vehicles")
    success_threshold: float = Field(default=0.9, ge=0, le=1)
    error_threshold: float = Field(default=0.2, ge=0, le=1)
    mode: Literal["forced", "soft", "download-only"] = "soft"
    consent: Consent | None = None
    energy_kwh: float = Field(default=1.0, ge=0, description="install + rollback, checked by the vehicle")
    maintenance_window_utc: tuple[int, int] | None = Field(
        default=None, description="install only from hour start to hour end (UTC; 22-4 spans midnight)"
    )
    rxswin_after: str | None = None

    @model_validator(mode="after")
    def _stages_grow_to_100(self) -> CampaignSpec:
        if not self.stages or any(b <= a for a, b in zip(self.stages, self.stages[1:], strict=False)):
            raise ValueError(f"stages {self.stages} must increase")
        if self.stages[-1] != 100.0 or self.stages[0] <= 0:
            raise ValueError(f"stages {self.stages} must end at 100 (per cent of eligible vehicles)")
        window = self.maintenance_window_utc
        if window is not None and not (
            0 <= window[0] <= 23 and 0 <= window[1] <= 23 and window[0] != window[1]
        ):
            raise ValueError(f"maintenance_window_utc {list(window)}: two different hours 0-23")
        if self.mode == "soft" and self.consent is None:
            raise ValueError("a soft campaign asks the user: give consent terms (purpose, duration_min)")
        return self


@dataclass(frozen=True)
class CampaignProgress:
    id: str
    state: str
    stage: int
    stages: int
    reason: str
    counts: dict[str, int]


def _version_tuple(version: str | None) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version or ""))


def _verdict(spec: CampaignSpec, hardware: set[str], vehicle: VehicleState) -> tuple[list[str], str]:
    """``Campaigns.eligibility`` with the image's targeted hardware ids already worked out."""
    t = spec.target
    if t.brands and vehicle.brand not in t.brands:
        return [], f"brand {vehicle.brand}"
    if t.models and vehicle.model not in t.models and vehicle.definition_id not in t.models:
        return [], f"model {vehicle.model}"
    if t.markets and vehicle.market not in t.markets:
        return [], f"market {vehicle.market}"
    if t.rxswin and vehicle.rxswin not in t.rxswin:
        return [], f"RXSWIN {vehicle.rxswin or '(none)'}"
    ecus = [e for e in vehicle.ecus if e.hardware_id in hardware and e.public_key is not None]
    if t.current_versions:
        ecus = [e for e in ecus if e.installed_version in t.current_versions]
    if not ecus:
        return [], "no enrolled ECU with a targeted hardware id and version"
    for req in spec.requires:
        ecu = next((e for e in vehicle.ecus if e.name == req.ecu), None)
        have = ecu.installed_version if ecu else None
        if _version_tuple(have) < _version_tuple(req.min_version):
            return [], f"needs {req.ecu} >= {req.min_version}, has {have or 'unknown'}"
    return [e.serial for e in ecus], ""


def _counts(session: Session, campaign_id: str, *where: ColumnElement[bool]) -> dict[str, int]:
    """The campaign's vehicles by status, counted by the database (every manifest asks: a
    campaign to a million cars must not load its rows each time)."""
    query = (
        select(OtaCampaignVehicleRow.status, func.count())
        .where(OtaCampaignVehicleRow.campaign_id == campaign_id, *where)
        .group_by(OtaCampaignVehicleRow.status)
    )
    return {status: count for status, count in session.execute(query)}  # noqa: C416 (rows, not pairs)


class Campaigns:
    def __init__(
        self,
        database: Database,
        inventory: Inventory,
        director: Director,
        images: ImageRepository,
        clock: Callable[[], datetime],
        runner: JobRunner | None = None,
    ) -> None:
        """``runner``: where the director signs each stage's per-vehicle targets (default: here)."""
        self._db = database
        self.inventory = inventory
        self.director = director
        self.images = images
        self.clock = clock
        self.runner = runner

    # -- creating ---------------------------------------------------------------------------------
    def _hardware(self, spec: CampaignSpec) -> set[str]:
        _, image = self.images.image(spec.image)
        return set(spec.target.hardware_ids or image.hardware_ids) & set(image.hardware_ids)

    def eligibility(self, spec: CampaignSpec, vehicle: VehicleState) -> tuple[list[str], str]:
        """(serials of the ECUs to update, '') or ([], why the vehicle is excluded)."""
        return _verdict(spec, self._hardware(spec), vehicle)

    def judge(self, spec: CampaignSpec, vins: list[str]) -> list[tuple[str, str]]:
        """(VIN, '' or why it is excluded) for these vehicles: a piece of a campaign's creation,
        wherever it runs."""
        return self._judge(spec, self.inventory.vehicles(vins))

    def _judge(self, spec: CampaignSpec, vehicles: Iterable[VehicleState]) -> list[tuple[str, str]]:
        hardware = self._hardware(spec)
        return [(v.vin, _verdict(spec, hardware, v)[1]) for v in vehicles]

    def _pieces(self, vins: list[str]) -> list[list[str]] | None:
        """The VINs in pieces for the job runner, or None when the work is done here."""
        if self.runner is None or len(vins) < 2:
            return None
        from opensdv.cloud.jobs.runner import chunks

        return chunks(vins, 4 * getattr(self.runner, "workers", 1))

    def create(self, spec: CampaignSpec) -> CampaignProgress:
        """Store the campaign, work out who is eligible (here, or in pieces on the job runner),
        and start stage 1."""
        self.images.image(spec.image)  # the image must exist
        if self.exists(spec.id):
            raise OtaRepositoryError(f"campaign {spec.id!r} already exists")
        pieces = self._pieces(self.inventory.vins())
        fleet: dict[str, VehicleState] | None = None
        if pieces is None:  # read once, for the verdicts and for stage 1
            fleet = {v.vin: v for v in self.inventory.vehicles()}
            verdicts = self._judge(spec, fleet.values())
        else:
            from opensdv.cloud.jobs.director import EligibilityJob, judge_vehicles

            assert self.runner is not None
            jobs = [EligibilityJob(self.director.path.parent, self._db.open_url, spec, piece) for piece in pieces]
            verdicts = [verdict for piece in self.runner.map(judge_vehicles, jobs) for verdict in piece]
        now = self.clock()
        eligible = sum(not why for _vin, why in verdicts)
        position, members = 0, []
        for vin, why in verdicts:
            stage = -1
            if not why:
                stage = next(i for i, pct in enumerate(spec.stages) if position < math.ceil(eligible * pct / 100))
                position += 1
            members.append({"campaign_id": spec.id, "vin": vin, "stage": stage,
                            "status": "excluded" if why else "pending", "detail": why, "updated_at": now})  # fmt: skip
        try:
            with self._db.session() as session:
                session.add(OtaCampaignRow(id=spec.id, spec=spec.model_dump_json(), state="running", stage=0,
                                           reason="", created_at=now))  # fmt: skip
                session.flush()  # the campaign row first: its vehicles refer to it
                if members:  # one multi-row insert, not one ORM object per car
                    session.execute(insert(OtaCampaignVehicleRow), members)
        except IntegrityError:  # created by someone else since the check above
            raise OtaRepositoryError(f"campaign {spec.id!r} already exists") from None
        self._assign_stage(spec.id, fleet)
        return self.progress(spec.id)

    def exists(self, campaign_id: str) -> bool:
        with self._db.session() as session:
            return session.get(OtaCampaignRow, campaign_id) is not None

    def spec(self, campaign_id: str) -> CampaignSpec:
        with self._db.session() as session:
            row = session.get(OtaCampaignRow, campaign_id)
            if row is None:
                raise OtaRepositoryError(f"no campaign {campaign_id!r}")
            return CampaignSpec.model_validate_json(row.spec)

    def _terms(self, spec: CampaignSpec) -> dict[str, object]:
        # signed metadata is canonical JSON, which has no floats: energy travels in whole Wh
        terms: dict[str, object] = {
            "campaign": spec.id,
            "mode": spec.mode,
            "energy_wh": round(spec.energy_kwh * 1000),
        }
        if spec.consent is not None:
            terms["consent"] = spec.consent.model_dump()
        if spec.maintenance_window_utc is not None:
            terms["maintenance_window_utc"] = list(spec.maintenance_window_utc)
        return terms

    def _assign_stage(self, campaign_id: str, known: dict[str, VehicleState] | None = None) -> None:
        """Sign the open stages' pending vehicles: listed here, then read, checked and signed by
        ``sign_vehicles`` here or in pieces on the job runner (``known``: the fleet as the caller
        just read it, for signing here)."""
        with self._db.session() as session:
            campaign = session.get(OtaCampaignRow, campaign_id)
            assert campaign is not None
            vins = list(
                session.scalars(
                    select(OtaCampaignVehicleRow.vin).where(
                        OtaCampaignVehicleRow.campaign_id == campaign_id,
                        OtaCampaignVehicleRow.stage <= campaign.stage,
                        OtaCampaignVehicleRow.status == "pending",
                    ).order_by(OtaCampaignVehicleRow.vin)
                )
            )
        pieces = self._pieces(vins)
        if pieces is None:
            self.sign_vehicles(campaign_id, vins, known)
            return
        from opensdv.cloud.jobs.director import DirectorJob, sign_targets

        assert self.runner is not None
        signed_at = self.clock()  # every piece signs as of the same instant, wherever it runs
        self.runner.map(
            sign_targets,
            [DirectorJob(self.director.path.parent, self._db.open_url, campaign_id, piece, signed_at) for piece in pieces],
        )
        self.director.forget(vins)  # signed in other processes: read them again

    def sign_vehicles(
        self, campaign_id: str, vins: list[str], known: dict[str, VehicleState] | None = None
    ) -> None:
        """One piece of a stage, wherever it runs: read these vehicles (unless ``known``), exclude
        those no longer eligible, sign the others' director targets, and record both."""
        spec = self.spec(campaign_id)
        target, _ = self.images.image(spec.image)
        hardware = self._hardware(spec)
        states = [known[vin] for vin in vins] if known is not None else self.inventory.vehicles(vins)
        work: list[tuple[VehicleState, list[Assignment]]] = []
        excluded: dict[str, str] = {}
        for vehicle in states:
            serials, why = _verdict(spec, hardware, vehicle)
            if why:
                excluded[vehicle.vin] = why
                continue
            by_serial = {e.serial: e.hardware_id for e in vehicle.ecus}
            work.append((vehicle, [Assignment(s, by_serial[s], target) for s in serials]))
        self.director.assign_many(work, self._terms(spec), campaign_id)
        now = self.clock()
        outcome = [(vin, "excluded", why) for vin, why in excluded.items()]
        outcome += [(vehicle.vin, "assigned", "") for vehicle, _ in work]
        if outcome:  # one executemany by primary key, not one ORM object per car
            with self._db.session() as session:
                session.execute(
                    update(OtaCampaignVehicleRow),
                    [{"campaign_id": campaign_id, "vin": vin, "status": status, "detail": detail, "updated_at": now}
                     for vin, status, detail in outcome],
                )

    # -- life cycle -------------------------------------------------------------------------------
    def _set_state(self, campaign_id: str, state: State, reason: str = "") -> None:
        with self._db.session() as session:
            row = session.get(OtaCampaignRow, campaign_id)
            if row is None:
                raise OtaRepositoryError(f"no campaign {campaign_id!r}")
            if row.state in ("completed", "cancelled"):
                raise OtaRepositoryError(f"campaign {campaign_id} is {row.state}")
            row.state, row.reason = state, reason

    def _withdraw(self, campaign_id: str, status: str) -> None:
        """Take back instructions not yet acted on (pause, cancel): those vehicles keep what they run."""
        with self._db.session() as session:
            rows = session.scalars(
                select(OtaCampaignVehicleRow).where(
                    OtaCampaignVehicleRow.campaign_id == campaign_id,
                    OtaCampaignVehicleRow.status == "assigned",
                )
            ).all()
            for row in rows:
                self.director.withdraw(row.vin, campaign_id)
                row.status = status

    def pause(self, campaign_id: str, reason: str = "paused by an operator") -> CampaignProgress:
        self._set_state(campaign_id, "paused", reason)
        self._withdraw(campaign_id, "pending")
        return self.progress(campaign_id)

    def resume(self, campaign_id: str) -> CampaignProgress:
        self._set_state(campaign_id, "running")
        self._assign_stage(campaign_id)
        return self.progress(campaign_id)

    def cancel(self, campaign_id: str) -> CampaignProgress:
        self._set_state(campaign_id, "cancelled", "cancelled by an operator")
        self._withdraw(campaign_id, "cancelled")
        return self.progress(campaign_id)

    def advance(self, campaign_id: str) -> CampaignProgress:
        """Open the next stage now (an operator's decision; normally the success threshold does it)."""
        spec = self.spec(campaign_id)
        with self._db.session() as session:
            row = session.get(OtaCampaignRow, campaign_id)
            assert row is not None
            if row.state != "running":
                raise OtaRepositoryError(f"campaign {campaign_id} is {row.state}, not running")
            if row.stage + 1 >= len(spec.stages):
                raise OtaRepositoryError(f"campaign {campaign_id} is already at its last stage")
            row.stage += 1
        self._assign_stage(campaign_id)
        return self.progress(campaign_id)

    def on_manifest(self, outcome: ManifestOutcome) -> None:
        """Move the vehicle's campaigns on from what its manifest says, then check the thresholds."""
        with self._db.session() as session:
            rows = session.scalars(
                select(OtaCampaignVehicleRow).where(
                    OtaCampaignVehicleRow.vin == outcome.vin, OtaCampaignVehicleRow.status == "assigned"
                )
            ).all()
            touched = [r.campaign_id for r in rows]
        for campaign_id in touched:
            spec = self.spec(campaign_id)
            target, _ = self.images.image(spec.image)
            hardware = self._hardware(spec)
            mine = [r for r in outcome.reports if r.hardware_id in hardware]
            done = mine and all(r.installed_image.hashes == target.hashes for r in mine)
            failed = [
                r
                for r in mine
                if r.last_install
                and not r.last_install.success
                and r.last_install.target == spec.image
                and r.last_install.code != "preconditions"
            ]
            if not done and not failed:
                continue
            status = "succeeded" if done else "failed"
            detail = (
                ""
                if done
                else "; ".join(f"{r.ecu_serial}: {r.last_install.code}" for r in failed if r.last_install)
            )
            with self._db.session() as session:
                stored = session.get(OtaCampaignVehicleRow, (campaign_id, outcome.vin))
                assert stored is not None
                stored.status, stored.detail, stored.updated_at = status, detail, self.clock()
            self.director.withdraw(outcome.vin, campaign_id)
            if done and spec.rxswin_after:
                self.inventory.set_rxswin(outcome.vin, spec.rxswin_after, self.clock())
            self._check_thresholds(campaign_id, spec)

    def _check_thresholds(self, campaign_id: str, spec: CampaignSpec) -> None:
        with self._db.session() as session:
            campaign = session.get(OtaCampaignRow, campaign_id)
            assert campaign is not None
            if campaign.state != "running":
                return
            counts = _counts(session, campaign_id, OtaCampaignVehicleRow.stage <= campaign.stage)
            counts.pop("excluded", None)
            total = sum(counts.values()) or 1
            failed, succeeded = counts.get("failed", 0), counts.get("succeeded", 0)
            stage = campaign.stage
        if failed / total > spec.error_threshold:
            self.pause(
                campaign_id,
                f"{failed} of {total} vehicles failed in stage {stage + 1} (error threshold {spec.error_threshold:.0%})",
            )
        elif succeeded / total >= spec.success_threshold:
            if stage + 1 < len(spec.stages):
                self.advance(campaign_id)
                self._check_thresholds(campaign_id, spec)  # a stage may bring no new vehicles
            elif failed + succeeded == total:
                self._set_state(campaign_id, "completed")

    def progress(self, campaign_id: str) -> CampaignProgress:
        spec = self.spec(campaign_id)
        with self._db.session() as session:
            row = session.get(OtaCampaignRow, campaign_id)
            assert row is not None
            counts = _counts(session, campaign_id)
            return CampaignProgress(campaign_id, row.state, row.stage, len(spec.stages), row.reason, counts)

    def all(self) -> list[CampaignProgress]:
        with self._db.session() as session:
            ids = list(session.scalars(select(OtaCampaignRow.id).order_by(OtaCampaignRow.created_at)))
        return [self.progress(i) for i in ids]

    def vehicles(self, campaign_id: str) -> list[tuple[str, int, str, str]]:
        with self._db.session() as session:
            query = (
                select(OtaCampaignVehicleRow)
                .where(OtaCampaignVehicleRow.campaign_id == campaign_id)
                .order_by(OtaCampaignVehicleRow.vin)
            )
            return [(r.vin, r.stage + 1, r.status, r.detail) for r in session.scalars(query)]
