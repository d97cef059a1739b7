"""The Uptane director: per-vehicle instructions signed with online keys, and vehicle manifests in.

Layout on disk: ``root/N.root.json`` is shared by every vehicle; ``vehicles/<VIN>/`` holds that
vehicle's ``timestamp.json``, ``N.snapshot.json`` and ``N.targets.json``. The targets metadata names
each image with the ECU serials and hardware ids that must install it (Uptane 5.2.3.1.1), has no
delegations, and always carries the vehicle id, so an empty instruction for one car cannot be
replayed to another.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tuf.api.metadata import Root, Snapshot, TargetFile, Targets, Timestamp

from opensdv.cloud.ota.images import ImageRepository
from opensdv.cloud.ota.inventory import InstalledReport, Inventory, OtaEvent, VehicleState
from opensdv.cloud.ota.keys import KeyStore
from opensdv.cloud.ota.repository import OtaRepositoryError, RoleKeys, SignedRepository
from opensdv.durable import WriteBatch
from opensdv.link.uptane import (
    EcuVersionReport,
    ManifestError,
    SignedEnvelope,
    VehicleVersionManifest,
    verify_envelope,
)

__all__ = ["DEFAULT_DIRECTOR_KEYS", "Assignment", "Director", "ManifestOutcome"]

DEFAULT_DIRECTOR_KEYS = {
    Root.type: RoleKeys(("director-root-1",)),
    Targets.type: RoleKeys(("director-targets-1",)),
    Snapshot.type: RoleKeys(("director-snapshot-1",)),
    Timestamp.type: RoleKeys(("director-timestamp-1",)),
}
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


@dataclass(frozen=True)
class Assignment:
    """Install image ``target`` (as the image repository describes it) on ECU ``ecu_serial``."""

    ecu_serial: str
    hardware_id: str
    target: TargetFile


@dataclass
class ManifestOutcome:
    """What one verified manifest said, ECU by ECU; refused reports are listed with the reason."""

    vin: str
    reports: list[EcuVersionReport] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _entry(target: TargetFile, ecu_identifiers: dict[str, Any], campaign: str) -> TargetFile:
    """A director targets entry: the image's length and hashes, who installs it, for which campaign."""
    entry = TargetFile(target.length, dict(target.hashes), target.path)
    entry.unrecognized_fields["custom"] = {"ecu_identifiers": ecu_identifiers, "campaign": campaign}
    return entry


CACHED_REPOSITORIES = 4096  # open per-vehicle repositories kept (each holds its parsed metadata)
GROUP_COMMIT = 128  # vehicles whose new metadata is synced together (a stage's cars see it by groups)


