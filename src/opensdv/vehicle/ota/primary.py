"""The primary ECU: verifies everything, downloads, hands images to the ECUs, reports to the director.

One ``update()`` is one Uptane cycle: full verification of both repositories, the campaign's
preconditions (parked, enough energy for the install plus a rollback, the driver's consent where
the campaign asks for it — UN R156 7.1.3), downloading every image of the bundle (a delta first
when one is offered) before any ECU installs any (no partial bundles), then each ECU verifies and
installs its own image, and the signed manifest tells the director what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from securesystemslib.signer import Signer

from opensdv.link.delta import DeltaError, apply_delta
from opensdv.link.uptane import VehicleVersionManifest, sign_envelope
from opensdv.vehicle.ota.ecu import EcuClient
from opensdv.vehicle.ota.errors import DownloadError, ImageMismatchError, UpdateError
from opensdv.vehicle.ota.transport import LocalTransport, RecordingTransport, Transport
from opensdv.vehicle.ota.verification import FullVerifier, VerifiedTarget

__all__ = ["Primary", "UpdateOutcome", "VehicleConditions"]


@dataclass(frozen=True)
class VehicleConditions:
    """What the car says about itself right now (from the data broker in a running vehicle)."""

    parked: bool
    battery_kwh: float


@dataclass
class UpdateOutcome:
    status: str  # up-to-date, installed, failed, postponed, downloaded, refused
    detail: str = ""
    results: dict[str, str] = field(default_factory=dict)  # ECU serial -> result code
    delta_bytes: int = 0
    full_bytes: int = 0


def _parked(_: None = None) -> VehicleConditions:
    return VehicleConditions(parked=True, battery_kwh=100.0)


def _in_window(hour: int, start: int, end: int) -> bool:
    """[start, end) in hours; a window like 22-4 runs over midnight."""
    return start <= hour < end if start <= end else hour >= start or hour < end


class Primary:
    def __init__(
        self,
        vin: str,
        ecus: dict[str, EcuClient],
        primary_serial: str,
        verifier: FullVerifier,
        transport: Transport,
        conditions: Callable[[], VehicleConditions] = _parked,
        consent: Callable[[dict[str, Any]], bool] = lambda _request: False,
        use_deltas: bool = True,
    ) -> None:
        if primary_serial not in ecus:
            raise UpdateError(f"primary ECU {primary_serial} is not among the ECUs {sorted(ecus)}")
        self.vin = vin
        self.ecus = ecus
        self.primary_serial = primary_serial
        self.verifier = verifier
        self.transport = transport
        self.conditions = conditions
        self.consent = consent
        self.use_deltas = use_deltas

    @property
    def signer(self) -> Signer:
        return self.ecus[self.primary_serial].signer

    def update(self) -> UpdateOutcome:
        hardware = {s: e.hardware_id for s, e in self.ecus.items()}
        counters = {s: e.release_counter for s, e in self.ecus.items()}
        try:
            recorder = RecordingTransport(self.transport)
            verified, terms = self.verifier.verify(recorder, hardware, counters)
        except UpdateError as exc:
            self.ecus[self.primary_serial].record_failure("metadata", exc.code, str(exc))
            return UpdateOutcome("refused", f"{exc.code}: {exc}")
        todo = [v for v in verified if self.ecus[v.ecu_serial].slots.active_image.hashes != v.target.hashes]
        if not todo:
            return UpdateOutcome("up-to-date")
        campaigns = terms.get("campaigns", {})
        relevant = [dict(campaigns.get(c, {})) for c in sorted({v.campaign for v in todo})]
        blocked = self._preconditions(relevant)
        if blocked:
            for v in todo:
                self.ecus[v.ecu_serial].record_failure(v.target.path, "preconditions", blocked)
            return UpdateOutcome("postponed", blocked)
        outcome = UpdateOutcome("installed")
        images: dict[str, bytes] = {}
        try:
            for v in todo:
                images[v.ecu_serial] = self._download(v, outcome)
        except UpdateError as exc:
            for v in todo:  # no partial bundle: nobody installs if any image is bad
                self.ecus[v.ecu_serial].record_failure(v.target.path, exc.code, str(exc))
            return UpdateOutcome("failed", f"{exc.code}: {exc}")
        if relevant and all(t.get("mode") == "download-only" for t in relevant):
            return UpdateOutcome("downloaded", f"{len(images)} images staged")
        instruction = self.verifier.director_targets()
        bundle = LocalTransport(lambda path: self._bundle_file(recorder.files, path), self.transport.post)
        for v in todo:
            ecu = self.ecus[v.ecu_serial]
            try:
                if ecu.full_verifier is not None:
                    own = ecu.verify_full(bundle, hardware, counters)
                    target = own.target if own else None
                else:
                    ecu.sync_roots(lambda version: self.verifier.director.store.load(f"{version}.root"))
                    target = ecu.verify_partial(instruction)
            except UpdateError as exc:
                ecu.record_failure(v.target.path, exc.code, str(exc))
                outcome.results[v.ecu_serial] = exc.code
                continue
            if target is None or target.hashes != v.target.hashes:
                ecu.record_failure(v.target.path, "arbitrary-software", "the ECU's own check disagrees")
                outcome.results[v.ecu_serial] = "arbitrary-software"
                continue
            result = ecu.install(v.target, images[v.ecu_serial], v.release_counter, v.version)
            outcome.results[v.ecu_serial] = result.code
        if any(code != "ok" for code in outcome.results.values()):
            outcome.status = "failed"
        return outcome

    def _bundle_file(self, fetched: dict[str, bytes], path: str) -> bytes | None:
        """What full-verifying ECUs check: the files this cycle fetched, plus every root version the
        primary holds, so an ECU behind on the root chain can walk it up."""
        if path in fetched:
            return fetched[path]
        name = path.rsplit("/", 1)[-1]
        if not name.endswith(".root.json"):
            return None
        client = self.verifier.director if path.startswith("director/") else self.verifier.images
        return client.store.load(name.removesuffix(".json"))

    def _preconditions(self, campaigns: list[dict[str, Any]]) -> str:
        """Why the install must wait ('' if it may go ahead), over every campaign it serves."""
        state = self.conditions()
        if not state.parked:
            return "the vehicle is not parked"
        needed = sum(int(t.get("energy_wh", 0)) for t in campaigns) / 1000
        if state.battery_kwh < needed:
            return f"{state.battery_kwh:.1f} kWh available, the install and a rollback need {needed:.1f} kWh"
        hour = self.verifier.clock().hour
        for terms in campaigns:
            window = terms.get("maintenance_window_utc")
            if window and not _in_window(hour, int(window[0]), int(window[1])):
                return f"outside the maintenance window {window[0]:02d}:00-{window[1]:02d}:00 UTC"
        for terms in campaigns:
            consent = terms.get("consent")
            if terms.get("mode") != "forced" and consent and not self.consent(dict(consent)):
                return "the driver has not consented"
        return ""

    def _download(self, v: VerifiedTarget, outcome: UpdateOutcome) -> bytes:
        ecu = self.ecus[v.ecu_serial]
        if self.use_deltas:
            current = ecu.slots.active_image
            from_sha, to_sha = current.hashes.get("sha256"), v.target.hashes.get("sha256")
            try:
                patch = self.transport.get(f"image/deltas/{from_sha}.{to_sha}", v.target.length)
                data = apply_delta(ecu.slots.read(ecu.slots.state.active), patch, v.target.length)
                if v.target.verify(data):
                    outcome.delta_bytes += len(patch)
                    return data
            except (DownloadError, DeltaError):
                pass  # missing, larger than the image, or broken: the full image is the fallback
        directory, _, base = v.target.path.rpartition("/")
        prefix = f"{directory}/" if directory else ""
        data = self.transport.get(
            f"image/targets/{prefix}{v.target.hashes['sha256']}.{base}", v.target.length
        )
        if not v.target.verify(data):
            raise ImageMismatchError(f"{v.target.path}: downloaded image does not match its length/hashes")
        outcome.full_bytes += len(data)
        return data

    def resume(self) -> None:
        """After a restart: let every ECU finish or roll back what power loss interrupted."""
        for ecu in self.ecus.values():
            ecu.resume()

    def manifest(self) -> bytes:
        reports = {serial: ecu.report() for serial, ecu in self.ecus.items()}
        manifest = VehicleVersionManifest(
            vin=self.vin, primary_ecu_serial=self.primary_serial, ecu_version_reports=reports
        )
        return sign_envelope(manifest, [self.signer]).to_bytes()

    def send_manifest(self) -> bytes:
        reply = self.transport.post(f"director/{self.vin}/manifest", self.manifest())
        for ecu in self.ecus.values():
            ecu.acknowledge()
        return reply
