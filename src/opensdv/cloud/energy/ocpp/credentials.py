"""Who may connect as which charging station.

OCPP 2.0.1 defines three security profiles; the CSMS offers the two that authenticate a station:
profile 2, TLS with the station's own password in HTTP Basic auth (the station id as user name),
and profile 3, TLS with a client certificate whose common name is the station id (issued by the
fleet CA: ``opensdv fleet provision-station``). Each station has its own credentials, so a station
(or whoever took its password) cannot connect as another.

OCPP's ``BasicAuthPassword`` is 16 to 40 characters; the CSMS generates 40 random ones. A password
of that entropy cannot be guessed, so it is kept as a salted SHA-256 (fast enough to check in the
handshake without a worker thread), not with a slow password hash meant for what people choose.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from opensdv.cloud.energy.ocpp.csms_state import CsmsError
from opensdv.files import FileFormatError, parse_toml, read_text
from opensdv.link.identity import SERVICE_PREFIX, IdentityFiles, is_vehicle
from opensdv.storage.database import Database
from opensdv.storage.tables import StationCredentialRow

__all__ = ["MIN_PASSWORD", "StationCredentials", "StationCredentialsError", "StationLogin", "checked_station_id", "csms_tls", "load_station_passwords"]

MIN_PASSWORD, MAX_PASSWORD = 16, 40  # OCPP 2.0.1 BasicAuthPassword (passwordString)
STATION_ID = re.compile(r"[A-Za-z0-9*\-_=:+|@.]{1,48}")  # OCPP's identifierString, 48 at most
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"


class StationCredentialsError(CsmsError):
    """A station id or password that OCPP does not allow, or a station without credentials."""


@dataclass(frozen=True)
class StationLogin:
    station_id: str
    password: bool
    certificate: bool


def _hash(password: str, salt: bytes) -> str:
    digest = hashlib.sha256(salt + password.encode()).digest()
    return f"sha256${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _matches(stored: str, password: str) -> bool:
    _, salt, _ = stored.split("$")
    return hmac.compare_digest(stored, _hash(password, base64.b64decode(salt)))


def checked_station_id(station_id: str) -> str:
    """``station_id`` if OCPP allows it and no car's or service's fleet certificate could claim it."""
    if STATION_ID.fullmatch(station_id) is None:
        raise StationCredentialsError(
            f"station id {station_id!r}: 1 to 48 of A-Z a-z 0-9 * - _ = : + | @ . (OCPP identifierString)"
        )
    if is_vehicle(station_id) or station_id.startswith(SERVICE_PREFIX):
        raise StationCredentialsError(f"station id {station_id!r} looks like a car's or a service's identity")
    return station_id


class StationCredentials:
    """Each station's password hash and whether its certificate is accepted, in the platform database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def set_password(self, station_id: str, password: str | None = None) -> str:
        """Give the station a password (a generated one unless given); the password, shown once."""
        password = password or "".join(secrets.choice(_ALPHABET) for _ in range(MAX_PASSWORD))
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise StationCredentialsError(
                f"station {station_id}: the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters (OCPP)"
            )
        self._update(station_id, password_hash=_hash(password, secrets.token_bytes(16)))
        return password

    def allow_certificate(self, station_id: str, allowed: bool = True) -> None:
        """Accept (or no longer accept) a fleet-CA client certificate naming the station (profile 3)."""
        self._update(station_id, certificate=allowed)

    def _update(self, station_id: str, **values: object) -> None:
        with self._db.session() as session:
            row = session.get(StationCredentialRow, checked_station_id(station_id))
            if row is None:
                row = StationCredentialRow(station_id=station_id, password_hash=None, certificate=False)
                session.add(row)
            for key, value in values.items():
                setattr(row, key, value)

    def remove(self, station_id: str) -> None:
        with self._db.session() as session:
            row = session.get(StationCredentialRow, station_id)
            if row is None:
                raise StationCredentialsError(f"station {station_id}: no credentials")
            session.delete(row)

    def all(self) -> list[StationLogin]:
        with self._db.session() as session:
            rows = session.query(StationCredentialRow).order_by(StationCredentialRow.station_id).all()
            return [StationLogin(r.station_id, r.password_hash is not None, r.certificate) for r in rows]

    def accepts(self, station_id: str, password: str | None, certificate_name: str | None) -> bool:
        """Whether a connection that offered ``password`` (Basic auth) and presented a verified
        certificate named ``certificate_name`` may be ``station_id``."""
        with self._db.session() as session:
            row = session.get(StationCredentialRow, station_id)
            if row is None:
                return False
            if row.certificate and certificate_name == station_id:
                return True
            return row.password_hash is not None and password is not None and _matches(row.password_hash, password)


def csms_tls(identities_dir: Path) -> ssl.SSLContext:
    """The CSMS's TLS listener: its ``opensdv-energy`` identity from the fleet CA, which stations
    trust (profile 2), and client certificates of the fleet CA accepted, not required (profile 3)."""
    identity = IdentityFiles.under(identities_dir, "opensdv-energy")
    if missing := identity.missing():
        raise StationCredentialsError(
            f"energy: {missing[0]} is missing; provision the CSMS's identity first "
            f"(opensdv fleet provision-service energy --host <its host name> --out {identities_dir})"
        )
    crl = identities_dir / "crl.pem"
    context = identity.server_context(crl if crl.is_file() else None)
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


def load_station_passwords(path: Path) -> dict[str, str]:
    """``station id = "password"`` lines (TOML), as ``opensdv energy station add --out`` writes them."""
    try:
        table = parse_toml(read_text(path), path)
    except FileFormatError as exc:
        raise StationCredentialsError(str(exc)) from None
    for station_id, password in table.items():
        if not isinstance(password, str):
            raise StationCredentialsError(f"{path}: {station_id}: the password must be a string")
    if not table:
        raise StationCredentialsError(f"{path}: no stations")
    return {checked_station_id(station_id): password for station_id, password in table.items()}
