"""The OTA back end over real HTTP (uvicorn), a vehicle updating through it, and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3
import yaml
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.ota.campaigns import CampaignSpec
from opensdv.vehicle.ota.transport import HttpTransport
from tests.fleet_identities import Fleet
from tests.ota_world import World, installed, make_world, served_over_tls

IMAGE = "eaxle/inverter-2.4.0.bin"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[World, Fleet, str]]:
    world = make_world(tmp_path)
    fleet = Fleet(tmp_path / "fleet")
    with served_over_tls(world.backend, fleet) as url:
        yield world, fleet, url


def test_vehicle_updates_over_https_and_images_support_range_requests(served: tuple[World, Fleet, str]) -> None:
    world, fleet, url = served
    vin = world.add_vehicle("nissan-leaf-40", 1)
    tls = fleet.identity(vin).client_context()
    with HttpTransport(url, tls=tls) as transport:
        world.vehicles[vin] = world.open(vin, transport=transport)
        data = world.add_image(IMAGE, "2.4.0", 24)
        world.backend.campaigns.create(
            CampaignSpec(id="inverter-2-4", image=IMAGE, stages=[100], mode="forced")
        )

        outcome = world.vehicles[vin].update()
        world.vehicles[vin].send_manifest()

    assert outcome.status == "installed"
    assert installed(world.vehicles[vin], "EAXLE_FRONT") == IMAGE
    assert world.backend.campaigns.progress("inverter-2-4").state == "completed"
    target, _ = world.backend.images.image(IMAGE)
    http = urllib3.PoolManager(ssl_context=tls)
    part = http.request(
        "GET",
        f"{url}/image/targets/eaxle/{target.hashes['sha256']}.inverter-2.4.0.bin",
        headers={"Range": "bytes=100-199"},
    )
    assert part.status == 206 and part.data == data[100:200]
    assert http.request("GET", f"{url}/image/targets/../../keys/image-root-1.pem").status == 404
    refused = http.request("POST", f"{url}/director/{vin}/manifest", body=b"{not json")
    assert refused.status == 400 and b"not a signed JSON envelope" in refused.data
    http.clear()


def test_cli_init_add_image_and_campaign(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"OPENSDV_DATA_DIR": str(tmp_path)}
    image = tmp_path / "inverter.bin"
    image.write_bytes(b"\x7fELF" + bytes(4096))
    spec = tmp_path / "campaign.yaml"
    spec.write_text(yaml.safe_dump({"id": "inverter-2-4", "image": IMAGE, "mode": "forced", "stages": [100]}))

    assert runner.invoke(app, ["ota", "init"], env=env).exit_code == 0
    add = ["ota", "add-image", str(image), "--name", IMAGE, "--version", "2.4.0", "--release-counter", "24"]
    added = runner.invoke(app, [*add, "--hardware", "KDS-INV-110-400-B"], env=env)
    assert added.exit_code == 0 and "signed by role" in added.output and "targets" in added.output
    created = runner.invoke(app, ["ota", "campaign", "create", str(spec)], env=env)
    assert created.exit_code == 0 and "campaign inverter-2-4: running" in created.output
    paused = runner.invoke(app, ["ota", "campaign", "pause", "inverter-2-4"], env=env)
    assert "paused" in paused.output
    again = runner.invoke(app, [*add, "--hardware", "X"], env=env)
    assert again.exit_code != 0
    assert "already exists" in str(again.exception)
