"""Data collection campaigns in the cloud: operators create, suspend, resume and delete them, and
every change reaches the cars it concerns as a new signed set (``link.campaigns``).

A campaign belongs to the tenant of the operator who created it: a brand's operator can only
target and see its own brand's cars (an empty brand list becomes its brand), the platform operator
any. Which cars a campaign concerns is worked out from the registry at every change and at every
``sync`` (so a car registered later gets the campaigns that target it): for each car the cloud
computes the set it should hold, and only when that differs from the set last published does it
sign a new one under the next revision (stored, so a restart never reuses a revision) and publish
it retained. ``sync(republish=True)`` at start publishes every stored set again, unchanged, for a
broker that lost its retained messages: a car ignores a revision it already holds.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.fleet.errors import FleetError
from opensdv.cloud.fleet.operators import PLATFORM, AuthError, Operator
from opensdv.cloud.fleet.registry import FleetEntry, VehicleRegistry
from opensdv.link.campaigns import MAX_CAMPAIGNS, CampaignEntry
from opensdv.link.signing import CommandSigner
from opensdv.model.campaigns import Campaign, Targets, compile_campaign
from opensdv.model.vss import VssCatalog
from opensdv.storage.database import Database
from opensdv.storage.tables import CampaignSetRow, DataCampaignRow

__all__ = ["CampaignConflict", "CampaignForbidden", "DataCampaign", "DataCampaigns", "Publish", "may_change"]

State = Literal["active", "suspended", "deleted"]
Publish = Callable[[list[tuple[str, bytes]]], Awaitable[None]]  # (VIN, signed set) pairs onto the link


class CampaignConflict(FleetError):
    """The change does not fit the campaign's state (an id taken, a version not newer, deleted)."""


class CampaignForbidden(AuthError):
    """The operator may not do this (another tenant's cars, or no right to change campaigns)."""


@dataclass(frozen=True)
class DataCampaign:
    campaign: Campaign
    tenant: str
    state: State
    created_by: str
    updated_at: float


