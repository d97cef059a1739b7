"""One ECU's update client: its identity and key, its A/B slots, and how much it verifies.

A secondary does at least partial verification (Uptane 5.4.4.3): the director's targets metadata,
signed by the director's targets key that its own copy of the director root names, current by its
trusted time, naming its serial and hardware id, and an image matching that entry. An ECU
configured for full verification runs the same checks as the primary over the metadata the
primary forwards. Either way it signs its own version report.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from securesystemslib.signer import Signer
from tuf.api.metadata import Root, Targets

from opensdv.link.uptane import EcuVersionReport, InstalledImage, InstallResult, SignedEnvelope, sign_envelope
from opensdv.vehicle.ota.errors import (
    ExpiredMetadataError,
    ImageMismatchError,
    MetadataError,
    RollbackError,
    UpdateError,
)
from opensdv.vehicle.ota.slots import AbSlots, SlotImage
from opensdv.vehicle.ota.transport import Transport
from opensdv.vehicle.ota.trust import Target, TrustedRepository, parse_metadata
from opensdv.vehicle.ota.verification import FullVerifier, MetadataStore, VerifiedTarget

__all__ = ["EcuClient"]


def _always(_image: bytes) -> bool:
    return True


class EcuClient:
    def __init__(
        self,
        serial: str,
        hardware_id: str,
        signer: Signer,
        slots: AbSlots,
        director_root: bytes,
        clock: Callable[[], datetime],
        full_verifier: FullVerifier | None = None,
        boots: Callable[[bytes], bool] = _always,
        healthy: Callable[[bytes], bool] = _always,
    ) -> None:
        self.serial = serial
        self.hardware_id = hardware_id
        self.signer = signer
        self.slots = slots
        self.clock = clock
        self.full_verifier = full_verifier
        self.boots = boots
        self.healthy = healthy
        self._store = MetadataStore(slots.directory / "director")
        self._director_root = director_root
        self.attacks_detected = ""

    # -- verification ---------------------------------------------------------------------------
    def _director(self) -> TrustedRepository:
        return TrustedRepository("director", self._store.load(Root.type) or self._director_root)

    def sync_roots(self, root_version: Callable[[int], bytes | None]) -> None:
        """Follow the director's root chain as the primary forwards it, one signed step at a time."""
        repo = self._director()
        while (data := root_version(repo.root.version + 1)) is not None:
            repo.update_root(data)
            self._store.save(Root.type, data)

    def verify_partial(self, director_targets: bytes) -> Target | None:
        """The director's instruction for this ECU, or None if it has none (partial verification)."""
        repo = self._director()
        signed, signatures = parse_metadata(director_targets, Targets.type, "director targets")
        repo.verify_signed(Targets.type, signed, signatures)
        expires = datetime.fromisoformat(signed["expires"].replace("Z", "+00:00"))
        now = self.clock()
        if expires <= now:
            raise ExpiredMetadataError(
                f"director targets expired at {expires.isoformat()} (trusted time {now.isoformat()})"
            )
        previous = self._store.load(Targets.type)
        if previous is not None:
            old_version = parse_metadata(previous, Targets.type, "stored director targets")[0]["version"]
            if signed["version"] < old_version:
                raise RollbackError(f"director targets version {signed['version']} < trusted {old_version}")
        self._store.save(Targets.type, director_targets)
        for path, entry in signed.get("targets", {}).items():
            ids = (entry.get("custom") or {}).get("ecu_identifiers") or {}
            if self.serial in ids:
                if ids[self.serial].get("hardware_id") != self.hardware_id:
                    raise ImageMismatchError(
                        f"{path}: for hardware {ids[self.serial].get('hardware_id')}, this ECU is {self.hardware_id}"
                    )
                return Target(
                    path, int(entry["length"]), dict(entry["hashes"]), dict(entry.get("custom", {}))
                )
        return None

    def verify_full(
        self, bundle: Transport, hardware_ids: dict[str, str], counters: dict[str, int]
    ) -> VerifiedTarget | None:
        if self.full_verifier is None:
            raise MetadataError(f"ECU {self.serial} is not configured for full verification")
        verified, _ = self.full_verifier.verify(bundle, hardware_ids, counters)
        return next((v for v in verified if v.ecu_serial == self.serial), None)

    # -- installing -----------------------------------------------------------------------------
    @property
    def release_counter(self) -> int:
        return self.slots.active_image.release_counter

    def install(self, target: Target, data: bytes, release_counter: int, version: str) -> InstallResult:
        """Write, switch, boot, check health, commit; any failure leaves the old slot running."""
        try:
            if not target.verify(data):
                raise ImageMismatchError(f"{target.path}: image does not match its length/hashes")
            if release_counter < self.release_counter:
                raise RollbackError(
                    f"{target.path}: release counter {release_counter} < installed {self.release_counter}"
                )
        except UpdateError as exc:
            self.record_failure(target.path, exc.code, str(exc))
            return self.last_result()
        image = SlotImage(target.path, target.length, dict(target.hashes), release_counter, version)
        self.slots.install(image, data)
        return self.resume()

    def resume(self) -> InstallResult:
        """Finish whatever install is pending (after a restart or power loss): boot, health, commit."""
        if self.slots.state.pending is not None:
            booted = self.slots.boot(self.boots)
            if booted == self.slots.state.pending:
                self.slots.crash("health")
                if self.healthy(self.slots.read(booted)):
                    self.slots.commit()
                else:
                    self.slots.rollback("health-check", f"slot {booted} failed its health check")
        return self.last_result()

    def record_failure(self, target: str, code: str, detail: str) -> None:
        self.slots.record_failure(target, code, detail)
        if code not in ("download", "not-found", "install", "health-check", "boot", "preconditions"):
            self.attacks_detected = f"{code}: {detail}"

    def last_result(self) -> InstallResult:
        result = self.slots.state.last_result
        return InstallResult(**result) if result else InstallResult(target="", success=True, code="ok")

    def acknowledge(self) -> None:
        """The director has the report: results and detected attacks are not sent again."""
        self.attacks_detected = ""
        self.slots.forget_result()

    # -- reporting ------------------------------------------------------------------------------
    def report(self) -> SignedEnvelope:
        image = self.slots.active_image
        report = EcuVersionReport(
            ecu_serial=self.serial,
            hardware_id=self.hardware_id,
            installed_image=InstalledImage(filename=image.filename, length=image.length, hashes=image.hashes),
            release_counter=image.release_counter,
            active_slot=self.slots.state.active,
            nonce=secrets.token_hex(16),
            time=self.clock(),
            attacks_detected=self.attacks_detected,
            last_install=self.last_result() if self.slots.state.last_result else None,
        )
        return sign_envelope(report, [self.signer])
