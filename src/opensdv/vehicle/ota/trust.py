"""The rules of TUF's client workflow for one repository, with time as a parameter.

``TrustedRepository`` takes bytes and either accepts them (becoming the new trusted state) or
raises; fetching and storing are the caller's business. It follows the TUF specification's
client workflow (5.3), which Uptane's full verification runs once per repository, but checks
expiry against the ``reference_time`` it is given — the vehicle's trusted time, never the wall
clock. Signatures are checked over canonical bytes from the fast encoder (see
``opensdv.link.canonical``) and targets entries stay as plain dicts until someone asks for them,
which is where this beats running ``ngclient`` as is.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from securesystemslib.exceptions import UnverifiedSignatureError
from securesystemslib.signer import Signature
from tuf.api.metadata import DelegatedRole, Delegations, Role, Root, Snapshot, Targets, Timestamp

from opensdv.link.canonical import canonical_bytes, loads_strict
from opensdv.vehicle.ota.errors import (
    ExpiredMetadataError,
    MetadataError,
    RollbackError,
    SignatureError,
    VersionMismatchError,
)

__all__ = ["RoleMetadata", "Target", "TrustedRepository", "parse_metadata"]


@dataclass(frozen=True)
class Target:
    """One targets entry: name, length, hashes and its ``custom`` object."""

    path: str
    length: int
    hashes: dict[str, str]
    custom: dict[str, Any]

    def verify(self, data: bytes) -> bool:
        """Right length and every hash this client can compute matches (at least one must be)."""
        return len(data) == self.length and _hashes_match(self.hashes, data)


def _hashes_match(hashes: dict[str, str], data: bytes) -> bool:
    known = {a: d for a, d in hashes.items() if a in hashlib.algorithms_available}
    return bool(known) and all(hashlib.new(a, data).hexdigest() == d for a, d in known.items())


@dataclass(frozen=True)
class RoleMetadata:
    """One verified metadata file: its ``signed`` part as parsed JSON plus the raw bytes to persist."""

    type: str
    signed: dict[str, Any]
    raw: bytes

    @property
    def version(self) -> int:
        return int(self.signed["version"])

    def expires(self) -> datetime:
        return datetime.fromisoformat(self.signed["expires"].replace("Z", "+00:00"))

    def targets(self) -> dict[str, Target]:
        return {path: _target(path, entry) for path, entry in self.signed.get("targets", {}).items()}

    def target(self, path: str) -> Target | None:
        entry = self.signed.get("targets", {}).get(path)
        return None if entry is None else _target(path, entry)

    def delegations(self) -> list[DelegatedRole]:
        roles = (self.signed.get("delegations") or {}).get("roles", [])
        return [DelegatedRole.from_dict(copy.deepcopy(r)) for r in roles]

    @property
    def custom(self) -> dict[str, Any]:
        return dict(self.signed.get("custom", {}))


def _target(path: str, entry: dict[str, Any]) -> Target:
    try:
        return Target(path, int(entry["length"]), dict(entry["hashes"]), dict(entry.get("custom", {})))
    except (KeyError, TypeError, ValueError) as exc:
        raise MetadataError(f"targets entry {path!r}: {exc}") from None


def parse_metadata(data: bytes, expected_type: str, what: str) -> tuple[dict[str, Any], dict[str, Signature]]:
    """Split a metadata file into its ``signed`` dict and signatures by key id, or say what is wrong."""
    try:
        document = loads_strict(data)
        signed = document["signed"]
        signatures = {s["keyid"]: Signature.from_dict(copy.deepcopy(s)) for s in document["signatures"]}
        kind, version, _expires = signed["_type"], signed["version"], signed["expires"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MetadataError(f"{what}: not TUF metadata ({exc})") from None
    if kind != expected_type:
        raise MetadataError(f"{what}: expected {expected_type} metadata, got {kind!r}")
    if not isinstance(version, int) or version < 1:
        raise MetadataError(f"{what}: version {version!r} is not a positive integer")
    return signed, signatures


class TrustedRepository:
    """The trusted metadata of one repository (``name`` is for messages: "director", "image")."""

    def __init__(self, name: str, root_data: bytes) -> None:
        self.name = name
        signed, signatures = parse_metadata(root_data, Root.type, f"{name} root")
        root = self._root_object(signed)
        self._verify(root, Root.type, signed, signatures)
        self.root = root
        self._roles: dict[str, RoleMetadata] = {Root.type: RoleMetadata(Root.type, signed, root_data)}

    # -- helpers --------------------------------------------------------------------------------
    def _root_object(self, signed: dict[str, Any]) -> Root:
        try:
            return Root.from_dict(copy.deepcopy(signed))
        except (ValueError, KeyError, TypeError) as exc:
            raise MetadataError(f"{self.name} root: {exc}") from None

    def _verify(
        self,
        delegator: Root | Delegations,
        role: str,
        signed: dict[str, Any],
        signatures: dict[str, Signature],
    ) -> None:
        """At least ``threshold`` distinct keys of ``role`` signed the canonical bytes of ``signed``."""
        if isinstance(delegator, Root):
            info: Role | None = delegator.roles.get(role)
        else:
            info = (delegator.roles or {}).get(role)
        if info is None:
            raise SignatureError(f"{self.name} {role}: the delegating role names no such role")
        payload = canonical_bytes(signed)
        valid = 0
        for keyid in set(info.keyids):
            key, signature = delegator.keys.get(keyid), signatures.get(keyid)
            if key is None or signature is None:
                continue
            try:
                key.verify_signature(signature, payload)
            except UnverifiedSignatureError:
                continue
            valid += 1
        if valid < info.threshold:
            raise SignatureError(f"{self.name} {role}: {valid} valid signatures, {info.threshold} needed")

    def _check_expiry(self, role: str, reference_time: datetime) -> None:
        expires = self._roles[role].expires()
        if expires <= reference_time:
            raise ExpiredMetadataError(
                f"{self.name} {role} expired at {expires.isoformat()} (trusted time {reference_time.isoformat()})"
            )

    def verify_signed(self, role: str, signed: dict[str, Any], signatures: dict[str, Signature]) -> None:
        """Check a top-level role's signatures against the trusted root (no other rule)."""
        self._verify(self.root, role, signed, signatures)

    def get(self, role: str) -> RoleMetadata | None:
        return self._roles.get(role)

    def role(self, role: str) -> RoleMetadata:
        found = self._roles.get(role)
        if found is None:
            raise MetadataError(f"{self.name}: no trusted {role} metadata yet")
        return found

    @property
    def root_metadata(self) -> RoleMetadata:
        return self._roles[Root.type]

    def raw(self, role: str) -> bytes:
        return self._roles[role].raw

    # -- the workflow ---------------------------------------------------------------------------
    def update_root(self, data: bytes) -> None:
        """Accept root version N+1 if signed by a threshold of both the old and the new root keys."""
        if Timestamp.type in self._roles:
            raise MetadataError(f"{self.name}: root must be updated before timestamp")
        signed, signatures = parse_metadata(data, Root.type, f"{self.name} root")
        new_root = self._root_object(signed)
        if new_root.version != self.root.version + 1:
            raise RollbackError(
                f"{self.name} root: expected version {self.root.version + 1}, got {new_root.version}"
            )
        self._verify(self.root, Root.type, signed, signatures)
        self._verify(new_root, Root.type, signed, signatures)
        self.root = new_root
        self._roles[Root.type] = RoleMetadata(Root.type, signed, data)

    def rotated_since(self, old_root: RoleMetadata, role: str) -> bool:
        old = Root.from_dict(copy.deepcopy(old_root.signed)).roles[role]
        new = self.root.roles[role]
        return set(old.keyids) != set(new.keyids) or old.threshold != new.threshold

    def check_root_fresh(self, reference_time: datetime) -> None:
        self._check_expiry(Root.type, reference_time)

    def update_timestamp(self, data: bytes, reference_time: datetime, trusted: RoleMetadata | None) -> bool:
        """Accept a timestamp; False if it is the same version as ``trusted`` (nothing new)."""
        signed, signatures = parse_metadata(data, Timestamp.type, f"{self.name} timestamp")
        self._verify(self.root, Timestamp.type, signed, signatures)
        new = RoleMetadata(Timestamp.type, signed, data)
        if trusted is not None:
            if new.version < trusted.version:
                raise RollbackError(
                    f"{self.name} timestamp: version {new.version} < trusted {trusted.version}"
                )
            old_snap = trusted.signed["meta"]["snapshot.json"]["version"]
            if new.signed["meta"]["snapshot.json"]["version"] < old_snap:
                raise RollbackError(f"{self.name} timestamp: snapshot version below trusted {old_snap}")
        self._roles[Timestamp.type] = new
        self._check_expiry(Timestamp.type, reference_time)
        return trusted is None or new.version != trusted.version

    def snapshot_version(self) -> int:
        return int(self._roles[Timestamp.type].signed["meta"]["snapshot.json"]["version"])

    def update_snapshot(self, data: bytes, reference_time: datetime, trusted: RoleMetadata | None) -> None:
        meta = self._roles[Timestamp.type].signed["meta"]["snapshot.json"]
        _check_file(meta, data, f"{self.name} snapshot")
        signed, signatures = parse_metadata(data, Snapshot.type, f"{self.name} snapshot")
        self._verify(self.root, Snapshot.type, signed, signatures)
        new = RoleMetadata(Snapshot.type, signed, data)
        if new.version != meta["version"]:
            raise VersionMismatchError(
                f"{self.name} snapshot: version {new.version}, timestamp names {meta['version']}"
            )
        if trusted is not None:
            for filename, old in trusted.signed["meta"].items():
                current = signed["meta"].get(filename)
                if current is None:
                    raise RollbackError(f"{self.name} snapshot: {filename} disappeared")
                if current["version"] < old["version"]:
                    raise RollbackError(
                        f"{self.name} snapshot: {filename} version {current['version']} < trusted {old['version']}"
                    )
        self._roles[Snapshot.type] = new
        self._check_expiry(Snapshot.type, reference_time)

    def targets_version(self, role: str) -> int:
        meta = self._roles[Snapshot.type].signed["meta"].get(f"{role}.json")
        if meta is None:
            raise MetadataError(f"{self.name} snapshot: no entry for {role}.json")
        return int(meta["version"])

    def update_targets(
        self, data: bytes, reference_time: datetime, role: str = Targets.type, delegator: str = Root.type
    ) -> RoleMetadata:
        meta = self._roles[Snapshot.type].signed["meta"].get(f"{role}.json")
        if meta is None:
            raise MetadataError(f"{self.name} snapshot: no entry for {role}.json")
        _check_file(meta, data, f"{self.name} {role}")
        signed, signatures = parse_metadata(data, Targets.type, f"{self.name} {role}")
        if delegator == Root.type:
            self._verify(self.root, role, signed, signatures)
        else:
            delegations = self._roles[delegator].signed.get("delegations")
            try:
                parsed = Delegations.from_dict(copy.deepcopy(delegations or {}))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise MetadataError(f"{self.name} {delegator}: bad delegations ({exc})") from None
            self._verify(parsed, role, signed, signatures)
        new = RoleMetadata(Targets.type, signed, data)
        if new.version != meta["version"]:
            raise VersionMismatchError(
                f"{self.name} {role}: version {new.version}, snapshot names {meta['version']}"
            )
        self._roles[role] = new
        self._check_expiry(role, reference_time)
        return new


def _check_file(meta: dict[str, Any], data: bytes, what: str) -> None:
    """Length and hashes from the parent role, when it gives them (stops endless or swapped files)."""
    length = meta.get("length")
    if length is not None and len(data) != length:
        raise VersionMismatchError(f"{what}: {len(data)} bytes, the parent role says {length}")
    hashes = meta.get("hashes")
    if hashes and not _hashes_match(dict(hashes), data):
        raise VersionMismatchError(f"{what}: hashes differ from the parent role's")
