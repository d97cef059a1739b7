"""Uptane full verification (Standard 2.1, 5.4.4.2): both repositories, then their cross-check.

The director says which image each ECU should run; the image repository, signed with offline keys,
says what that image is. A vehicle installs nothing that both do not agree on: same length and
hashes, a hardware id the image was built for, and a release counter no lower than the one the ECU
already runs. Trusted metadata is stored between runs so rollback checks survive restarts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tuf.api.metadata import Root, Snapshot, Targets, Timestamp

from opensdv.durable import write_atomically
from opensdv.vehicle.ota.errors import ImageMismatchError, MetadataError, RollbackError
from opensdv.vehicle.ota.transport import NotFoundError, Transport
from opensdv.vehicle.ota.trust import RoleMetadata, Target, TrustedRepository, parse_metadata

__all__ = ["MAX_LENGTH", "FullVerifier", "MetadataStore", "RepositoryClient", "VerifiedTarget"]

MAX_LENGTH = {
    Root.type: 512 * 1024,
    Timestamp.type: 16 * 1024,
    Snapshot.type: 4 << 20,
    Targets.type: 32 << 20,
}
MAX_ROOT_ROTATIONS = 64


@dataclass(frozen=True)
class VerifiedTarget:
    """An image both repositories agree an ECU should install."""

    ecu_serial: str
    hardware_id: str
    target: Target
    release_counter: int
    version: str
    campaign: str = ""


class MetadataStore:
    """The last trusted metadata of one repository, one file per role, written atomically."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def load(self, role: str) -> bytes | None:
        path = self.directory / f"{role}.json"
        return path.read_bytes() if path.exists() else None

    def save(self, role: str, data: bytes) -> None:
        # Not fsync'd (as ngclient): after a power cut the previous trusted file is still a valid
        # state to check against, and the newer one is fetched again.
        write_atomically(self.directory / f"{role}.json", data, sync=False)

    def delete(self, role: str) -> None:
        (self.directory / f"{role}.json").unlink(missing_ok=True)


class RepositoryClient:
    """Refreshes one repository (TUF client workflow 5.3) from ``prefix`` through a transport."""

    def __init__(self, name: str, prefix: str, store: MetadataStore, initial_root: bytes) -> None:
        self.name = name
        self.prefix = prefix
        self.store = store
        self.initial_root = initial_root
        self.trusted: TrustedRepository | None = None

    def refresh(self, transport: Transport, now: datetime) -> TrustedRepository:
        root_data = self.store.load(Root.type) or self.initial_root
        repo = TrustedRepository(self.name, root_data)
        trusted_root = repo.root_metadata
        for _ in range(MAX_ROOT_ROTATIONS):
            try:
                data = transport.get(
                    f"{self.prefix}/{repo.root.version + 1}.root.json", MAX_LENGTH[Root.type]
                )
            except NotFoundError:
                break
            repo.update_root(data)
            self.store.save(Root.type, data)
            self.store.save(f"{repo.root.version}.root", data)  # kept to forward to secondaries
        repo.check_root_fresh(now)
        if repo.rotated_since(trusted_root, Timestamp.type) or repo.rotated_since(
            trusted_root, Snapshot.type
        ):
            # fast-forward attack recovery (TUF 5.3.11): old versions signed by lost keys mean nothing
            self.store.delete(Timestamp.type)
            self.store.delete(Snapshot.type)
        trusted_ts = _trusted(self.store, Timestamp.type)
        data = transport.get(f"{self.prefix}/timestamp.json", MAX_LENGTH[Timestamp.type])
        repo.update_timestamp(data, now, trusted_ts)
        self.store.save(Timestamp.type, data)
        snapshot_version = repo.snapshot_version()
        data = transport.get(f"{self.prefix}/{snapshot_version}.snapshot.json", MAX_LENGTH[Snapshot.type])
        repo.update_snapshot(data, now, _trusted(self.store, Snapshot.type))
        self.store.save(Snapshot.type, data)
        self._load_targets(repo, transport, now, Targets.type, Root.type)
        self.trusted = repo
        return repo

    def _load_targets(
        self, repo: TrustedRepository, transport: Transport, now: datetime, role: str, delegator: str
    ) -> RoleMetadata:
        existing = repo.get(role)
        if existing is not None:
            return existing
        version = repo.targets_version(role)
        data = transport.get(f"{self.prefix}/{version}.{role}.json", MAX_LENGTH[Targets.type])
        metadata = repo.update_targets(data, now, role, delegator)
        self.store.save(role, data)
        return metadata

    def find_target(self, transport: Transport, now: datetime, path: str) -> Target | None:
        """Pre-order depth-first search of the delegations, stopping at a terminating role (TUF 5.6.7)."""
        if self.trusted is None:
            raise MetadataError(f"{self.name}: refresh before looking up targets")
        repo = self.trusted
        stack = [(Targets.type, Root.type)]
        visited: set[str] = set()
        while stack:
            role, delegator = stack.pop()
            if role in visited:
                continue
            visited.add(role)
            metadata = self._load_targets(repo, transport, now, role, delegator)
            found = metadata.target(path)
            if found is not None:
                return found
            children = []
            for child in metadata.delegations():
                if child.is_delegated_path(path):
                    children.append((child.name, role))
                    if child.terminating:
                        break
            stack.extend(reversed(children))
        return None


