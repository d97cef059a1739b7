"""The back end's repositories and director on bad input, supplier delegation, manifest refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tuf.api.metadata import TargetFile

from opensdv.cloud.ota.director import Assignment
from opensdv.cloud.ota.repository import OtaRepositoryError, RoleKeys
from opensdv.link.uptane import ManifestError
from tests.ota_world import installed, make_world

BMS_HW = "KCM-BMS-8S-A1"


def test_a_supplier_signs_its_own_bms_images_and_vehicles_find_them(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.backend.images.delegate(
        "bms-supplier", RoleKeys(("supplier-bms-1", "supplier-bms-2"), 2), ["bms/*"]
    )
    world.add_image("bms/bms-2.3.0.bin", "2.3.0", 23, [BMS_HW])
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    assert world.backend.images.image("bms/bms-2.3.0.bin")[1].role == "bms-supplier"
    assert world.backend.images.image("eaxle/inverter-2.4.0.bin")[1].role == "targets"
    supplier = world.backend.images.repo.targets("bms-supplier")
    assert len(supplier.signatures) == 2 and list(supplier.signed.targets) == ["bms/bms-2.3.0.bin"]
    target, _ = world.backend.images.image("bms/bms-2.3.0.bin")
    world.backend.director.assign(vin, [Assignment(f"{vin}-BMS", BMS_HW, target)])

    assert world.vehicles[vin].update().status == "installed"
    assert installed(world.vehicles[vin], "BMS") == "bms/bms-2.3.0.bin"


@pytest.mark.parametrize(
    ("name", "hardware", "version", "counter", "message"),
    [
        ("../etc/passwd", ["HW"], "1.0.0", 1, "use letters"),
        ("a/b/c.bin", ["HW"], "1.0.0", 1, "at most one '/'"),
        ("fw.bin", [], "1.0.0", 1, "at least one hardware id"),
        ("fw.bin", ["HW"], "one", 1, "version 'one'"),
        ("fw.bin", ["HW"], "1.0.0", -1, "release counter -1"),
    ],
)
def test_bad_images_are_refused_and_nothing_is_published(
    tmp_path: Path, name: str, hardware: list[str], version: str, counter: int, message: str
) -> None:
    world = make_world(tmp_path)
    before = world.backend.images.repo.timestamp().signed.version
    with pytest.raises(OtaRepositoryError, match=message):
        world.backend.images.add_image(name, b"data", hardware, version, counter)
    assert world.backend.images.repo.timestamp().signed.version == before


def test_images_are_immutable(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    with pytest.raises(OtaRepositoryError, match="already exists"):
        world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)


def test_director_refuses_assignments_to_unknown_ecus_or_wrong_hardware(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("honda-e-advance", 1)
    image = TargetFile.from_data("fw.bin", b"x", ["sha256"])
    with pytest.raises(OtaRepositoryError, match="no enrolled ECU"):
        world.backend.director.assign(vin, [Assignment(f"{vin}-NOPE", "HW", image)])
    with pytest.raises(OtaRepositoryError, match="is hardware KDS-INV-113-400-R, not HW"):
        world.backend.director.assign(vin, [Assignment(f"{vin}-EAXLE_REAR", "HW", image)])
    with pytest.raises(OtaRepositoryError, match="is not a VIN"):
        world.backend.director.repository("not-a-vin")


def test_director_refuses_forged_replayed_and_misaddressed_manifests(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    leaf = world.add_vehicle("nissan-leaf-40", 1)
    honda = world.add_vehicle("honda-e-advance", 1)
    manifest = world.vehicles[leaf].manifest()

    tampered = json.loads(manifest)
    tampered["signed"]["vin"] = honda
    with pytest.raises(ManifestError, match="does not match the contents"):
        world.backend.receive_manifest(leaf, json.dumps(tampered).encode())
    with pytest.raises(ManifestError, match="no signature by key"):
        world.backend.receive_manifest(honda, manifest)  # the Honda's primary did not sign it

    first = world.backend.receive_manifest(leaf, manifest)
    assert not first.refused
    replay = world.backend.receive_manifest(leaf, manifest)
    assert set(replay.refused) == {e.serial for e in world.ecus(leaf)}
    assert all("a replay" in why for why in replay.refused.values())
    kinds = {e.kind for e in world.backend.inventory.events(leaf)}
    assert "report-refused" in kinds
