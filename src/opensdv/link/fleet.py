"""The vehicle<->cloud contract over MQTT: topic names and payload models, version ``v1``.

Topics (``{vin}`` is the vehicle's VIN):

| topic | direction | QoS | payload |
| --- | --- | --- | --- |
| ``opensdv/v1/vehicles/{vin}/telemetry`` | vehicle -> cloud | 1 | ``TelemetryBatch``, or a JSON array of them |
| ``opensdv/v1/vehicles/{vin}/telemetry-acks`` | cloud -> vehicle | 0 | ``TelemetryAck`` |
| ``opensdv/v1/vehicles/{vin}/status`` | vehicle -> cloud, retained; the last will says offline | 1 | ``VehicleStatus`` |
| ``opensdv/v1/vehicles/{vin}/events`` | vehicle -> cloud | 1 | ``VehicleEvent`` |
| ``opensdv/v1/vehicles/{vin}/commands`` | cloud -> vehicle | 1 | ``SignedCommand`` (``link.signing``) |
| ``opensdv/v1/vehicles/{vin}/command-results`` | vehicle -> cloud | 1 | ``CommandResult`` |
| ``opensdv/v1/vehicles/{vin}/campaigns`` | cloud -> vehicle, retained | 1 | ``SignedCampaignSet`` (``link.campaigns``) |
| ``opensdv/v1/vehicles/{vin}/campaign-states`` | vehicle -> cloud, retained | 1 | ``CampaignStates`` (``link.campaigns``) |

Payloads are JSON. Telemetry batches carry a per-vehicle sequence number that never repeats (the
vehicle's spool assigns it), so the cloud stores each batch exactly once however often QoS 1
delivers it. The cloud confirms what it has stored (``TelemetryAck``) and only that confirmation
lets the vehicle forget a batch: the broker's PUBACK says nothing about whether the batch reached
the store. A backlog (after an outage) goes out as arrays of up to ``MAX_BUNDLE`` consecutive
batches, one message each, so draining it costs one MQTT round trip per bundle instead of per batch.
A batch a data collection campaign made names it (``campaign``: id, version, trigger time), so the
cloud files the samples under the campaign. A breaking change to a payload means ``v2`` topics,
served side by side; a new optional field (as ``campaign``) needs the cloud updated before the cars.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from opensdv.errors import OpenSDVError

__all__ = [
    "LINK_VERSION",
    "MAX_BUNDLE",
    "CampaignTag",
    "Command",
    "CommandResult",
    "EpochSeconds",
    "LinkError",
    "Sample",
    "StrictValue",
    "TelemetryAck",
    "TelemetryBatch",
    "TopicError",
    "VehicleEvent",
    "VehicleStatus",
    "decode",
    "decode_telemetry",
    "encode",
    "parse_topic",
    "seq_ranges",
    "topic",
    "wildcard",
]

LINK_VERSION = "v1"
MAX_BUNDLE = 1_000  # telemetry batches in one message
PREFIX = f"opensdv/{LINK_VERSION}/vehicles"
Kind = Literal[
    "telemetry", "telemetry-acks", "status", "events", "commands", "command-results", "campaigns",
    "campaign-states",
]  # fmt: skip
_TOPIC = re.compile(
    rf"{PREFIX}/([A-HJ-NPR-Z0-9]{{17}})/"
    r"(telemetry|telemetry-acks|status|events|commands|command-results|campaigns|campaign-states)"
)
M = TypeVar("M", bound=BaseModel)
# Every time on the link is seconds since the epoch (UTC) as a JSON number; the type says so
EpochSeconds = Annotated[float, Field(description="seconds since the epoch (UTC)")]
# Strict: a JSON string is never coerced into a number (and strict unions validate faster)
StrictValue = (
    StrictBool | StrictInt | StrictFloat | StrictStr
    | list[StrictBool] | list[StrictInt] | list[StrictFloat] | list[StrictStr] | None
)  # fmt: skip
Value = StrictValue


class LinkError(OpenSDVError):
    """A message that breaks the contract (the message names the topic and the field)."""


class TopicError(LinkError):
    """A topic that is not one of the link's."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sample(_Payload):
    path: str = Field(pattern=r"^Vehicle(\.[A-Za-z0-9_]+)+$")
    value: Value
    ts: EpochSeconds = Field(description="seconds since the epoch (UTC), when the car measured it")


