"""The director under careless and hostile reads: asking for a car's metadata before it is
enrolled must not break the car for good, asking for many VINs that do not exist must not grow the
server's memory, and over HTTPS nobody but the car itself reads its metadata or reports for it."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
import urllib3

from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.ota.campaigns import CampaignSpec
from opensdv.cloud.ota.director import CACHED_REPOSITORIES
from opensdv.demo.vehicles import demo_vin
from opensdv.model.vehicles import load_catalog
from tests.fleet_identities import Fleet
from tests.ota_world import make_world, served_over_tls


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


def test_only_the_car_itself_reads_its_director_metadata_or_reports_for_it(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    fleet = Fleet(tmp_path / "fleet")
    mine, theirs = world.add_vehicle("nissan-leaf-40", 1), world.add_vehicle("nissan-leaf-40", 2)
    unknown = demo_vin(load_catalog().vehicle("nissan-leaf-40"), 99)
    with served_over_tls(world.backend, fleet) as url:
        car = urllib3.PoolManager(ssl_context=fleet.identity(mine).client_context(), retries=False)
        own = car.request("GET", f"{url}/director/{mine}/2.targets.json")
        assert own.status == 200 and json.loads(own.data)["signed"]["_type"] == "targets"
        foreign = car.request("GET", f"{url}/director/{theirs}/2.targets.json")
        absent = car.request("GET", f"{url}/director/{unknown}/2.targets.json")
        assert foreign.status == absent.status == 404  # enrolled or not: the same answer
        assert json.loads(foreign.data)["detail"].replace(theirs, "V") == json.loads(absent.data)["detail"].replace(unknown, "V")
        assert theirs.encode() not in foreign.data.replace(f"director/{theirs}".encode(), b"")
        # a manifest posted as another car is refused before it is read
        forged = car.request("POST", f"{url}/director/{theirs}/manifest", body=world.vehicles[mine].manifest())
        assert forged.status == 404
        # the image repository is the fleet's: any car reads it
        assert car.request("GET", f"{url}/image/metadata/timestamp.json").status == 200

        # no certificate, or one of another CA: no TLS session at all
        anonymous = ssl.create_default_context(cafile=str(fleet.ca.cert_file))
        rogue = FleetCa.init(tmp_path / "rogue").provision(mine, tmp_path / "rogue-car")
        rogue_context = rogue.client_context()
        rogue_context.load_verify_locations(cafile=str(fleet.ca.cert_file))
        for context in (anonymous, rogue_context):
            with pytest.raises(urllib3.exceptions.HTTPError):
                urllib3.PoolManager(ssl_context=context, retries=False).request("GET", f"{url}/image/metadata/timestamp.json")

        # a revoked car is refused from the next request on, on a connection it already holds
        fleet.ca.revoke(mine)
        assert car.request("GET", f"{url}/director/{mine}/2.targets.json").status == 403
        car.clear()
