"""The car's data collection campaigns from the cloud: the signed set it holds, kept across
restarts, each campaign's state, and which of them run in the ``CampaignEngine``.

A set is taken only if ``CommandVerifier.verify_campaigns`` accepts it (the fleet's command signer,
this VIN) and its revision is newer than the one held: an older set replayed by anyone who can
publish is refused and reported, the same set delivered again (a retained message on every
connection) changes nothing. Each campaign of an accepted set is then checked here as well as by
the cloud — this car is one of its targets, it compiles against this car's catalog, its id is not
one of the car's own campaign files — and is ``rejected`` with the reason otherwise; the rest are
``suspended`` (by the cloud), ``received`` (before its start), ``expired``, or ``active`` and
running. States are recomputed on every new set and every ``refresh(now)`` (start and expiry pass
with time), and reported to the cloud whenever they change.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import ValidationError

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.durable import write_atomically
from opensdv.link.campaigns import CampaignEntry, CampaignSet, CampaignState, CampaignStates, StateName
from opensdv.link.signing import CommandRefused, CommandVerifier
from opensdv.model._files import CatalogError
from opensdv.model.campaigns import Campaign, Targets
from opensdv.vehicle.agent.campaigns import CampaignEngine

__all__ = ["CarFacts", "CloudCampaigns"]

log = logging.getLogger("opensdv.agent")


@dataclass(frozen=True)
class CarFacts:
    """What the car knows of itself to check a campaign's targets."""

    vin: str
    brand: str
    model: str
    markets: tuple[str, ...]

    def refusal(self, targets: Targets) -> str | None:
        """Why this car is not one of ``targets`` (an empty list matches every car), or ``None``."""
        if targets.vins and self.vin not in targets.vins:
            return "this car's VIN is not among the campaign's targets"
        if targets.brands and self.brand not in targets.brands:
            return f"brand {self.brand} is not among the targets {targets.brands}"
        if targets.models and self.model not in targets.models:
            return f"model {self.model} is not among the targets {targets.models}"
        if targets.markets and not set(self.markets) & set(targets.markets):
            return f"this car's markets {list(self.markets)} are not among the targets {targets.markets}"
        return None


class CloudCampaigns:
    """The cloud's campaigns in one car (see the module docstring); ``report`` gets each change of state."""

    def __init__(
        self,
        engine: CampaignEngine,
        verifier: CommandVerifier | None,
        car: CarFacts,
        report: Callable[[CampaignStates], None],
        store: Path | None = None,
        *,
        local_ids: Iterable[str] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.car = car
        self.report = report
        self.store = store
        self.local_ids = frozenset(local_ids)
        self.clock = clock
        self.refused = 0  # sets refused (bad signature, another car's, older than the one held)
        self._set: CampaignSet | None = self._load()
        self._refusal = ""
        self._states: list[CampaignState] | None = None
        self._problems: dict[tuple[str, int], str] = {}  # (id, version) -> why it does not compile here
        self.changed = asyncio.Event()  # the running campaigns changed: subscribe to the engine's paths again

    @property
    def revision(self) -> int:
        return 0 if self._set is None else self._set.revision

    def receive(self, payload: bytes) -> None:
        """A ``SignedCampaignSet`` from the link: taken if valid and newer, refused (and reported) if not."""
        try:
            if self.verifier is None:
                raise CommandRefused("this vehicle was provisioned without the fleet CA: it takes no campaigns")
            content = self.verifier.verify_campaigns(payload)
            if content.revision < self.revision:
                raise CommandRefused(
                    f"campaign set revision {content.revision} is older than the one held ({self.revision}): a replay"
                )
        except CommandRefused as exc:
            self.refused += 1
            self._refusal = str(exc)
            log.warning("%s: campaign set refused: %s", self.car.vin, exc)
            self.refresh(self.clock.time(), force_report=True)
            return
        if content.revision == self.revision:
            return  # delivered again (retained): nothing changed
        self._set, self._refusal = content, ""
        if self.store is not None:
            write_atomically(self.store, content.model_dump_json().encode())
        self.refresh(self.clock.time())

    def refresh(self, now: float, *, force_report: bool = False) -> None:
        """Recompute every state at ``now`` and run exactly the active campaigns (``changed`` is set
        when that changes what runs)."""
        states, active = self._evaluate(now)
        before = {c.id: c.version for c in self.engine.campaigns if c.id not in self.local_ids}
        for campaign_id in before.keys() - {c.id for c in active}:
            self.engine.remove(campaign_id)
        for campaign in active:
            if before.get(campaign.id) != campaign.version:
                self.engine.remove(campaign.id)  # a new version starts afresh (even a lower one)
                self.engine.install(campaign)
        if force_report or states != self._states:
            self._states = states
            self.report(
                CampaignStates(vin=self.car.vin, revision=self.revision, at=now, campaigns=states, refused=self._refusal)
            )
        if before != {c.id: c.version for c in active}:
            self.changed.set()

    def _evaluate(self, now: float) -> tuple[list[CampaignState], list[Campaign]]:
        states, active = [], []
        when = datetime.fromtimestamp(now, UTC)
        for entry in self._set.campaigns if self._set is not None else ():
            state, reason = self._state(entry, when)
            campaign = entry.campaign
            states.append(CampaignState(id=campaign.id, version=campaign.version, state=state, reason=reason))
            if state == "active":
                active.append(campaign)
        return states, active

    def _state(self, entry: CampaignEntry, when: datetime) -> tuple[StateName, str]:
        campaign = entry.campaign
        if campaign.id in self.local_ids:
            return "rejected", f"campaign {campaign.id} is one of this car's own campaign files"
        refusal = self.car.refusal(campaign.targets)
        if refusal is not None:
            return "rejected", refusal
        problem = self._problems.get((campaign.id, campaign.version), "")
        if (campaign.id, campaign.version) not in self._problems:
            try:
                self.engine.check(campaign)
            except CatalogError as exc:
                problem = str(exc)
            self._problems[(campaign.id, campaign.version)] = problem
        if problem:
            return "rejected", problem
        if entry.suspended:
            return "suspended", ""
        if campaign.expiry is not None and when >= campaign.expiry:
            return "expired", f"expired at {campaign.expiry.isoformat()}"
        if campaign.start is not None and when < campaign.start:
            return "received", f"starts at {campaign.start.isoformat()}"
        return "active", ""

    def _load(self) -> CampaignSet | None:
        """The set held before the restart (written only after it was verified)."""
        if self.store is None or not self.store.exists():
            return None
        try:
            return CampaignSet.model_validate(json.loads(self.store.read_text()))
        except (OSError, ValueError, ValidationError) as exc:
            # running no cloud campaign until the cloud's retained set arrives again loses no data
            log.warning("%s: unreadable campaign set (%s); waiting for the cloud's", self.store, exc)
            return None