class DataCampaigns:
    """The campaigns of every tenant, and the signed set each car should hold (module docstring)."""

    def __init__(
        self, database: Database, registry: VehicleRegistry, signer: CommandSigner, publish: Publish,
        catalog: VssCatalog, *, clock: Clock = SYSTEM_CLOCK,
    ) -> None:  # fmt: skip
        self._db = database
        self.registry = registry
        self.signer = signer
        self.publish = publish
        self.catalog = catalog
        self.clock = clock

    # ------------------------------------------------------------------------------ reads

    def get(self, campaign_id: str, caller: Operator) -> DataCampaign | None:
        """The campaign if the caller's tenant may see it (deleted ones included)."""
        with self._db.session() as session:
            row = session.get(DataCampaignRow, campaign_id)
            found = None if row is None else _campaign(row)
        return found if found is not None and _sees(caller, found) else None

    def all(self, caller: Operator) -> list[DataCampaign]:
        with self._db.session() as session:
            rows = session.query(DataCampaignRow).order_by(DataCampaignRow.id).all()
            return [c for c in map(_campaign, rows) if _sees(caller, c)]

    def targets(self, campaign: Campaign) -> list[FleetEntry]:
        """The registered cars the campaign concerns."""
        return [car for car in self.registry.entries() if _targeted(campaign.targets, car)]

    # ------------------------------------------------------------------------------ changes

    async def create(self, campaign: Campaign, caller: Operator) -> DataCampaign:
        """A new campaign, or a newer version of the caller's tenant's own; then the cars' sets."""
        may_change(caller)
        campaign = _scoped(campaign, caller)
        compile_campaign(campaign, self.catalog)  # CatalogError names the campaign, field, position
        with self._db.session() as session:
            row = session.get(DataCampaignRow, campaign.id)
            if row is not None and (row.tenant != caller.tenant and caller.tenant != PLATFORM):
                raise CampaignConflict(f"campaign id {campaign.id} is taken")
            if row is not None and row.version >= campaign.version and row.state != "deleted":
                raise CampaignConflict(
                    f"campaign {campaign.id} is at version {row.version}: a change needs a higher version"
                )
            if row is None:
                row = DataCampaignRow(id=campaign.id, tenant=caller.tenant)
                session.add(row)
            row.version, row.document, row.state = campaign.version, campaign.model_dump_json(), "active"
            row.created_by, row.updated_at = caller.name, self._now()
            created = _campaign(row)
        await self.sync()
        return created

    async def set_state(self, campaign_id: str, state: State, caller: Operator) -> DataCampaign:
        """Suspend (``suspended``), resume (``active``) or delete (``deleted``); then the cars' sets."""
        may_change(caller)
        with self._db.session() as session:
            row = session.get(DataCampaignRow, campaign_id)
            if row is None or not _sees(caller, _campaign(row)):
                raise KeyError(campaign_id)
            if row.state == "deleted":
                raise CampaignConflict(f"campaign {campaign_id} was deleted")
            row.state, row.updated_at = state, self._now()
            changed = _campaign(row)
        await self.sync()
        return changed

    async def sync(self, *, republish: bool = False) -> int:
        """Publish a new signed set to every car whose set changed (all stored sets again with
        ``republish``); returns how many sets went out."""
        with self._db.session() as session:
            live = [_campaign(r) for r in session.query(DataCampaignRow).filter(DataCampaignRow.state != "deleted")]
            held = {row.vin: row for row in session.query(CampaignSetRow)}
            outgoing: list[tuple[str, bytes]] = []
            for car in self.registry.entries():
                entries = [
                    CampaignEntry(campaign=c.campaign, suspended=c.state == "suspended")
                    for c in live if _targeted(c.campaign.targets, car)
                ][:MAX_CAMPAIGNS]  # fmt: skip
                summary = json.dumps([[e.campaign.id, e.campaign.version, e.suspended] for e in entries])
                row = held.get(car.vin)
                if row is not None and row.campaigns == summary:
                    if republish:
                        outgoing.append((car.vin, self.signer.sign_campaigns(car.vin, row.revision, entries)))
                    continue
                if row is None and not entries:
                    continue  # a car no campaign ever concerned needs no empty set
                if row is None:
                    row = CampaignSetRow(vin=car.vin, revision=0, campaigns="[]")
                    session.add(row)
                row.revision, row.campaigns = row.revision + 1, summary
                outgoing.append((car.vin, self.signer.sign_campaigns(car.vin, row.revision, entries)))
        # published after the revisions are stored: a crash in between only delays the sets to the next sync
        if outgoing:
            await self.publish(outgoing)
        return len(outgoing)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.time(), UTC)


def _campaign(row: DataCampaignRow) -> DataCampaign:
    updated = row.updated_at if row.updated_at.tzinfo else row.updated_at.replace(tzinfo=UTC)
    state: State = row.state  # type: ignore[assignment]  # the column holds only these
    return DataCampaign(Campaign.model_validate_json(row.document), row.tenant, state, row.created_by, updated.timestamp())


def _sees(caller: Operator, campaign: DataCampaign) -> bool:
    return caller.tenant in (PLATFORM, campaign.tenant)


def may_change(caller: Operator) -> None:
    """``CampaignForbidden`` unless the operator may change campaigns (the right to command the fleet)."""
    if not caller.can_command:
        raise CampaignForbidden(f"operator {caller.name} may not change campaigns (it may not command the fleet)")


def _scoped(campaign: Campaign, caller: Operator) -> Campaign:
    """A brand's operator targets its own brand only (an empty brand list means it)."""
    if caller.tenant == PLATFORM:
        return campaign
    others = [brand for brand in campaign.targets.brands if brand != caller.tenant]
    if others:
        raise CampaignForbidden(f"operator {caller.name} of {caller.tenant} may not target brands {others}")
    targets = campaign.targets.model_copy(update={"brands": [caller.tenant]})
    return campaign.model_copy(update={"targets": targets})


def _targeted(targets: Targets, car: FleetEntry) -> bool:
    def matches(allowed: Iterable[str], value: str) -> bool:
        allowed = list(allowed)
        return not allowed or value in allowed

    return (
        matches(targets.brands, car.brand) and matches(targets.models, car.model)
        and matches(targets.markets, car.market) and matches(targets.vins, car.vin)
    )  # fmt: skip
