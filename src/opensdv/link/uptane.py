"""What a vehicle reports to the Uptane director: ECU version reports inside a vehicle version manifest.

Both are signed envelopes ``{"signatures": [...], "signed": {...}}`` like TUF metadata, the
signatures covering the canonical JSON of ``signed`` (Uptane Standard 2.1, 5.4.2.1 and 5.4.2.1.1).
Each ECU signs its own report with its own key; the primary signs the manifest that carries them,
so the director can tell which ECU said what and a primary cannot forge a secondary's report.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Key, Signature, Signer

from opensdv.link.canonical import canonical_bytes, loads_strict
from opensdv.link.fleet import LinkError

__all__ = [
    "EcuVersionReport",
    "InstallResult",
    "InstalledImage",
    "ManifestError",
    "SignedEnvelope",
    "VehicleVersionManifest",
    "sign_envelope",
    "verify_envelope",
]

MANIFEST_VERSION = 1
T = TypeVar("T", bound=BaseModel)


class ManifestError(LinkError):
    """A manifest or report is malformed or its signature does not verify (the message says which)."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignedEnvelope(_Record):
    signatures: list[dict[str, str]]
    signed: dict[str, Any]

    @classmethod
    def from_bytes(cls, data: bytes, what: str) -> SignedEnvelope:
        try:
            return cls.model_validate(loads_strict(data))
        except (ValueError, ValidationError) as exc:
            raise ManifestError(f"{what}: not a signed JSON envelope ({_first_line(exc)})") from None

    def to_bytes(self) -> bytes:
        return canonical_bytes(self.model_dump(mode="json"))


class InstalledImage(_Record):
    filename: str = Field(min_length=1)
    length: int = Field(ge=0)
    hashes: dict[str, str] = Field(min_length=1)


class InstallResult(_Record):
    """The outcome of the last install attempt on this ECU, so the director learns of failures."""

    target: str
    success: bool
    code: str = Field(description="ok, or what failed: verification, download, health-check, boot, ...")
    detail: str = ""


class EcuVersionReport(_Record):
    ecu_serial: str = Field(min_length=1)
    hardware_id: str = Field(min_length=1)
    installed_image: InstalledImage
    release_counter: int = Field(ge=0)
    active_slot: Literal["a", "b"]
    nonce: str = Field(min_length=16, description="fresh per report: the director refuses a replay")
    time: datetime = Field(description="the ECU's latest trusted time")
    attacks_detected: str = ""
    last_install: InstallResult | None = None


class VehicleVersionManifest(_Record):
    manifest_version: int = MANIFEST_VERSION
    vin: str = Field(min_length=1)
    primary_ecu_serial: str = Field(min_length=1)
    ecu_version_reports: dict[str, SignedEnvelope] = Field(description="by ECU serial")


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def sign_envelope(payload: BaseModel, signers: list[Signer]) -> SignedEnvelope:
    """Sign ``payload`` (canonical JSON) with each of ``signers``: the envelope a manifest travels in."""
    signed = payload.model_dump(mode="json")
    data = canonical_bytes(signed)
    return SignedEnvelope(signatures=[s.sign(data).to_dict() for s in signers], signed=signed)


def verify_envelope(envelope: SignedEnvelope, key: Key, model: type[T], what: str) -> T:
    """The payload of ``envelope`` as ``model`` if ``key`` signed exactly these contents."""
    signatures = [Signature.from_dict(dict(s)) for s in envelope.signatures if s.get("keyid") == key.keyid]
    if not signatures:
        raise ManifestError(f"{what}: no signature by key {key.keyid[:12]}")
    try:
        key.verify_signature(signatures[0], canonical_bytes(envelope.signed))
    except UnverifiedSignatureError:
        raise ManifestError(
            f"{what}: the signature by key {key.keyid[:12]} does not match the contents"
        ) from None
    try:
        return model.model_validate(envelope.signed)
    except ValidationError as exc:
        raise ManifestError(f"{what}: {_first_line(exc)}: {exc.errors()[0]['loc']}") from None
