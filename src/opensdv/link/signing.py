"""Commands signed end to end: the cloud signs, the car verifies, the broker only carries.

A ``SignedCommand`` holds the command, the signer's certificate (PEM) and an Ed25519 signature
over the command's canonical JSON (keys sorted, no whitespace, UTF-8; as the JSON object arrived,
so nothing a parser normalises can change what was signed). The car trusts a signer certificate
that the fleet CA issued with the command-signing key usage and that is valid now: rotating the
cloud's key needs no visit to the car. It refuses a command that is unsigned, wrongly signed,
for another VIN, not yet valid, expired, longer-lived than it allows, or replayed (it remembers
every nonce until that command expires, across restarts). A compromised broker can delay or drop
commands, never forge one.

The same key signs each car's set of data collection campaigns (``link.campaigns``): a long-lived
document, so it carries a revision instead of a nonce and an expiry (the car refuses one that is not
newer than its own).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from pydantic import Field, StrictStr

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.durable import write_atomically
from opensdv.link.campaigns import CampaignEntry, CampaignSet, SignedCampaignSet
from opensdv.link.fleet import Command, LinkError, _Payload, decode, encode

__all__ = [
    "COMMAND_SIGNING",
    "SIGNER_SUBJECT",
    "CommandRefused",
    "CommandSigner",
    "CommandVerifier",
    "SignedCommand",
    "canonical_command",
]

# The extended key usage of a command signer's certificate (an OID under the UUID arc, 2.25)
COMMAND_SIGNING = x509.ObjectIdentifier("2.25.16990234166112446425468091731458022093")
SIGNER_SUBJECT = "opensdv-command-signer"
MAX_LIFETIME_S = 3600.0  # the longest a command may be valid: bounds what the car must remember
CLOCK_SKEW_S = 300.0  # how far ahead of the car's clock a command's issued_at may be


class CommandRefused(LinkError):
    """The car does not carry out this command (the message says why; it is reported as an event)."""


class SignedCommand(_Payload):
    command: Command
    signer: StrictStr = Field(description="the signer's certificate, PEM")
    signature: StrictStr = Field(description="Ed25519 over the command's canonical JSON, base64")


def canonical_command(command: Any) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        command, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


class CommandSigner:
    """The cloud's command key (``command-signer.key``) and its certificate (``command-signer.pem``)."""

    def __init__(
        self, key_file: Path, cert_file: Path, *, clock: Clock = SYSTEM_CLOCK, lifetime_s: float = 300.0
    ) -> None:
        try:
            key = serialization.load_pem_private_key(key_file.read_bytes(), None)
            self.certificate_pem = cert_file.read_text()
            certificate = x509.load_pem_x509_certificate(self.certificate_pem.encode())
        except (OSError, ValueError) as exc:
            raise LinkError(
                f"command key {key_file} / {cert_file}: {exc} (opensdv fleet command-key writes them)"
            ) from None
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise LinkError(f"{key_file}: the command key must be Ed25519")
        self._key = key
        self.key_id = certificate.fingerprint(hashes.SHA256()).hex()[:32]
        self.clock = clock
        self.lifetime_s = lifetime_s

    def command(self, vin: str, tenant: str, operator: str, path: str, value: Any) -> Command:
        """A fresh command (its own nonce, valid ``lifetime_s`` from now)."""
        now = self.clock.time()
        return Command(
            id=secrets.token_hex(8), vin=vin, tenant=tenant, operator=operator, path=path, value=value,
            issued_at=now, expires_at=now + self.lifetime_s, nonce=secrets.token_hex(16), key_id=self.key_id,
        )  # fmt: skip

    def sign(self, command: Command) -> bytes:
        """The ``SignedCommand`` for ``command``, as the link's JSON bytes."""
        envelope = SignedCommand(command=command, signer=self.certificate_pem, signature=self._signature(command))
        return encode(envelope)

    def sign_campaigns(self, vin: str, revision: int, campaigns: list[CampaignEntry]) -> bytes:
        """The ``SignedCampaignSet`` of one car at ``revision``, as the link's JSON bytes."""
        content = CampaignSet(
            vin=vin, revision=revision, issued_at=self.clock.time(), key_id=self.key_id, campaigns=campaigns
        )
        envelope = SignedCampaignSet(content=content, signer=self.certificate_pem, signature=self._signature(content))
        return encode(envelope)

    def _signature(self, content: _Payload) -> str:
        return base64.b64encode(self._key.sign(canonical_command(content.model_dump(mode="json")))).decode()


@dataclass(frozen=True)
class _Signer:
    key: ed25519.Ed25519PublicKey
    certificate: x509.Certificate


