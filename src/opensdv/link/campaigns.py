"""Data collection campaigns on the link: the set of campaigns the cloud keeps for each car, signed,
and the car's report of what it made of them.

The cloud publishes one ``SignedCampaignSet`` per car, retained on ``.../{vin}/campaigns``: every
campaign the car should hold, each running or suspended (a deleted one is simply absent), under a
per-car ``revision`` that grows with every change. A retained message is what a car finds whenever
it connects, so an offline car catches up with the newest set without the cloud tracking
deliveries, and the revision makes a replayed older set harmless: the car refuses any set not newer
than the one it holds. The signature is the command key's (``link.signing``); see ADR 0013.

The car answers with ``CampaignStates``, retained on ``.../{vin}/campaign-states``: the revision it
applied and each campaign's state (``received`` before its start, ``active``, ``suspended``,
``expired``, or ``rejected`` with the reason: not a target, or not valid against its catalog).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, StrictStr, model_validator

from opensdv.link.fleet import EpochSeconds, _Payload
from opensdv.model.campaigns import Campaign

__all__ = [
    "MAX_CAMPAIGNS",
    "CampaignEntry",
    "CampaignSet",
    "CampaignState",
    "CampaignStates",
    "SignedCampaignSet",
    "StateName",
]

MAX_CAMPAIGNS = 100  # in one car's set: bounds the message and the car's work
StateName = Literal["received", "active", "suspended", "expired", "rejected"]


class CampaignEntry(_Payload):
    campaign: Campaign
    suspended: bool = False


class CampaignSet(_Payload):
    vin: str = Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")
    revision: int = Field(ge=1, description="per car; grows with every change to its set")
    issued_at: EpochSeconds
    key_id: str = Field(min_length=1, max_length=64)
    campaigns: list[CampaignEntry] = Field(max_length=MAX_CAMPAIGNS)

    @model_validator(mode="after")
    def _ids_unique(self) -> Self:
        ids = [entry.campaign.id for entry in self.campaigns]
        if len(set(ids)) != len(ids):
            raise ValueError(f"a campaign is in the set twice: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self


class SignedCampaignSet(_Payload):
    content: CampaignSet
    signer: StrictStr = Field(description="the signer's certificate, PEM")
    signature: StrictStr = Field(description="Ed25519 over the content's canonical JSON, base64")


class CampaignState(_Payload):
    id: str
    version: int
    state: StateName
    reason: str = ""


class CampaignStates(_Payload):
    vin: str
    revision: int = Field(ge=0, description="the set the car applied (0: none yet)")
    at: EpochSeconds
    campaigns: list[CampaignState] = Field(max_length=2 * MAX_CAMPAIGNS)
    refused: str = Field(default="", description="why the car refused the newest set it was sent, if it did")
