"""One signed TUF repository on disk: the four top-level roles, delegations, versions and expiry.

Both Uptane repositories are TUF repositories: the image repository is an ordinary one, the
director one per vehicle (sharing a root). This class owns what they have in common — signing,
bumping versions in the order snapshot and timestamp must follow, writing consistent-snapshot
filenames (``N.root.json``, ``timestamp.json``, ``N.snapshot.json``, ``N.targets.json``,
``N.<delegated role>.json``), and rotating keys — and nothing about images or vehicles.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import Signer
from tuf.api.exceptions import RepositoryError as TufRepositoryError
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    Targets,
    Timestamp,
)

from opensdv.cloud.ota.errors import OtaRepositoryError
from opensdv.cloud.ota.keys import KeyStore
from opensdv.durable import WriteBatch, write_atomically
from opensdv.link.canonical import canonical_bytes

__all__ = ["DEFAULT_EXPIRY", "OtaRepositoryError", "RoleKeys", "SignedRepository", "sign_metadata"]

TOP_LEVEL = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
DEFAULT_EXPIRY = {
    Root.type: timedelta(days=365),
    Targets.type: timedelta(days=90),
    Snapshot.type: timedelta(days=7),
    Timestamp.type: timedelta(days=1),
}


@dataclass(frozen=True)
class RoleKeys:
    """Which keys (KeyStore names) sign a role, and how many signatures it needs."""

    names: tuple[str, ...]
    threshold: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.threshold <= len(self.names):
            raise OtaRepositoryError(f"threshold {self.threshold} needs 1..{len(self.names)} keys")


def sign_metadata(metadata: Metadata[Any], signers: list[Signer]) -> bytes:
    """Sign over the canonical bytes (fast encoder) and return the file contents."""
    data = canonical_bytes(metadata.signed.to_dict())
    metadata.signatures.clear()
    for signer in signers:
        signature = signer.sign(data)
        metadata.signatures[signature.keyid] = signature
    return json.dumps(metadata.to_dict(), separators=(",", ":"), sort_keys=True).encode()


class SignedRepository:
    """A TUF repository's metadata under ``directory``; the root may live in a shared ``root_dir``."""

    def __init__(
        self,
        name: str,
        directory: Path,
        keys: KeyStore,
        clock: Callable[[], datetime],
        root_dir: Path | None = None,
        expiry: dict[str, timedelta] | None = None,
    ) -> None:
        self.name = name
        self.directory = directory
        self.root_dir = root_dir or directory
        self.keys = keys
        self.clock = clock
        self.expiry = {**DEFAULT_EXPIRY, **(expiry or {})}
        self._cache: dict[str, Metadata[Any]] = {}
        self._seen: tuple[int, int] | None = None  # timestamp.json (mtime, size) the cache belongs to

    def _fresh(self) -> None:
        """Forget what was read when another process (``opensdv ota add-image`` beside a running
        service) has published since: every publication writes a new timestamp.json."""
        try:
            stat = (self.directory / "timestamp.json").stat()
        except FileNotFoundError:
            return
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen != self._seen:
            self._cache.clear()
            self._seen = seen

    # -- reading -------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.directory / "timestamp.json").exists()

    def _read(self, path: Path) -> Metadata[Any]:
        try:
            return Metadata.from_bytes(path.read_bytes())
        except FileNotFoundError:
            raise OtaRepositoryError(
                f"{self.name}: {path} is missing (initialise the repository first)"
            ) from None
        except (ValueError, TufRepositoryError) as exc:
            raise OtaRepositoryError(f"{self.name}: {path} is not valid metadata ({exc})") from None

    def root(self) -> Metadata[Root]:
        if "root" not in self._cache:
            self._cache["root"] = self._read(self.root_dir / "root.json")
        return self._cache["root"]

    def timestamp(self) -> Metadata[Timestamp]:
        self._fresh()
        if "timestamp" not in self._cache:
            self._cache["timestamp"] = self._read(self.directory / "timestamp.json")
        return self._cache["timestamp"]

    def snapshot(self) -> Metadata[Snapshot]:
        self._fresh()
        if "snapshot" not in self._cache:
            version = self.timestamp().signed.snapshot_meta.version
            self._cache["snapshot"] = self._read(self.directory / f"{version}.snapshot.json")
        return self._cache["snapshot"]

    def targets(self, role: str = Targets.type) -> Metadata[Targets]:
        self._fresh()
        if role not in self._cache:
            meta = self.snapshot().signed.meta.get(f"{role}.json")
            if meta is None:
                raise OtaRepositoryError(f"{self.name}: no targets role {role!r}")
            self._cache[role] = self._read(self.directory / f"{meta.version}.{role}.json")
        return self._cache[role]

    def file(self, filename: str) -> Path:
        """The metadata file a client asks for by name (root versions come from the shared root)."""
        if not filename.endswith(".json") or "/" in filename or filename.startswith("."):
            raise OtaRepositoryError(f"{self.name}: {filename!r} is not a metadata filename")
        base = self.root_dir if filename.endswith("root.json") else self.directory
        return base / filename

    # -- signing ---------------------------------------------------------------------------------
    def _signers(self, role: str, root: Metadata[Root] | None = None) -> list[Signer]:
        """The signers this key store holds for ``role`` (a top-level or a delegated one)."""
        signed = (root or self.root()).signed
        if role in TOP_LEVEL:
            keyids = signed.roles[role].keyids
        else:
            delegations = self.targets().signed.delegations
            if delegations is None or delegations.roles is None or role not in delegations.roles:
                raise OtaRepositoryError(f"{self.name}: no delegated role {role!r}")
            keyids = delegations.roles[role].keyids
        signers = [self.keys.signer_for(k) for k in keyids]
        return [s for s in signers if s is not None]

    def _expires(self, role: str) -> datetime:
        return self.clock() + self.expiry.get(role, self.expiry[Targets.type])

    def _write(
        self, role: str, metadata: Metadata[Any], base: Path, versioned: bool, latest: bool,
        batch: WriteBatch | None = None,
    ) -> bytes:
        signers = self._signers(role, metadata if role == Root.type else None)
        data = sign_metadata(metadata, signers)
        write = write_atomically if batch is None else batch.write
        if versioned:
            write(base / f"{metadata.signed.version}.{role}.json", data)
        if latest:
            write(base / f"{role}.json", data)
        self._cache[role] = metadata
        return data

    def create_root(self, roles: dict[str, RoleKeys], consistent_snapshot: bool = True) -> None:
        """Sign version 1 of the root, naming the keys and thresholds of every top-level role."""
        if (self.root_dir / "root.json").exists():
            raise OtaRepositoryError(f"{self.name}: {self.root_dir} already has a root")
        missing = [r for r in TOP_LEVEL if r not in roles]
        if missing:
            raise OtaRepositoryError(f"{self.name}: keys for roles {missing} are needed")
        root = Root(expires=self._expires(Root.type), consistent_snapshot=consistent_snapshot)
        for role, keys in roles.items():
            for name in keys.names:
                root.add_key(self.keys.signer(name).public_key, role)
            root.roles[role].threshold = keys.threshold
        self._write(Root.type, Metadata(root), self.root_dir, versioned=True, latest=True)

    def initialise(self, roles: dict[str, RoleKeys] | None = None) -> None:
        """Create the root (when ``roles`` are given) and version 1 of targets, snapshot, timestamp."""
        if self.exists():
            raise OtaRepositoryError(f"{self.name}: {self.directory} already holds a repository")
        if roles is not None:
            self.create_root(roles)
        self.publish({Targets.type: Targets(expires=self._expires(Targets.type))})

    def publish(self, changed: dict[str, Targets], batch: WriteBatch | None = None) -> None:
        """Sign new versions of ``changed`` targets roles, then a new snapshot and timestamp.
        ``batch``: write into that group commit (visible when it commits) instead of file by file."""
        snapshot = (
            self.snapshot().signed
            if self.exists()
            else Snapshot(expires=self._expires(Snapshot.type), meta={})
        )
        for role, targets in changed.items():
            previous = snapshot.meta.get(f"{role}.json")
            targets.version = previous.version + 1 if previous else 1
            targets.expires = self._expires(role)
            self._write(role, Metadata(targets), self.directory, versioned=True, latest=False, batch=batch)
            snapshot.meta[f"{role}.json"] = MetaFile(version=targets.version)
        self._publish_snapshot(snapshot, bump=self.exists(), batch=batch)

    def _publish_snapshot(self, snapshot: Snapshot, bump: bool = True, batch: WriteBatch | None = None) -> None:
        if bump:
            snapshot.version += 1
        snapshot.expires = self._expires(Snapshot.type)
        data = self._write(
            Snapshot.type, Metadata(snapshot), self.directory, versioned=True, latest=False, batch=batch
        )
        previous = self.timestamp().signed.version if self.exists() else 0
        timestamp = Timestamp(
            version=previous + 1,
            expires=self._expires(Timestamp.type),
            snapshot_meta=MetaFile.from_data(snapshot.version, data, ["sha256"]),
        )
        self._write(Timestamp.type, Metadata(timestamp), self.directory, versioned=False, latest=True, batch=batch)

    def refresh_timestamp(self) -> None:
        """A new timestamp version with a fresh expiry: what keeps clients safe from a freeze attack."""
        timestamp = self.timestamp().signed
        timestamp.version += 1
        timestamp.expires = self._expires(Timestamp.type)
        self._write(Timestamp.type, Metadata(timestamp), self.directory, versioned=False, latest=True)

    def rotate(self, role: str, keys: RoleKeys) -> None:
        """Replace ``role``'s keys with a new root version signed by the old and the new root keys.

        Rotating an online role (timestamp, snapshot, targets) after a key compromise is the
        recovery Uptane prescribes; the role is re-signed with its new keys right away.
        """
        root_md = self.root()
        old_root_signers = self._signers(Root.type)
        root = root_md.signed
        for keyid in list(root.roles[role].keyids):
            root.revoke_key(keyid, role)
        for name in keys.names:
            root.add_key(self.keys.signer(name).public_key, role)
        root.roles[role].threshold = keys.threshold
        root.version += 1
        root.expires = self._expires(Root.type)
        new = Metadata(root)
        signers = {s.public_key.keyid: s for s in [*old_root_signers, *self._signers(Root.type, new)]}
        contents = sign_metadata(new, list(signers.values()))
        write_atomically(self.root_dir / f"{root.version}.root.json", contents)
        write_atomically(self.root_dir / "root.json", contents)
        self._cache["root"] = new
        if self.exists():
            self.resign(role)

    def resign(self, role: str) -> None:
        """New versions signed by the role's current keys (after a rotation in the root)."""
        self._cache.pop(Root.type, None)
        if role == Targets.type:
            self.publish({Targets.type: self.targets().signed})
        elif role in (Snapshot.type, Timestamp.type):
            self._publish_snapshot(self.snapshot().signed)

    def renew(self, before: timedelta) -> list[str]:
        """Re-sign every online role that expires within ``before`` (targets roles, snapshot,
        timestamp), so clients never see expired metadata; returns the roles re-signed. The root
        is signed offline and is not renewed here."""
        self.forget_cache()  # another process may have published since
        if not self.exists():
            return []
        due = self.clock() + before
        snapshot = self.snapshot().signed
        expiring = {}
        for name in snapshot.meta:
            role = name.removesuffix(".json")
            targets = self.targets(role).signed
            if targets.expires <= due:
                expiring[role] = targets
        if expiring:
            self.publish(expiring)  # new targets versions, snapshot and timestamp
            return [*sorted(expiring), Snapshot.type, Timestamp.type]
        if snapshot.expires <= due:
            self._publish_snapshot(snapshot)
            return [Snapshot.type, Timestamp.type]
        if self.timestamp().signed.expires <= due:
            self.refresh_timestamp()
            return [Timestamp.type]
        return []

    def forget_cache(self) -> None:
        self._cache.clear()
