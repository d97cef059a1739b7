"""Apps over the air: an app set is the APPS ECU's image — signed, verified, A/B-installed, rolled
back if the car cannot run it — and the runtime then runs exactly the set's apps."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from opensdv.cloud.ota.campaigns import CampaignSpec
from opensdv.model.vehicles import APP_RUNTIME_HARDWARE_ID, load_catalog
from opensdv.vehicle.apps.errors import AppError
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.package import app_set, check_app_set, unpack_app_set
from opensdv.vehicle.apps.runtime import AppRuntime
from opensdv.vehicle.apps.testing import app_broker
from opensdv.vehicle.broker import generate_key_pair
from tests.ota_world import installed, make_world


def _healthy_for(vehicle_id: str) -> object:
    vehicle = load_catalog().vehicle(vehicle_id)

    def healthy(data: bytes) -> bool:
        with tempfile.TemporaryDirectory() as scratch:
            try:
                check_app_set(data, Path(scratch), vehicle)
            except AppError:
                return False
        return True

    return healthy


def test_app_sets_are_reproducible_and_unpack_safely(tmp_path: Path) -> None:
    apps = [EXAMPLES / "departure-charge", EXAMPLES / "eco-coach"]
    data = app_set(apps)
    assert data == app_set(reversed(apps))  # same sources, same bytes, same hash
    unpacked = unpack_app_set(data, tmp_path / "out")
    assert [d.name for d in unpacked] == ["departure-charge", "eco-coach"]
    with pytest.raises(AppError, match="not a valid app set"):
        unpack_app_set(b"\x1f\x8bnot really", tmp_path / "bad")


async def test_an_app_set_installs_over_the_air_and_a_set_the_car_cannot_run_rolls_back(
    tmp_path: Path,
) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("honda-e-advance", 1)
    world.vehicles[vin] = primary = world.open(
        vin, behaviour={"APPS": (lambda _b: True, _healthy_for("honda-e-advance"))}
    )
    good = app_set([EXAMPLES / "departure-charge"])
    world.backend.images.add_image("apps/app-set-1.0.0.tar.gz", good, [APP_RUNTIME_HARDWARE_ID], "1.0.0", 1)
    world.backend.campaigns.create(
        CampaignSpec(id="apps-1", image="apps/app-set-1.0.0.tar.gz", stages=[100], mode="forced")
    )

    assert primary.update().status == "installed"
    primary.send_manifest()
    assert installed(primary, "APPS") == "apps/app-set-1.0.0.tar.gz"
    assert world.backend.campaigns.progress("apps-1").state == "completed"

    private, _public = generate_key_pair("ES256")
    async with app_broker() as server:
        runtime = AppRuntime(
            load_catalog().vehicle("honda-e-advance"), server.target, private, tmp_path / "logs"
        )
        apps_ecu = primary.ecus[f"{vin}-APPS"]
        statuses = await runtime.apply_set(
            apps_ecu.slots.read(apps_ecu.slots.state.active), tmp_path / "apps"
        )
        assert [(s.name, s.state) for s in statuses] == [("departure-charge", "running")]
        # an update that removes the app stops it
        await runtime.apply_set(app_set([]), tmp_path / "apps")
        assert [(s.name, s.state) for s in runtime.statuses()] == []
        await runtime.stop_all()

    bad_dir = tmp_path / "sports-mode"
    bad_dir.mkdir()
    (bad_dir / "app.toml").write_text(
        'name = "sports-mode"\nversion = "1.0.0"\npublisher = "t"\n[requires]\npack_voltage_class = "800V"\n'
    )
    bad = app_set([EXAMPLES / "departure-charge", bad_dir])
    world.backend.images.add_image("apps/app-set-1.1.0.tar.gz", bad, [APP_RUNTIME_HARDWARE_ID], "1.1.0", 2)
    world.backend.campaigns.create(
        CampaignSpec(id="apps-2", image="apps/app-set-1.1.0.tar.gz", stages=[100], mode="forced")
    )

    outcome = primary.update()
    primary.send_manifest()

    assert outcome.results == {f"{vin}-APPS": "health-check"}
    assert installed(primary, "APPS") == "apps/app-set-1.0.0.tar.gz"  # rolled back to the set that works
    assert world.backend.campaigns.progress("apps-2").state == "paused"