class CommandVerifier:
    """The car's check of every command, against the fleet CA it was provisioned with."""

    def __init__(
        self, vin: str, ca_file: Path, seen_file: Path | None = None, *, clock: Clock = SYSTEM_CLOCK,
        max_lifetime_s: float = MAX_LIFETIME_S,
    ) -> None:  # fmt: skip
        try:
            self.ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
        except (OSError, ValueError) as exc:
            raise LinkError(f"fleet CA {ca_file}: {exc} (opensdv fleet provision writes it)") from None
        self.vin = vin
        self.clock = clock
        self.max_lifetime_s = max_lifetime_s
        self.seen_file = seen_file
        self._signers: dict[str, _Signer] = {}
        self._seen: dict[str, float] = self._load_seen()

    def verify(self, payload: bytes) -> Command:
        """The command, if the car may carry it out; ``CommandRefused`` saying why otherwise."""
        try:
            raw = json.loads(payload)
            envelope = decode(SignedCommand, payload, "command")
        except (ValueError, LinkError) as exc:
            raise CommandRefused(f"not a signed command: {exc}") from None
        command = envelope.command
        self._check_signature(envelope.signer, envelope.signature, raw["command"], f"command {command.id}")
        now = self.clock.time()
        if command.vin != self.vin:
            raise CommandRefused(f"command {command.id} is for vehicle {command.vin}, not this one")
        if command.issued_at > now + CLOCK_SKEW_S:
            raise CommandRefused(
                f"command {command.id} is issued in the future ({command.issued_at:.0f} > {now:.0f})"
            )
        if command.expires_at < now:
            raise CommandRefused(f"command {command.id} expired at {command.expires_at:.0f} (now {now:.0f})")
        if command.expires_at - command.issued_at > self.max_lifetime_s:
            raise CommandRefused(f"command {command.id} is valid longer than {self.max_lifetime_s:.0f} s")
        self._forget_expired(now)
        if command.nonce in self._seen:
            raise CommandRefused(f"command {command.id}: nonce {command.nonce} was used before (a replay)")
        self._seen[command.nonce] = command.expires_at
        self._save_seen()
        return command

    def verify_campaigns(self, payload: bytes) -> CampaignSet:
        """The campaign set, if signed by a command signer, for this car and not issued in the future;
        ``CommandRefused`` saying why otherwise (whether it is newer is the holder's check)."""
        try:
            raw = json.loads(payload)
            envelope = decode(SignedCampaignSet, payload, "campaign set")
        except (ValueError, LinkError) as exc:
            raise CommandRefused(f"not a signed campaign set: {exc}") from None
        content = envelope.content
        where = f"campaign set revision {content.revision}"
        self._check_signature(envelope.signer, envelope.signature, raw["content"], where)
        if content.vin != self.vin:
            raise CommandRefused(f"{where} is for vehicle {content.vin}, not this one")
        if content.issued_at > self.clock.time() + CLOCK_SKEW_S:
            raise CommandRefused(f"{where} is issued in the future ({content.issued_at:.0f})")
        return content

    def _check_signature(self, pem: str, signature: str, signed: object, where: str) -> None:
        signer = self._signer(pem)
        try:
            signer.key.verify(base64.b64decode(signature, validate=True), canonical_command(signed))
        except (InvalidSignature, binascii.Error, ValueError):
            raise CommandRefused(f"{where}: the signature does not verify") from None

    def _signer(self, pem: str) -> _Signer:
        signer = self._signers.get(pem)
        if signer is None:
            signer = self._trusted(pem)
            self._signers[pem] = signer
        now = self.clock.time()
        cert = signer.certificate
        if not cert.not_valid_before_utc.timestamp() <= now <= cert.not_valid_after_utc.timestamp():
            raise CommandRefused(f"the signer's certificate (serial {cert.serial_number:x}) is not valid now")
        return signer

    def _trusted(self, pem: str) -> _Signer:
        try:
            cert = x509.load_pem_x509_certificate(pem.encode())
            cert.verify_directly_issued_by(self.ca)
            usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            raise CommandRefused("the signer's certificate is not one the fleet CA issued") from None
        key = cert.public_key()
        if COMMAND_SIGNING not in usage or not isinstance(key, ed25519.Ed25519PublicKey):
            raise CommandRefused(f"certificate {cert.subject.rfc4514_string()} may not sign commands")
        return _Signer(key, cert)

    # ------------------------------------------------------------------------------ replays

    def _load_seen(self) -> dict[str, float]:
        if self.seen_file is None or not self.seen_file.exists():
            return {}
        try:
            return {str(k): float(v) for k, v in json.loads(self.seen_file.read_text()).items()}
        except (OSError, ValueError, AttributeError) as exc:
            # refusing every command until someone repairs the file is safer than forgetting nonces
            raise LinkError(
                f"{self.seen_file}: unreadable nonce record ({exc}); move it aside to reset"
            ) from None

    def _forget_expired(self, now: float) -> None:
        for nonce in [n for n, expires in self._seen.items() if expires < now - CLOCK_SKEW_S]:
            del self._seen[nonce]

    def _save_seen(self) -> None:
        if self.seen_file is not None:
            write_atomically(self.seen_file, json.dumps(self._seen).encode())
