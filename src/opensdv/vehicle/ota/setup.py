"""Putting one vehicle's OTA clients together from a list of ECUs (simulated cars, tests, the demo).

Each ECU gets its own Ed25519 key (kept in its directory, as a real ECU keeps it in its HSM), A/B
slots holding a factory image, and the director's root it was provisioned with at the factory; the
primary also gets the image repository's root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from securesystemslib.signer import CryptoSigner

from opensdv.durable import ed25519_signer
from opensdv.model.vehicles import APP_RUNTIME_HARDWARE_ID
from opensdv.vehicle.apps.package import app_set
from opensdv.vehicle.ota.ecu import EcuClient
from opensdv.vehicle.ota.primary import Primary, VehicleConditions
from opensdv.vehicle.ota.slots import AbSlots, SlotImage
from opensdv.vehicle.ota.transport import Transport
from opensdv.vehicle.ota.verification import FullVerifier

__all__ = ["EcuSpec", "build_vehicle", "ecu_key", "factory_image"]


@dataclass(frozen=True)
class EcuSpec:
    name: str
    serial: str
    hardware_id: str
    full_verification: bool = False


def ecu_key(directory: Path) -> CryptoSigner:
    """The ECU's signing key, created on first start (a stand-in for a key burnt in at the factory)."""
    return ed25519_signer(directory / "ecu_key.pem")


def factory_image(hardware_id: str) -> tuple[SlotImage, bytes]:
    """What an ECU leaves the factory with (for the app runtime: an empty app set)."""
    if hardware_id == APP_RUNTIME_HARDWARE_ID:
        data = app_set([])
    else:
        data = f"{hardware_id} factory firmware 1.0.0\n".encode() * 64
    image = SlotImage(
        f"factory/{hardware_id}-1.0.0.bin",
        len(data),
        {"sha256": hashlib.sha256(data).hexdigest()},
        0,
        "1.0.0",
    )
    return image, data


def build_vehicle(
    vin: str,
    ecus: list[EcuSpec],
    primary: str,
    storage: Path,
    director_root: bytes,
    image_root: bytes,
    transport: Transport,
    clock: Callable[[], datetime],
    conditions: Callable[[], VehicleConditions] | None = None,
    consent: Callable[[dict[str, object]], bool] | None = None,
    behaviour: dict[str, tuple[Callable[[bytes], bool], Callable[[bytes], bool]]] | None = None,
    crash: Callable[[str], None] | None = None,
) -> Primary:
    """A primary and its ECUs; ``behaviour`` maps an ECU name to (boots, healthy) checks."""
    clients: dict[str, EcuClient] = {}
    primary_serial = ""
    for spec in ecus:
        directory = storage / "ecus" / spec.serial
        boots, healthy = (behaviour or {}).get(spec.name, (lambda _b: True, lambda _b: True))
        verifier = (
            FullVerifier(vin, directory / "full", director_root, image_root, clock)
            if spec.full_verification
            else None
        )
        clients[spec.serial] = EcuClient(
            spec.serial,
            spec.hardware_id,
            ecu_key(directory),
            AbSlots(directory, factory_image(spec.hardware_id), crash=crash),
            director_root,
            clock,
            full_verifier=verifier,
            boots=boots,
            healthy=healthy,
        )
        if spec.name == primary:
            primary_serial = spec.serial
    verifier = FullVerifier(vin, storage / "primary", director_root, image_root, clock)
    primary_ecu = Primary(vin, clients, primary_serial, verifier, transport)
    if conditions is not None:
        primary_ecu.conditions = conditions
    if consent is not None:
        primary_ecu.consent = consent
    return primary_ecu
