"""The Uptane image repository: every image the partners may install, signed by offline keys.

Top-level targets (the platform's release engineering) may delegate a path pattern to a
supplier, e.g. ``bms/*`` to the battery-module supplier, who then signs its own BMS firmware with
its own keys; a compromise of the director cannot add an image here. Each image's custom metadata
carries what the vehicle checks against the director: the hardware ids it is built for, its
version and its release counter (which a vehicle never lets go down).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tuf.api.metadata import DelegatedRole, Delegations, Root, Snapshot, TargetFile, Targets, Timestamp

from opensdv.cloud.ota.keys import KeyStore
from opensdv.cloud.ota.repository import OtaRepositoryError, RoleKeys, SignedRepository
from opensdv.durable import write_atomically

__all__ = ["DEFAULT_IMAGE_KEYS", "ImageInfo", "ImageRepository"]

DEFAULT_IMAGE_KEYS = {
    Root.type: RoleKeys(("image-root-1", "image-root-2"), threshold=2),
    Targets.type: RoleKeys(("image-targets-1",)),
    Snapshot.type: RoleKeys(("image-snapshot-1",)),
    Timestamp.type: RoleKeys(("image-timestamp-1",)),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
_VERSION = re.compile(r"\d+(\.\d+){0,3}")


@dataclass(frozen=True)
class ImageInfo:
    name: str
    role: str
    length: int
    sha256: str
    hardware_ids: tuple[str, ...]
    version: str
    release_counter: int

    @classmethod
    def of(cls, target: TargetFile, role: str) -> ImageInfo:
        custom = target.custom
        return cls(
            name=target.path,
            role=role,
            length=target.length,
            sha256=target.hashes["sha256"],
            hardware_ids=tuple(custom.get("hardware_ids", ())),
            version=str(custom.get("version", "")),
            release_counter=int(custom.get("release_counter", 0)),
        )


def image_custom(hardware_ids: list[str], version: str, release_counter: int) -> dict[str, object]:
    return {"hardware_ids": sorted(hardware_ids), "version": version, "release_counter": release_counter}


class ImageRepository:
    """Images under ``path/targets`` (named ``<sha256>.<name>``), metadata under ``path/metadata``."""

    def __init__(self, path: Path, keys: KeyStore, clock: Callable[[], datetime]) -> None:
        self.path = path
        self.repo = SignedRepository("image repository", path / "metadata", keys, clock)

    def initialise(self, keys: dict[str, RoleKeys] | None = None) -> None:
        self.repo.initialise(keys or DEFAULT_IMAGE_KEYS)

    def delegate(self, role: str, keys: RoleKeys, paths: list[str]) -> None:
        """Let ``role`` (a supplier) sign images whose names match ``paths`` (e.g. ``bms/*``)."""
        if role in (Root.type, Targets.type, Snapshot.type, Timestamp.type) or not _NAME.fullmatch(role):
            raise OtaRepositoryError(f"image repository: {role!r} cannot name a supplier role")
        top = self.repo.targets().signed
        if top.delegations is None:
            top.delegations = Delegations(keys={}, roles={})
        roles = top.delegations.roles if top.delegations.roles is not None else {}
        if role in roles:
            raise OtaRepositoryError(f"image repository: role {role!r} is already delegated")
        roles[role] = DelegatedRole(
            name=role, keyids=[], threshold=keys.threshold, terminating=True, paths=paths
        )
        top.delegations.roles = roles
        for name in keys.names:
            top.add_key(self.repo.keys.signer(name).public_key, role)
        self.repo.publish({Targets.type: top, role: Targets()})

    def _role_for(self, name: str) -> str:
        delegations = self.repo.targets().signed.delegations
        for role in (delegations.roles or {}).values() if delegations else ():
            if role.is_delegated_path(name):
                return role.name
        return Targets.type

    def add_image(
        self, name: str, data: bytes, hardware_ids: list[str], version: str, release_counter: int
    ) -> ImageInfo:
        """Sign ``data`` as image ``name`` with whichever role the name is delegated to."""
        if not _NAME.fullmatch(name):
            raise OtaRepositoryError(
                f"image name {name!r}: use letters, digits, '.', '_', '-' and at most one '/'"
            )
        if not hardware_ids or not all(h.strip() for h in hardware_ids):
            raise OtaRepositoryError(f"image {name}: at least one hardware id is needed")
        if not _VERSION.fullmatch(version):
            raise OtaRepositoryError(f"image {name}: version {version!r} is not like 2.4.0")
        if release_counter < 0:
            raise OtaRepositoryError(f"image {name}: release counter {release_counter} is negative")
        role = self._role_for(name)
        targets = self.repo.targets(role).signed
        if name in targets.targets:
            raise OtaRepositoryError(f"image {name} already exists (images are immutable; add a new version)")
        target = TargetFile.from_data(name, data, ["sha256"])
        target.unrecognized_fields["custom"] = image_custom(hardware_ids, version, release_counter)
        write_atomically(self.image_file(target), data)
        targets.targets[name] = target
        self.repo.publish({role: targets})
        return ImageInfo.of(target, role)

    def image_file(self, target: TargetFile) -> Path:
        directory, _, base = target.path.rpartition("/")
        return self.path / "targets" / directory / f"{target.hashes['sha256']}.{base}"

    def served_file(self, url_path: str) -> Path:
        """The file for ``targets/<dir>/<sha256>.<name>`` requests, refusing anything else."""
        if ".." in url_path.split("/") or not re.fullmatch(
            r"([A-Za-z0-9._-]+/)?[0-9a-f]{64}\.[A-Za-z0-9._-]+", url_path
        ):
            raise OtaRepositoryError(f"image repository: no image {url_path!r}")
        return self.path / "targets" / url_path

    def images(self) -> Iterator[ImageInfo]:
        top = self.repo.targets()
        yield from (ImageInfo.of(t, Targets.type) for t in top.signed.targets.values())
        delegations = top.signed.delegations
        for role in (delegations.roles or {}) if delegations else ():
            yield from (ImageInfo.of(t, role) for t in self.repo.targets(role).signed.targets.values())

    def image(self, name: str) -> tuple[TargetFile, ImageInfo]:
        role = self._role_for(name)
        target = self.repo.targets(role).signed.targets.get(name)
        if target is None:
            known = ", ".join(sorted(i.name for i in self.images())) or "none"
            raise OtaRepositoryError(f"image repository: no image {name!r} (images: {known})")
        return target, ImageInfo.of(target, role)
