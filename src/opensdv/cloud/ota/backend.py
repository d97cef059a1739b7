"""The OTA back end in one object: keys, both repositories, inventory, campaigns, and the file
routes vehicles fetch (served over HTTP by ``server.py``, or called in-process by the demo).

Routes (relative to the server root):
``director/<VIN>/<metadata file>``, ``image/metadata/<metadata file>``,
``image/targets/[<dir>/]<sha256>.<name>``, ``image/deltas/<from sha256>.<to sha256>`` and
``POST director/<VIN>/manifest``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from securesystemslib.signer import Key

from opensdv.cloud.jobs.runner import JobRunner
from opensdv.cloud.ota.campaigns import Campaigns
from opensdv.cloud.ota.director import Director, ManifestOutcome
from opensdv.cloud.ota.images import ImageRepository
from opensdv.cloud.ota.inventory import Inventory
from opensdv.cloud.ota.keys import KeyStore
from opensdv.cloud.ota.repository import OtaRepositoryError, RoleKeys
from opensdv.durable import write_atomically
from opensdv.link.delta import make_delta
from opensdv.storage.database import Database

__all__ = ["OtaBackend"]

_DELTA = re.compile(r"([0-9a-f]{64})\.([0-9a-f]{64})")
MAX_MANIFEST_BYTES = 1 << 20


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OtaBackend:
    def __init__(
        self, path: Path, database: Database, clock: Callable[[], datetime] = _utc_now, runner: JobRunner | None = None
    ) -> None:
        """``runner``: where campaigns sign their per-vehicle targets (default: in this process)."""
        self.path = path
        self.clock = clock
        self.database = database
        self.keys = KeyStore(path / "keys")
        self.images = ImageRepository(path / "image", self.keys, clock)
        self.inventory = Inventory(database)
        self.director = Director(path / "director", self.keys, self.inventory, self.images, clock)
        self.campaigns = Campaigns(database, self.inventory, self.director, self.images, clock, runner)

    @property
    def initialised(self) -> bool:
        return self.images.repo.exists()

    def initialise(
        self, image_keys: dict[str, RoleKeys] | None = None, director_keys: dict[str, RoleKeys] | None = None
    ) -> None:
        self.images.initialise(image_keys)
        self.director.initialise(director_keys)

    def renew_metadata(self, before: timedelta) -> dict[str, list[str]]:
        """Re-sign what expires within ``before``: the image repository's online roles and every
        vehicle's director metadata (timestamp after a day, snapshot after a week, targets after
        90 days by default). The OTA service calls it periodically; returns repository -> roles."""
        renewed = {"image repository": self.images.repo.renew(before)} if self.initialised else {}
        renewed |= {f"director ({vin})": roles for vin, roles in self.director.renew(before).items()}
        return {name: roles for name, roles in renewed.items() if roles}

    def enrol(self, vin: str, keys: Mapping[str, Key], primary: str, rxswin: str = "") -> None:
        """Record the vehicle's ECU keys and give it its (empty) director metadata."""
        self.inventory.enrol(vin, keys, primary, rxswin)
        self.director.repository(vin)

    def trusted_roots(self) -> tuple[bytes, bytes]:
        """The director's and the image repository's first root metadata, which an enrolled car
        is given once and trusts from then on (later roots it verifies against these)."""
        return (self.path / "director" / "root" / "1.root.json").read_bytes(), self.images.repo.file("1.root.json").read_bytes()

    def read(self, path: str) -> bytes | None:
        """The file a vehicle asks for, or None (HTTP 404)."""
        file = self.file(path)
        return file.read_bytes() if file is not None and file.is_file() else None

    def file(self, path: str) -> Path | None:
        parts = path.split("/")
        try:
            if parts[0] == "director" and len(parts) == 3:
                return self.director.repository(parts[1], create=False).file(parts[2])
            if parts[:2] == ["image", "metadata"] and len(parts) == 3:
                return self.images.repo.file(parts[2])
            if parts[:2] == ["image", "targets"]:
                return self.images.served_file("/".join(parts[2:]))
            if parts[:2] == ["image", "deltas"] and len(parts) == 3:
                return self._delta(parts[2])
        except OtaRepositoryError:
            return None
        return None

    def _delta(self, name: str) -> Path | None:
        """A delta between two images of the repository, built on first request and kept."""
        match = _DELTA.fullmatch(name)
        if match is None:
            return None
        cached = self.path / "deltas" / name
        if cached.exists():
            return cached
        by_sha = {i.sha256: i for i in self.images.images()}
        old, new = by_sha.get(match[1]), by_sha.get(match[2])
        if old is None or new is None:
            return None
        old_data = self.images.image_file(self.images.image(old.name)[0]).read_bytes()
        new_data = self.images.image_file(self.images.image(new.name)[0]).read_bytes()
        delta = make_delta(old_data, new_data)
        if len(delta) >= len(new_data):
            return None  # no gain: the vehicle falls back to the full image
        write_atomically(cached, delta)
        return cached

    def receive_manifest(self, vin: str, data: bytes) -> ManifestOutcome:
        outcome = self.director.receive_manifest(vin, data)
        self.campaigns.on_manifest(outcome)
        return outcome

    def post(self, path: str, data: bytes) -> bytes:
        parts = path.split("/")
        if len(parts) != 3 or parts[0] != "director" or parts[2] != "manifest":
            raise OtaRepositoryError(f"no such route: POST {path}")
        if len(data) > MAX_MANIFEST_BYTES:
            raise OtaRepositoryError(f"manifest of {len(data)} bytes is over the {MAX_MANIFEST_BYTES} limit")
        outcome = self.receive_manifest(parts[1], data)
        return f'{{"accepted": {len(outcome.reports)}, "refused": {len(outcome.refused)}}}'.encode()
