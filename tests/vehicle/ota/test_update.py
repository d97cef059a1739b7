"""One vehicle updating from a real back end: verification, install, report, deltas."""

from __future__ import annotations

from pathlib import Path

from opensdv.cloud.ota.director import Assignment
from opensdv.cloud.ota.repository import RoleKeys
from tests.ota_world import installed, make_world


def test_assigned_image_is_verified_installed_and_reported(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    target, _ = world.backend.images.image("eaxle/inverter-2.4.0.bin")
    world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_FRONT", "KDS-INV-110-400-B", target)])

    primary = world.vehicles[vin]
    outcome = primary.update()
    primary.send_manifest()

    assert outcome.status == "installed", outcome
    assert outcome.results == {f"{vin}-EAXLE_FRONT": "ok"}
    assert installed(primary, "EAXLE_FRONT") == "eaxle/inverter-2.4.0.bin"
    assert installed(primary, "BMS").startswith("factory/")
    state = world.backend.inventory.vehicle(vin)
    ecu = state.ecu(f"{vin}-EAXLE_FRONT")
    assert ecu is not None and ecu.installed_version == "2.4.0" and ecu.release_counter == 24
    assert [e.kind for e in world.backend.inventory.events(vin)] == ["install-succeeded"]
    assert primary.update().status == "up-to-date"


def test_second_update_travels_as_a_delta(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("honda-e-advance", 1)
    for version, counter in (("2.4.0", 24), ("2.4.1", 25)):
        world.add_image(f"eaxle/inverter-{version}.bin", version, counter)
        target, _ = world.backend.images.image(f"eaxle/inverter-{version}.bin")
        world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_REAR", "KDS-INV-113-400-R", target)])
        outcome = world.vehicles[vin].update()
        assert outcome.status == "installed", outcome
    assert outcome.full_bytes == 0
    assert 0 < outcome.delta_bytes < target.length / 50
    assert installed(world.vehicles[vin], "EAXLE_REAR") == "eaxle/inverter-2.4.1.bin"


def test_a_fully_verifying_secondary_checks_the_primarys_bundle_across_a_key_rotation(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.full_verification = {"EAXLE_FRONT"}
    world.vehicles[vin] = primary = world.open(vin)
    world.backend.director.rotate("targets", RoleKeys(("director-targets-2",)))
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    target, _ = world.backend.images.image("eaxle/inverter-2.4.0.bin")
    world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_FRONT", "KDS-INV-110-400-B", target)])

    assert primary.update().status == "installed"

    secondary = primary.ecus[f"{vin}-EAXLE_FRONT"]
    assert secondary.full_verifier is not None
    stored = secondary.full_verifier.director.store
    assert stored.load("2.root") is not None and stored.load("targets") is not None
    assert installed(primary, "EAXLE_FRONT") == "eaxle/inverter-2.4.0.bin"
