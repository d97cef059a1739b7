"""RFC 9068 JWT access tokens, as the KUKSA databroker reads them: signature (RS256 or ES256),
``aud``, ``exp`` checked against an injectable clock, and the ``scope`` claim turned into
``Permissions``. Also key generation and token minting for tests and tooling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from opensdv.vehicle.broker._errors import InvalidArgument, Unauthenticated
from opensdv.vehicle.broker._permissions import Permissions

__all__ = ["DEFAULT_AUDIENCE", "TokenVerifier", "generate_key_pair", "mint_token"]

DEFAULT_AUDIENCE = "kuksa.val"
ALGORITHMS = ("RS256", "ES256")
_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class _Verified:
    permissions: Permissions
    expires: float


def _algorithm_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return "ES256"
    raise InvalidArgument(
        f"unsupported key type {type(key).__name__} (use RSA for RS256 or EC P-256 for ES256)"
    )


class TokenVerifier:
    """Turns an ``authorization`` header into ``Permissions`` or raises ``Unauthenticated``."""

    def __init__(
        self,
        public_keys_pem: Sequence[bytes],
        audience: str | None = DEFAULT_AUDIENCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not public_keys_pem:
            raise InvalidArgument("token verification needs at least one public key")
        self._keys: list[tuple[Any, str]] = []
        for pem in public_keys_pem:
            try:
                key = serialization.load_pem_public_key(pem)
            except ValueError as exc:
                raise InvalidArgument(f"cannot load public key: {exc}") from None
            self._keys.append((key, _algorithm_for(key)))
        self._audience = audience
        self._clock = clock
        self._cache: dict[str, _Verified] = {}

    def permissions(self, authorization: str | None) -> Permissions:
        if not authorization:
            raise Unauthenticated("no bearer token: send 'authorization: Bearer <JWT>'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the authorization header must be 'Bearer <JWT>'")
        token = token.strip()
        verified = self._cache.get(token)
        if verified is None:
            verified = self._verify(token)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[token] = verified
        if self._clock() >= verified.expires:
            raise Unauthenticated("the token has expired")
        return verified.permissions

    def _verify(self, token: str) -> _Verified:
        try:
            algorithm = str(jwt.get_unverified_header(token).get("alg"))
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        keys = [key for key, key_algorithm in self._keys if key_algorithm == algorithm]
        if not keys:
            raise Unauthenticated(f"invalid token: algorithm {algorithm!r} does not match any configured key")
        claims: dict[str, Any] | None = None
        for key in keys:
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[algorithm],
                    audience=self._audience,
                    options={
                        "verify_exp": False,  # checked against the injected clock below
                        "verify_iat": False,
                        "verify_nbf": False,
                        "verify_aud": self._audience is not None,
                        "require": ["exp"],
                    },
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.InvalidAudienceError:
                raise Unauthenticated(
                    f"the token is not meant for this broker (aud must include {self._audience!r})"
                ) from None
            except jwt.PyJWTError as exc:
                raise Unauthenticated(f"invalid token: {exc}") from None
        if claims is None:
            raise Unauthenticated("invalid token: the signature does not verify with any configured key")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise Unauthenticated("the token's scope claim must be a space-separated string")
        try:
            permissions = Permissions.from_scope(scope, subject=str(claims.get("sub", "")))
        except InvalidArgument as exc:
            raise Unauthenticated(f"invalid token scope: {exc}") from None
        expires = claims["exp"]
        if not isinstance(expires, int | float):
            raise Unauthenticated("the token's exp claim must be a number")
        return _Verified(permissions, float(expires))


def generate_key_pair(algorithm: str = "RS256") -> tuple[bytes, bytes]:
    """A new private/public key pair in PEM for ``RS256`` (RSA 2048) or ``ES256`` (P-256)."""
    if algorithm == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif algorithm == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    else:
        raise InvalidArgument(f"unsupported algorithm {algorithm!r} (use {' or '.join(ALGORITHMS)})")
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def mint_token(
    private_key_pem: bytes,
    scope: str,
    *,
    audience: str = DEFAULT_AUDIENCE,
    subject: str = "opensdv",
    issuer: str = "opensdv",
    lifetime_s: float = 3600,
    now: float | None = None,
) -> str:
    """Sign an RFC 9068 access token; the algorithm follows the key (RSA -> RS256, P-256 -> ES256)."""
    Permissions.from_scope(scope)  # refuse to mint a scope the broker would reject
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"cannot load private key: {exc}") from None
    issued = time.time() if now is None else now
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": [audience],
        "client_id": subject,
        "iat": int(issued),
        "exp": int(issued + lifetime_s),
        "jti": str(uuid.uuid4()),
        "scope": scope,
    }
    return jwt.encode(claims, key, algorithm=_algorithm_for(key), headers={"typ": "at+jwt"})  # type: ignore[arg-type]
