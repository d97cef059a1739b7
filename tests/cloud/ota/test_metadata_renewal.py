"""The OTA service keeps its metadata alive: without renewal every car refuses the repositories a
day after the last change (timestamp expiry); renewed ahead of expiry, cars keep updating for
ever. Time is the test's clock."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tuf.api.metadata import Metadata

from tests.ota_world import installed, make_world

AHEAD = timedelta(hours=6)


def _expired_roles(world_path: Path, now: object) -> list[str]:
    found = []
    for path in world_path.rglob("timestamp.json"):
        if Metadata.from_bytes(path.read_bytes()).signed.is_expired(now):  # type: ignore[arg-type]
            found.append(str(path.relative_to(world_path)))
    return found


def test_renewal_ahead_of_expiry_keeps_cars_updating(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    assert world.backend.renew_metadata(AHEAD) == {}  # nothing is near its expiry yet

    world.clock.advance(hours=20)  # within 6 h of the timestamps' one-day expiry
    renewed = world.backend.renew_metadata(AHEAD)
    assert renewed["image repository"] == ["timestamp"] and renewed[f"director ({vin})"] == ["timestamp"]
    for _day in range(9):  # past the snapshots' week: the service renews every few hours
        for _ in range(4):
            world.clock.advance(hours=5)
            world.backend.renew_metadata(AHEAD)
    assert _expired_roles(tmp_path / "cloud", world.clock.now) == []
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    from opensdv.cloud.ota.campaigns import CampaignSpec

    world.backend.campaigns.create(CampaignSpec(id="c", image="eaxle/inverter-2.4.0.bin", stages=[100], mode="forced"))
    outcome = world.vehicles[vin].update()
    assert outcome.status == "installed", outcome
    assert installed(world.vehicles[vin], "EAXLE_FRONT").endswith("inverter-2.4.0.bin")


def test_without_renewal_cars_refuse_the_repositories_after_a_day(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.clock.advance(hours=25)
    assert _expired_roles(tmp_path / "cloud", world.clock.now) != []
    outcome = world.vehicles[vin].update()
    assert outcome.status != "installed" and "expired" in outcome.detail.lower(), outcome