class CampaignTag(_Payload):
    """Which data collection campaign made a batch, and the trigger it answers (none: a period)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    version: int = Field(ge=1)
    trigger: EpochSeconds | None = None


class TelemetryBatch(_Payload):
    vin: str
    seq: int = Field(ge=0, description="per vehicle, never repeats, increases by one per batch")
    samples: list[Sample] = Field(max_length=100_000)
    campaign: CampaignTag | None = None


class TelemetryAck(_Payload):
    vin: str
    stored: list[tuple[StrictInt, StrictInt]] = Field(
        min_length=1, max_length=100_000, description="inclusive (first, last) sequence ranges now stored"
    )

    @field_validator("stored")
    @classmethod
    def _ranges_are_ranges(cls, stored: list[tuple[int, int]]) -> list[tuple[int, int]]:
        for first, last in stored:
            if not 0 <= first <= last:
                raise ValueError(f"({first}, {last}) is not a range of sequence numbers")
        return stored

    def seqs(self) -> int:
        """How many sequence numbers the ranges cover."""
        return sum(last - first + 1 for first, last in self.stored)


class VehicleStatus(_Payload):
    vin: str
    online: bool
    at: EpochSeconds
    brand: str = ""
    model: str = ""
    software: dict[str, str] = Field(default={}, description="ECU name -> installed version")


class VehicleEvent(_Payload):
    vin: str
    kind: str = Field(min_length=1, description="e.g. safety-denied, ota-installed, dtc")
    detail: str = ""
    at: EpochSeconds


class Command(_Payload):
    """What an operator asked one car to do; it travels signed (``link.signing.SignedCommand``)."""

    id: str = Field(min_length=1, max_length=64)
    vin: str = Field(pattern=r"^[A-HJ-NPR-Z0-9]{17}$")
    tenant: str = Field(description="the operator's tenant (brand or fleet)")
    operator: str = Field(min_length=1)
    path: str = Field(pattern=r"^Vehicle(\.[A-Za-z0-9_]+)+$")
    value: Value
    issued_at: EpochSeconds
    expires_at: EpochSeconds
    nonce: str = Field(min_length=16, max_length=64, description="random; the car refuses one it has seen")
    key_id: str = Field(min_length=1, max_length=64, description="the signer certificate's SHA-256, shortened")


class CommandResult(_Payload):
    id: str
    vin: str
    accepted: bool
    reason: str = ""


def topic(vin: str, kind: Kind) -> str:
    """The link topic of one vehicle for ``kind``."""
    return f"{PREFIX}/{vin}/{kind}"


def wildcard(kind: Kind) -> str:
    """The subscription for ``kind`` from every vehicle."""
    return f"{PREFIX}/+/{kind}"


def parse_topic(name: str) -> tuple[str, str]:
    """(VIN, kind) of a link topic, or ``LinkError`` for anything else."""
    match = _TOPIC.fullmatch(name)
    if match is None:
        raise TopicError(f"topic {name!r} is not an {LINK_VERSION} vehicle topic")
    return match[1], match[2]


def encode(payload: BaseModel) -> bytes:
    """A payload as the link's JSON bytes."""
    return payload.model_dump_json().encode()


def decode(model: type[M], data: bytes, where: str) -> M:
    """The payload as ``model``, or ``LinkError`` naming ``where`` and the first bad field."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        raise _link_error(exc, where) from None


_BUNDLE = TypeAdapter(list[TelemetryBatch])


def decode_telemetry(data: bytes, where: str) -> list[TelemetryBatch]:
    """A telemetry payload: one batch, or a bundle (JSON array) of up to ``MAX_BUNDLE``."""
    if data.lstrip()[:1] != b"[":
        return [decode(TelemetryBatch, data, where)]
    try:
        batches = _BUNDLE.validate_json(data)
    except ValidationError as exc:
        raise _link_error(exc, where) from None
    if not 0 < len(batches) <= MAX_BUNDLE:
        raise LinkError(f"{where}: a bundle holds 1 to {MAX_BUNDLE} batches, not {len(batches)}")
    return batches


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sequence numbers as sorted inclusive ranges: [3, 1, 2, 7] -> [(1, 3), (7, 7)]."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and ranges[-1][1] == seq - 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _link_error(exc: ValidationError, where: str) -> LinkError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(payload)"
    return LinkError(f"{where}: {field}: {first['msg']}")