def _trusted(store: MetadataStore, role: str) -> RoleMetadata | None:
    data = store.load(role)
    if data is None:
        return None
    signed, _ = parse_metadata(data, role, f"stored {role}")
    return RoleMetadata(role, signed, data)


class FullVerifier:
    """Full verification for one vehicle; ``clock`` is the trusted time source."""

    def __init__(
        self,
        vin: str,
        storage: Path,
        director_root: bytes,
        image_root: bytes,
        clock: Callable[[], datetime],
    ) -> None:
        self.vin = vin
        self.clock = clock
        self.director = RepositoryClient(
            "director", f"director/{vin}", MetadataStore(storage / "director"), director_root
        )
        self.images = RepositoryClient(
            "image repository", "image/metadata", MetadataStore(storage / "image"), image_root
        )

    def director_targets(self) -> bytes:
        """The director targets metadata of the last verification, as secondaries receive it."""
        if self.director.trusted is None:
            raise MetadataError("director: no verified targets yet")
        return self.director.trusted.role(Targets.type).raw

    def verify(
        self, transport: Transport, hardware_ids: dict[str, str], release_counters: dict[str, int]
    ) -> tuple[list[VerifiedTarget], dict[str, Any]]:
        """The images this vehicle's ECUs must install, and the director's campaign terms.

        ``hardware_ids`` and ``release_counters`` are by ECU serial: what the vehicle knows of
        itself, never what the director claims.
        """
        now = self.clock()
        director = self.director.refresh(transport, now)
        instructions = director.role(Targets.type)
        if instructions.signed.get("delegations"):
            raise MetadataError("director targets: delegations are not allowed on the director")
        custom = instructions.custom
        if custom.get("vehicle_id") != self.vin:
            raise MetadataError(
                f"director targets: for vehicle {custom.get('vehicle_id')!r}, this is {self.vin}"
            )
        wanted = instructions.targets()
        if not wanted:
            return [], custom
        self.images.refresh(transport, now)
        verified = []
        for path, target in wanted.items():
            ecus = target.custom.get("ecu_identifiers") or {}
            if not ecus:
                raise MetadataError(f"director targets: {path} names no ECU")
            image = self.images.find_target(transport, now, path)
            if image is None:
                raise ImageMismatchError(
                    f"{path}: the director assigns an image the image repository does not have"
                )
            if image.length != target.length or image.hashes != target.hashes:
                raise ImageMismatchError(
                    f"{path}: the director's length/hashes differ from the image repository's"
                )
            counter = int(image.custom.get("release_counter", 0))
            for serial, identifiers in ecus.items():
                own = hardware_ids.get(serial)
                if own is None:
                    raise MetadataError(
                        f"director targets: {path} is for ECU {serial}, which this vehicle has not"
                    )
                if identifiers.get("hardware_id") != own or own not in image.custom.get("hardware_ids", []):
                    raise ImageMismatchError(f"{path}: not built for ECU {serial}'s hardware {own}")
                if counter < release_counters.get(serial, 0):
                    raise RollbackError(
                        f"{path}: release counter {counter} is below ECU {serial}'s {release_counters[serial]}"
                    )
                version = str(image.custom.get("version", ""))
                campaign = str(target.custom.get("campaign", ""))
                verified.append(VerifiedTarget(serial, own, image, counter, version, campaign))
        return verified, custom
