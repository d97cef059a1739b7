"""Who may use the fleet API: operators with a tenant (one brand, or ``*`` for the platform),
secrets stored only as scrypt hashes, and short-lived bearer tokens (HS256 JWT) once they log in.
A token is checked against the account on every call: removing an operator (or changing its
rights) takes effect at once, not when its tokens expire.

A tenant is the authorization: every query takes the caller's ``Operator`` and sees only its
brand's vehicles, so another brand's VIN is simply not found (404), never forbidden (which would
confirm it exists).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt
from sqlalchemy.exc import IntegrityError

from opensdv.cloud.fleet.errors import FleetError
from opensdv.storage.database import Database
from opensdv.storage.tables import OperatorRow

__all__ = ["PLATFORM", "AuthError", "Operator", "Operators"]

PLATFORM = "*"
AUTHORITY = "authority"  # market surveillance and notified bodies: the battery passport's every part, no car data else
TICKET_AUDIENCE = "opensdv-live"
TICKET_LIFETIME_S = 30
_N, _R, _P = 2**14, 8, 1


class AuthError(FleetError):
    """Unknown operator, wrong secret, or a bad or expired token."""


@dataclass(frozen=True)
class Operator:
    name: str
    tenant: str
    can_command: bool

    def sees(self, brand: str) -> bool:
        return self.tenant in (PLATFORM, brand)


def _hash(secret: str, salt: bytes) -> str:
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@functools.cache
def _unknown() -> str:
    """What an unknown name's secret is checked against (hashed once, not per attempt)."""
    return _hash("no such operator", b"0" * 16)


class Operators:
    """Operator accounts (hashed secrets, tenant, rights) and the bearer tokens they log in for."""
    def __init__(self, database: Database, token_key: bytes, token_lifetime_s: float = 3600) -> None:
        self._db = database
        self._key = token_key
        self.token_lifetime_s = token_lifetime_s
        self._redeemed: dict[str, float] = {}  # stream tickets used, until they expire

    def add(self, name: str, secret: str, tenant: str, can_command: bool = False) -> Operator:
        if len(secret) < 12:
            raise AuthError(f"operator {name}: the secret must have at least 12 characters")
        row = OperatorRow(
            name=name,
            tenant=tenant,
            secret_hash=_hash(secret, secrets.token_bytes(16)),
            can_command=can_command,
        )
        try:
            with self._db.session() as session:
                session.add(row)
        except IntegrityError:
            raise AuthError(f"operator {name} already exists") from None
        return Operator(name, tenant, can_command)

    @property
    def database(self) -> Database:
        return self._db

    def remove(self, name: str) -> None:
        """Delete the account; its tokens stop working at once (``verify`` looks the operator up)."""
        with self._db.session() as session:
            row = session.get(OperatorRow, name)
            if row is None:
                raise AuthError(f"no operator {name}")
            session.delete(row)

    def all(self) -> list[Operator]:
        with self._db.session() as session:
            rows = session.query(OperatorRow).order_by(OperatorRow.name).all()
            return [Operator(row.name, row.tenant, row.can_command) for row in rows]

    def authenticate(self, name: str, secret: str) -> Operator:
        with self._db.session() as session:
            row = session.get(OperatorRow, name)
            stored = row.secret_hash if row else _unknown()  # one scrypt either way: no enumeration by timing
            _, salt, _ = stored.split("$")
            valid = hmac.compare_digest(stored, _hash(secret, base64.b64decode(salt)))  # same work either way
            if row is None or not valid:
                raise AuthError("unknown operator or wrong secret")
            return Operator(row.name, row.tenant, row.can_command)

    def token(self, operator: Operator, now: float | None = None) -> str:
        issued = time.time() if now is None else now
        claims = {"sub": operator.name, "tenant": operator.tenant, "cmd": operator.can_command,
                  "iat": int(issued), "exp": int(issued + self.token_lifetime_s)}  # fmt: skip
        return jwt.encode(claims, self._key, algorithm="HS256")

    def verify(self, token: str) -> Operator:
        try:
            claims = jwt.decode(token, self._key, algorithms=["HS256"], options={"require": ["exp", "sub"]})
        except jwt.PyJWTError as exc:  # a stream ticket (it has an audience) is refused here too
            raise AuthError(f"bad token: {exc}") from None
        return self.current(str(claims["sub"]))

    def current(self, name: str) -> Operator:
        """The account as it is now: removed or changed rights count at once."""
        with self._db.session() as session:
            row = session.get(OperatorRow, name)
            if row is None:
                raise AuthError(f"bad token: operator {name} no longer exists")
            return Operator(row.name, row.tenant, row.can_command)

    def stream_ticket(self, operator: Operator, vin: str, now: float | None = None) -> str:
        """A ticket to open one live stream of ``vin``, valid ``TICKET_LIFETIME_S``: browsers'
        EventSource cannot send an Authorization header, so what goes into its URL (and from there
        into logs and history) is this, used once and soon useless, never the bearer token."""
        issued = time.time() if now is None else now
        claims = {"sub": operator.name, "aud": TICKET_AUDIENCE, "vin": vin, "jti": secrets.token_urlsafe(12),
                  "iat": int(issued), "exp": int(issued + TICKET_LIFETIME_S)}  # fmt: skip
        return jwt.encode(claims, self._key, algorithm="HS256")

    def redeem_ticket(self, ticket: str, vin: str, now: float | None = None) -> Operator:
        """The operator a stream ticket was issued to, once: a ticket for another VIN, expired or
        already used is refused."""
        at = time.time() if now is None else now
        try:
            claims = jwt.decode(
                ticket, self._key, algorithms=["HS256"], audience=TICKET_AUDIENCE,
                options={"require": ["exp", "sub", "aud", "jti", "vin"]},
            )  # fmt: skip
        except jwt.PyJWTError as exc:
            raise AuthError(f"bad stream ticket: {exc}") from None
        self._redeemed = {jti: exp for jti, exp in self._redeemed.items() if exp >= at}
        if claims["vin"] != vin or claims["jti"] in self._redeemed:
            raise AuthError("bad stream ticket: for another vehicle, or used already")
        self._redeemed[str(claims["jti"])] = float(claims["exp"])
        return self.current(str(claims["sub"]))
