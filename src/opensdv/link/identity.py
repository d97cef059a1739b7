"""Who is on the fleet link, and what each may do there.

Every car and every cloud service holds an X.509 certificate from the fleet CA; the broker takes
the certificate's common name as the client's identity (Mosquitto's ``use_identity_as_username``).
A car's identity is its VIN; a service's is ``opensdv-<role>``. The rules below are the one source
of the broker's access control: the embedded broker enforces them as they are, and
``opensdv fleet mosquitto-config`` writes them as Mosquitto's pattern ACL.

A car may publish only its own VIN's ``telemetry``, ``status``, ``events`` and ``command-results``
and subscribe only to its own ``commands`` and ``telemetry-acks``. A service gets what its role
needs and nothing else (the ingest cannot command a car; the API cannot read telemetry off the wire).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from opensdv.link.connection import topic_matches
from opensdv.link.fleet import PREFIX, Kind, LinkError

__all__ = [
    "SERVICE_PREFIX",
    "SERVICE_RULES",
    "VEHICLE_RULES",
    "IdentityFiles",
    "Rule",
    "identity_of",
    "is_vehicle",
    "may_publish",
    "may_subscribe",
    "role_of",
    "rules_for",
]

SERVICE_PREFIX = "opensdv-"
VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
Access = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class Rule:
    access: Access
    kind: Kind

    def pattern(self, vin: str = "+") -> str:
        return f"{PREFIX}/{vin}/{self.kind}"


VEHICLE_RULES = (
    Rule("write", "telemetry"),
    Rule("write", "status"),
    Rule("write", "events"),
    Rule("write", "command-results"),
    Rule("write", "campaign-states"),
    Rule("read", "commands"),
    Rule("read", "telemetry-acks"),
    Rule("read", "campaigns"),
)
SERVICE_RULES: dict[str, tuple[Rule, ...]] = {
    "ingest": (
        Rule("read", "telemetry"),
        Rule("read", "status"),
        Rule("read", "events"),
        Rule("read", "command-results"),
        Rule("read", "campaign-states"),
        Rule("write", "telemetry-acks"),
    ),
    # sends the commands operators give and each car's campaign set (each signed)
    "api": (Rule("write", "commands"), Rule("write", "campaigns")),
    "ota": (),  # HTTP only: an identity for its TLS listener, no rights on the link
    "energy": (),  # OCPP only: likewise
}


def is_vehicle(identity: str) -> bool:
    """Whether an identity is a car's (a VIN)."""
    return VIN.fullmatch(identity) is not None


def role_of(identity: str) -> str | None:
    """``vehicle``, a service role, or ``None`` for an identity the link does not know."""
    if is_vehicle(identity):
        return "vehicle"
    role = identity.removeprefix(SERVICE_PREFIX)
    return role if identity.startswith(SERVICE_PREFIX) and role in SERVICE_RULES else None


def rules_for(identity: str) -> list[tuple[Access, str]]:
    """(access, topic pattern) the identity is granted; none for an unknown one."""
    if is_vehicle(identity):
        return [(rule.access, rule.pattern(identity)) for rule in VEHICLE_RULES]
    role = role_of(identity)
    return [] if role is None else [(rule.access, rule.pattern()) for rule in SERVICE_RULES[role]]


def may_publish(identity: str, topic: str) -> bool:
    """Whether the identity may publish to ``topic`` (a topic name: wildcards are never publishable)."""
    if "+" in topic or "#" in topic:
        return False
    return any(access == "write" and topic_matches(p, topic) for access, p in rules_for(identity))


def may_subscribe(identity: str, pattern: str) -> bool:
    """Whether every topic ``pattern`` can match is one the identity may read (``$share/g/`` is
    the same pattern to the ACL)."""
    if pattern.startswith("$share/"):
        parts = pattern.split("/", 2)
        if len(parts) < 3:
            return False
        pattern = parts[2]
    wanted = pattern.split("/")
    for access, allowed in rules_for(identity):
        granted = allowed.split("/")
        if (
            access == "read"
            and len(granted) == len(wanted)
            and "#" not in wanted
            and all(g == "+" or g == w for g, w in zip(granted, wanted, strict=True))
        ):
            return True
    return False


def identity_of(peer_certificate: dict[str, object] | None) -> str | None:
    """The common name of a verified peer certificate (``ssl.SSLSocket.getpeercert()``)."""
    if not peer_certificate:
        return None
    for rdn in peer_certificate.get("subject", ()):  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


@dataclass(frozen=True)
class IdentityFiles:
    """One party's credentials on the link: its certificate and key, and the fleet CA it trusts."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    @classmethod
    def under(cls, directory: Path, name: str) -> IdentityFiles:
        """The layout ``opensdv fleet provision`` writes: ``ca.pem``, ``<name>.pem``, ``<name>.key``."""
        return cls(directory / "ca.pem", directory / f"{name}.pem", directory / f"{name}.key")

    def missing(self) -> list[Path]:
        return [path for path in (self.ca_file, self.cert_file, self.key_file) if not path.is_file()]

    def _checked(self) -> None:
        if missing := self.missing():
            raise LinkError(
                f"link identity incomplete: {', '.join(map(str, missing))} missing "
                "(opensdv fleet provision writes them)"
            )

    def client_context(self) -> ssl.SSLContext:
        """TLS 1.2+ that trusts only the fleet CA and presents this identity."""
        return self._context(ssl.Purpose.SERVER_AUTH)

    def server_context(self, crl_file: Path | None = None) -> ssl.SSLContext:
        """A listener that requires a client certificate from the fleet CA (and, with a CRL, one
        that is not revoked)."""
        return self._context(ssl.Purpose.CLIENT_AUTH, crl_file)

    def _context(self, purpose: ssl.Purpose, crl_file: Path | None = None) -> ssl.SSLContext:
        if missing := self.missing():
            raise LinkError(
                f"link identity incomplete: {', '.join(map(str, missing))} missing "
                "(opensdv fleet provision writes them)"
            )
        try:
            context = ssl.create_default_context(purpose, cafile=str(self.ca_file))
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            if purpose is ssl.Purpose.CLIENT_AUTH:
                context.verify_mode = ssl.CERT_REQUIRED
            if crl_file is not None:
                context.load_verify_locations(cafile=str(crl_file))
                context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
            context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (ssl.SSLError, OSError) as exc:
            files = ", ".join(str(f) for f in (self.ca_file, self.cert_file, self.key_file, crl_file) if f)
            raise LinkError(
                f"link identity {files}: not a CA, certificate, key (and CRL) that belong together ({exc})"
            ) from None
        return context