class Director:
    def __init__(
        self,
        path: Path,
        keys: KeyStore,
        inventory: Inventory,
        images: ImageRepository,
        clock: Callable[[], datetime],
    ) -> None:
        self.path = path
        self.images = images
        self.keys = keys
        self.inventory = inventory
        self.clock = clock
        self._repos: dict[str, SignedRepository] = {}

    def initialise(self, keys: dict[str, RoleKeys] | None = None) -> None:
        """Create the director's root (the per-vehicle metadata appears with each vehicle)."""
        root = SignedRepository("director", self.path / "root", self.keys, self.clock)
        root.create_root(keys or DEFAULT_DIRECTOR_KEYS)

    def rotate(self, role: str, keys: RoleKeys) -> None:
        """Replace an online role's keys (after a compromise) and re-sign every vehicle's metadata."""
        SignedRepository("director", self.path / "root", self.keys, self.clock).rotate(role, keys)
        for directory in sorted((self.path / "vehicles").glob("*")):
            repo = self.repository(directory.name, create=False)
            repo.forget_cache()
            repo.resign(role)

    def renew(self, before: timedelta) -> dict[str, list[str]]:
        """Every vehicle's metadata that expires within ``before``, re-signed (VIN -> roles)."""
        renewed = {}
        for directory in sorted((self.path / "vehicles").glob("*")):
            roles = self.repository(directory.name, create=False).renew(before)
            if roles:
                renewed[directory.name] = roles
        return renewed

    def repository(self, vin: str, create: bool = True) -> SignedRepository:
        """The vehicle's repository (made if ``create`` and it does not exist yet). Only existing
        repositories are cached, at most ``CACHED_REPOSITORIES`` of them (least recently used out):
        asking for a VIN before its enrolment, or for many VINs that do not exist, leaves nothing behind."""
        repo = self._repos.pop(vin, None)
        if repo is None:
            if not _VIN.fullmatch(vin):
                raise OtaRepositoryError(f"director: {vin!r} is not a VIN")
            repo = SignedRepository(
                f"director ({vin})",
                self.path / "vehicles" / vin,
                self.keys,
                self.clock,
                root_dir=self.path / "root",
            )
            if not repo.exists():
                if not create:
                    return repo
                repo.initialise()
                self._repos[vin] = repo
                self._publish(vin, {}, {})
        self._repos[vin] = repo  # the most recently used last
        while len(self._repos) > CACHED_REPOSITORIES:
            del self._repos[next(iter(self._repos))]
        return repo

    def forget(self, vins: Iterable[str]) -> None:
        """Drop what is cached of these vehicles' metadata (another process signed it)."""
        for vin in vins:
            self._repos.pop(vin, None)

    def _publish(
        self, vin: str, targets: dict[str, TargetFile], campaigns: dict[str, Any], batch: WriteBatch | None = None
    ) -> None:
        """New per-vehicle targets; only the terms of campaigns that still have an image are kept."""
        repo = self.repository(vin)
        current = repo.targets().signed
        referenced = {t.custom.get("campaign") for t in targets.values()}
        current.targets = targets
        current.unrecognized_fields["custom"] = {
            "vehicle_id": vin,
            "campaigns": {c: terms for c, terms in campaigns.items() if c in referenced},
        }
        repo.publish({Targets.type: current}, batch=batch)

    def _current(self, vin: str) -> tuple[dict[str, TargetFile], dict[str, Any]]:
        signed = self.repository(vin).targets().signed
        custom = signed.unrecognized_fields.get("custom", {})
        return dict(signed.targets), dict(custom.get("campaigns", {}))

    def assign(
        self,
        vin: str,
        assignments: list[Assignment],
        terms: dict[str, Any] | None = None,
        campaign: str = "manual",
        state: VehicleState | None = None,
        batch: WriteBatch | None = None,
    ) -> None:
        """Tell ``vin``'s ECUs to install these images for ``campaign`` (whose ``terms`` — mode,
        energy, consent — travel signed with them). Instructions for its other ECUs stay.
        ``state``: the vehicle as the caller just read it (a campaign stage reads all at once);
        ``batch``: the group commit the new metadata joins (see ``assign_many``)."""
        state = state or self.inventory.vehicle(vin)
        for a in assignments:
            ecu = state.ecu(a.ecu_serial)
            if ecu is None or ecu.public_key is None:
                raise OtaRepositoryError(f"director: vehicle {vin} has no enrolled ECU {a.ecu_serial}")
            if ecu.hardware_id != a.hardware_id:
                raise OtaRepositoryError(
                    f"director: ECU {a.ecu_serial} is hardware {ecu.hardware_id}, not {a.hardware_id}"
                )
        current, campaigns = self._current(vin)
        serials = {a.ecu_serial for a in assignments}
        targets: dict[str, TargetFile] = {}
        for path, entry in current.items():  # keep what other ECUs were told
            kept = {s: i for s, i in entry.custom.get("ecu_identifiers", {}).items() if s not in serials}
            if kept:
                targets[path] = _entry(entry, kept, entry.custom.get("campaign", "manual"))
        for a in assignments:
            shared = targets.get(a.target.path)
            ids = dict(shared.custom["ecu_identifiers"]) if shared is not None else {}
            ids[a.ecu_serial] = {"hardware_id": a.hardware_id}
            targets[a.target.path] = _entry(a.target, ids, campaign)
        self._publish(vin, targets, {**campaigns, campaign: terms or {}}, batch)

    def assign_many(
        self, work: Iterable[tuple[VehicleState, list[Assignment]]], terms: dict[str, Any], campaign: str
    ) -> None:
        """``assign`` for many vehicles (a campaign stage), their metadata synced ``GROUP_COMMIT``
        vehicles at a time rather than file by file. If one vehicle fails, those before it are
        still committed, as they would be one by one."""
        batch = WriteBatch()
        try:
            for count, (vehicle, assignments) in enumerate(work, start=1):
                self.assign(vehicle.vin, assignments, terms, campaign=campaign, state=vehicle, batch=batch)
                if count % GROUP_COMMIT == 0:
                    batch.commit()
        finally:
            batch.commit()

    def withdraw(self, vin: str, campaign: str) -> None:
        """Take back ``campaign``'s instructions for ``vin`` (installed, failed, paused, cancelled)."""
        current, campaigns = self._current(vin)
        kept = {p: t for p, t in current.items() if t.custom.get("campaign", "manual") != campaign}
        if kept != current:
            self._publish(vin, kept, campaigns)

    def instructions(self, vin: str) -> dict[str, TargetFile]:
        return dict(self.repository(vin).targets().signed.targets)

    def _version_of(self, filename: str, sha256: str) -> str | None:
        """The version the image repository gives this exact image (None for images it never had)."""
        try:
            _, info = self.images.image(filename)
        except OtaRepositoryError:
            return None
        return info.version if info.sha256 == sha256 else None

    def receive_manifest(self, vin: str, data: bytes) -> ManifestOutcome:
        """Verify a vehicle version manifest and record each ECU's verified report."""
        state = self.inventory.vehicle(vin)
        primary = state.primary
        if primary is None or primary.public_key is None:
            raise ManifestError(f"manifest from {vin}: the vehicle is not enrolled for OTA")
        envelope = SignedEnvelope.from_bytes(data, f"manifest from {vin}")
        manifest = verify_envelope(
            envelope, primary.public_key, VehicleVersionManifest, f"manifest from {vin}"
        )
        if manifest.vin != vin or manifest.primary_ecu_serial != primary.serial:
            raise ManifestError(
                f"manifest from {vin}: it names vehicle {manifest.vin} / primary {manifest.primary_ecu_serial}"
            )
        now = self.clock()
        outcome = ManifestOutcome(vin)
        installed: list[InstalledReport] = []
        events: list[OtaEvent] = []
        for serial, report_envelope in manifest.ecu_version_reports.items():
            ecu = state.ecu(serial)
            try:
                if ecu is None or ecu.public_key is None:
                    raise ManifestError(f"ECU {serial} is not enrolled in vehicle {vin}")
                report = verify_envelope(
                    report_envelope, ecu.public_key, EcuVersionReport, f"report of {serial}"
                )
                if report.ecu_serial != serial:
                    raise ManifestError(f"report filed under {serial} is signed for {report.ecu_serial}")
                if report.nonce == ecu.last_nonce or report.nonce in ecu.recent_nonces:
                    raise ManifestError(f"report of {serial} repeats nonce {report.nonce} (a replay)")
                if ecu.last_report_time is not None and report.time < ecu.last_report_time:
                    raise ManifestError(
                        f"report of {serial} is older ({report.time.isoformat()}) than the last accepted "
                        f"({ecu.last_report_time.isoformat()}): a replay"
                    )
            except ManifestError as exc:
                outcome.refused[serial] = str(exc)
                events.append(OtaEvent(vin, serial, now, "report-refused", str(exc)))
                continue
            image = report.installed_image
            sha256 = image.hashes.get("sha256", "")
            version = self._version_of(image.filename, sha256)
            installed.append(
                InstalledReport(
                    serial, image.filename, sha256, version, report.release_counter, report.nonce, now, report.time
                )
            )
            if report.attacks_detected:
                events.append(OtaEvent(vin, serial, now, "attack-detected", report.attacks_detected))
            if report.last_install is not None:
                last = report.last_install
                kind = "install-succeeded" if last.success else "install-failed"
                events.append(
                    OtaEvent(vin, serial, now, kind, f"{last.target}: {last.code} {last.detail}".strip())
                )
            outcome.reports.append(report)
        self.inventory.record_manifest(vin, installed, events)
        return outcome
