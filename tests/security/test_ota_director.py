"""The director under careless and hostile reads: asking for a car's metadata before it is
enrolled must not break the car for good, and asking for many VINs that do not exist must not
grow the server's memory."""

from __future__ import annotations

from pathlib import Path

from opensdv.cloud.ota.campaigns import CampaignSpec
from opensdv.cloud.ota.director import CACHED_REPOSITORIES
from opensdv.demo.vehicles import demo_vin
from opensdv.model.vehicles import load_catalog
from tests.ota_world import make_world


def test_a_read_before_enrolment_leaves_the_car_able_to_update(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = demo_vin(load_catalog().vehicle("nissan-leaf-40"), 1)
    assert world.backend.read(f"director/{vin}/timestamp.json") is None  # not enrolled yet: 404
    world.add_vehicle("nissan-leaf-40", 1)  # enrolled afterwards, in the same process
    assert world.backend.read(f"director/{vin}/timestamp.json") is not None
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    world.backend.campaigns.create(CampaignSpec(id="inv", image="eaxle/inverter-2.4.0.bin", stages=[100], mode="forced"))
    assert world.vehicles[vin].update().status == "installed"


def test_reads_of_unknown_vins_leave_nothing_behind(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    director = world.backend.director
    for n in range(CACHED_REPOSITORIES + 500):
        assert world.backend.read(f"director/JN1ZZZZZ0ZZ{n:06d}/timestamp.json") is None
    assert len(director._repos) == 0  # nothing cached for VINs without a repository
    assert not (director.path / "vehicles").exists() or not any((director.path / "vehicles").iterdir())


def test_a_captured_manifest_replayed_later_is_refused(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    primary = world.vehicles[vin]
    captured = primary.manifest()  # what an attacker on the path keeps
    director = world.backend.director
    assert not director.receive_manifest(vin, captured).refused
    world.clock.advance(minutes=5)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    world.backend.campaigns.create(CampaignSpec(id="inv", image="eaxle/inverter-2.4.0.bin", stages=[100], mode="forced"))
    assert primary.update().status == "installed"  # its next manifest reports the new version
    before = {e.serial: e.installed_version for e in world.backend.inventory.vehicle(vin).ecus}
    replayed = director.receive_manifest(vin, captured)  # the old manifest again, after the new one
    assert replayed.refused and set(replayed.refused) == {e.serial for e in world.backend.inventory.vehicle(vin).ecus}
    assert all("replay" in why for why in replayed.refused.values())
    assert {e.serial: e.installed_version for e in world.backend.inventory.vehicle(vin).ecus} == before  # nothing rewritten
