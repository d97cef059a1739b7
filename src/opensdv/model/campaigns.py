"""Data collection campaigns: what an engineer asks the fleet, as VSS.

A campaign names the signals it collects (VSS paths of the catalog: the decoder manifest is the
brand mapping each car already has), a collection scheme — every ``period_ms``, or when a
condition over VSS signals holds (``Vehicle.Speed > 80 and not
Vehicle.ADAS.CruiseControl.IsActive``), on every evaluation that holds or only when it turns true,
at most once per ``min_interval_ms``, with the seconds before the trigger (from the car's ring
buffer) and after it — a priority, spool limits, a validity window and its targets (brand, model,
market, VINs, as OTA campaigns). ``version`` grows with every change; a car keeps the newest.

``compile_campaign`` checks it against a catalog: every path known, the condition parsed into a
typed tree (never ``eval``); an error names the campaign, the field and the position.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opensdv.model._files import CatalogError, describe_validation_error
from opensdv.model.query import CompiledCondition, QueryError, compile_condition
from opensdv.model.vss import VssCatalog

__all__ = [
    "Campaign",
    "CampaignSignal",
    "CompiledCampaign",
    "ConditionScheme",
    "SpoolLimits",
    "Targets",
    "TimeScheme",
    "compile_campaign",
    "parse_campaign",
]

MAX_WINDOW_S = 600.0


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CampaignSignal(_Record):
    path: str = Field(min_length=1, max_length=1000)
    min_interval_ms: int = Field(default=0, ge=0, le=3_600_000, description="sample at most this often (0: every change)")


class TimeScheme(_Record):
    kind: Literal["time"] = "time"
    period_ms: int = Field(ge=10, le=86_400_000)


class ConditionScheme(_Record):
    kind: Literal["condition"] = "condition"
    expression: str = Field(min_length=1, max_length=4096)
    trigger: Literal["always", "rising-edge"] = "rising-edge"
    min_interval_ms: int = Field(default=0, ge=0, le=86_400_000, description="between two triggers")
    pre_trigger_s: float = Field(default=0.0, ge=0, le=MAX_WINDOW_S)
    post_trigger_s: float = Field(default=0.0, ge=0, le=MAX_WINDOW_S)


class SpoolLimits(_Record):
    max_records: int = Field(default=1000, ge=1, le=1_000_000, description="records kept while the car is offline")
    drop: Literal["oldest", "newest"] = Field(default="oldest", description="what goes first when it is full")


class Targets(_Record):
    brands: list[str] = []
    models: list[str] = []
    markets: list[str] = []
    vins: list[str] = []


class Campaign(_Record):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    version: int = Field(ge=1)
    description: str = ""
    signals: list[CampaignSignal] = Field(min_length=1, max_length=500)
    scheme: TimeScheme | ConditionScheme = Field(discriminator="kind")
    priority: int = Field(default=5, ge=0, le=9, description="0 goes first")
    spool: SpoolLimits = SpoolLimits()
    start: datetime | None = None
    expiry: datetime | None = None
    targets: Targets = Targets()

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.start is not None and self.expiry is not None and self.expiry <= self.start:
            raise ValueError(f"expiry {self.expiry.isoformat()} is not after start {self.start.isoformat()}")
        paths = [s.path for s in self.signals]
        if len(set(paths)) != len(paths):
            raise ValueError(f"a signal is named twice: {sorted(p for p in set(paths) if paths.count(p) > 1)}")
        return self

    def active_at(self, when: datetime) -> bool:
        """Within its validity window (``start`` inclusive, ``expiry`` exclusive)."""
        return (self.start is None or when >= self.start) and (self.expiry is None or when < self.expiry)


@dataclass(frozen=True)
class CompiledCampaign:
    campaign: Campaign
    condition: CompiledCondition | None  # None for a time scheme

    @property
    def paths(self) -> tuple[str, ...]:
        """Everything the car must watch: the collected signals and what the condition reads."""
        own = tuple(s.path for s in self.campaign.signals)
        return tuple(dict.fromkeys(own + (self.condition.paths if self.condition else ())))


def compile_campaign(campaign: Campaign, catalog: VssCatalog) -> CompiledCampaign:
    """The campaign checked against ``catalog``; ``CatalogError`` names the campaign, field, position."""
    where = f"campaign {campaign.id}"
    for index, signal in enumerate(campaign.signals):
        if signal.path not in catalog:
            raise CatalogError(where, f"signals[{index}].path", f"unknown VSS path {signal.path!r}")
    condition = None
    if isinstance(campaign.scheme, ConditionScheme):
        try:
            condition = compile_condition(campaign.scheme.expression, catalog)
        except QueryError as exc:
            raise CatalogError(where, "scheme.expression", str(exc).replace("query, ", "")) from None
    return CompiledCampaign(campaign, condition)


def parse_campaign(document: object, source: str = "campaign") -> Campaign:
    """A campaign from a decoded JSON/YAML document; errors name the source and the field."""
    try:
        return Campaign.model_validate(document)
    except ValidationError as exc:
        raise CatalogError(source, "", describe_validation_error(exc)) from None
