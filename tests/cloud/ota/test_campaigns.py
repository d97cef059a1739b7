"""Campaigns end to end: targeting by hardware id across brands, dependencies, stages that advance
on success and pause on failures, and the UN R156 preconditions on the vehicle."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from opensdv.cloud.ota.campaigns import CampaignSpec, Consent, Requirement
from opensdv.vehicle.ota.primary import VehicleConditions
from tests.ota_world import World, installed, make_world

IMAGE = "eaxle/inverter-2.4.0.bin"
CONSENT = Consent(purpose="smoother torque at low speed", duration_min=12, unavailable_functions=["driving"])


def _cycle(world: World) -> dict[str, str]:
    """Every vehicle runs one update cycle and reports; returns each vehicle's outcome."""
    outcomes = {}
    for vin, primary in world.vehicles.items():
        outcomes[vin] = primary.update().status
        primary.send_manifest()
    return outcomes


def test_three_brands_install_one_failure_rolls_back_and_pauses_the_rollout(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    leaf = world.add_vehicle("nissan-leaf-40", 1)
    honda = world.add_vehicle("honda-e-advance", 1)
    kei = world.add_vehicle("mitsubishi-ek-x-ev", 1)
    world.vehicles[kei] = world.open(kei, behaviour={"EAXLE_FRONT": (lambda _i: True, lambda _i: False)})
    world.add_image(IMAGE, "2.4.0", 24)
    spec = CampaignSpec(id="inverter-2-4", image=IMAGE, stages=[100], mode="forced", error_threshold=0.2)

    progress = world.backend.campaigns.create(spec)
    assert progress.counts == {"assigned": 3}
    _cycle(world)

    progress = world.backend.campaigns.progress("inverter-2-4")
    assert progress.state == "paused" and "1 of 3 vehicles failed" in progress.reason
    assert installed(world.vehicles[leaf], "EAXLE_FRONT") == IMAGE
    assert installed(world.vehicles[honda], "EAXLE_REAR") == IMAGE
    assert installed(world.vehicles[kei], "EAXLE_FRONT").startswith("factory/")
    statuses = {
        vin: status for vin, _stage, status, _detail in world.backend.campaigns.vehicles("inverter-2-4")
    }
    assert statuses == {leaf: "succeeded", honda: "succeeded", kei: "failed"}
    assert world.backend.director.instructions(kei) == {}  # withdrawn: the car keeps what runs


def test_stages_advance_on_success_and_dependencies_exclude_with_the_reason(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vins = [world.add_vehicle("nissan-leaf-40", n) for n in range(1, 5)]
    world.add_image(IMAGE, "2.4.0", 24)
    world.add_image("bms/bms-2.3.0.bin", "2.3.0", 23, ["KCM-BMS-8S-A1"])
    bms = CampaignSpec(
        id="bms-2-3", image="bms/bms-2.3.0.bin", stages=[100], mode="forced", target={"brands": ["Nissan"]}
    )
    world.backend.campaigns.create(bms)
    world.vehicles[vins[0]].update()  # only the first car gets its BMS update before the next campaign
    world.vehicles[vins[0]].send_manifest()
    world.backend.campaigns.cancel("bms-2-3")

    spec = CampaignSpec(
        id="inverter-2-4",
        image=IMAGE,
        requires=[Requirement(ecu="BMS", min_version="2.3")],
        stages=[50, 100],
        mode="soft",
        consent=CONSENT,
    )
    for vin in vins[1:]:
        world.vehicles[vin].consent = lambda _terms: True
    world.vehicles[vins[0]].consent = lambda terms: terms["purpose"] == CONSENT.purpose
    progress = world.backend.campaigns.create(spec)
    assert progress.counts == {"assigned": 1, "excluded": 3}
    excluded = [
        d for _v, _s, status, d in world.backend.campaigns.vehicles("inverter-2-4") if status == "excluded"
    ]
    assert excluded == ["needs BMS >= 2.3, has unknown"] * 3  # factory images are not in the repository

    _cycle(world)
    assert world.backend.campaigns.progress("inverter-2-4").state == "completed"
    assert installed(world.vehicles[vins[0]], "EAXLE_FRONT") == IMAGE


def test_preconditions_postpone_until_parked_with_energy_and_consent(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("honda-e-advance", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    world.backend.campaigns.create(
        CampaignSpec(id="inverter-2-4", image=IMAGE, stages=[100], consent=CONSENT, energy_kwh=2.0)
    )
    primary = world.vehicles[vin]
    asked: list[dict[str, object]] = []
    primary.consent = lambda terms: asked.append(terms) or False

    primary.conditions = lambda: VehicleConditions(parked=False, battery_kwh=30)
    assert primary.update().detail == "the vehicle is not parked"
    primary.conditions = lambda: VehicleConditions(parked=True, battery_kwh=1.5)
    assert "need 2.0 kWh" in primary.update().detail
    primary.conditions = lambda: VehicleConditions(parked=True, battery_kwh=30)
    assert primary.update().detail == "the driver has not consented"
    assert asked[-1] == CONSENT.model_dump()
    primary.send_manifest()
    assert world.backend.campaigns.progress("inverter-2-4").counts == {"assigned": 1}  # postponed, not failed

    primary.consent = lambda _terms: True
    assert primary.update().status == "installed"


def test_maintenance_window_is_kept_by_the_vehicles_trusted_clock(tmp_path: Path) -> None:
    world = make_world(tmp_path)  # the trusted clock starts at 12:00 UTC
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    world.backend.campaigns.create(
        CampaignSpec(id="night", image=IMAGE, stages=[100], mode="forced", maintenance_window_utc=(22, 4))
    )
    primary = world.vehicles[vin]

    assert primary.update().detail == "outside the maintenance window 22:00-04:00 UTC"
    world.clock.advance(hours=13)  # 01:00, inside the window that spans midnight
    assert primary.update().status == "installed"


def test_bad_campaign_specs_are_refused_with_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="stages"):
        CampaignSpec(id="x", image=IMAGE, stages=[50, 40, 100], mode="forced")
    with pytest.raises(ValidationError, match="consent"):
        CampaignSpec(id="x", image=IMAGE, mode="soft")
    with pytest.raises(ValidationError, match="maintenance_window_utc"):
        CampaignSpec(id="x", image=IMAGE, mode="forced", maintenance_window_utc=(3, 3))
    with pytest.raises(ValidationError, match="id"):
        CampaignSpec(id="Bad Id", image=IMAGE, mode="forced")


def test_two_campaigns_for_one_car_travel_together_and_are_withdrawn_separately(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    vin = world.add_vehicle("nissan-leaf-40", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    world.add_image("bms/bms-2.3.0.bin", "2.3.0", 23, ["KCM-BMS-8S-A1"])
    world.backend.campaigns.create(
        CampaignSpec(id="inverter", image=IMAGE, stages=[100], mode="forced", energy_kwh=1)
    )
    world.backend.campaigns.create(
        CampaignSpec(id="bms", image="bms/bms-2.3.0.bin", stages=[100], mode="forced", energy_kwh=1)
    )
    assert set(world.backend.director.instructions(vin)) == {IMAGE, "bms/bms-2.3.0.bin"}
    world.backend.campaigns.pause("bms")
    assert set(world.backend.director.instructions(vin)) == {IMAGE}
    world.backend.campaigns.resume("bms")
    primary = world.vehicles[vin]
    primary.conditions = lambda: VehicleConditions(parked=True, battery_kwh=1.5)
    assert "need 2.0 kWh" in primary.update().detail  # both campaigns' energy counts
    primary.conditions = lambda: VehicleConditions(parked=True, battery_kwh=30)

    assert primary.update().status == "installed"
    primary.send_manifest()

    assert installed(primary, "EAXLE_FRONT") == IMAGE and installed(primary, "BMS") == "bms/bms-2.3.0.bin"
    assert {p.state for p in world.backend.campaigns.all()} == {"completed"}
    assert world.backend.director.instructions(vin) == {}


def test_a_stage_signed_in_group_commits_keeps_the_cars_before_one_that_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cars' new metadata is synced a group at a time; a car that cannot be signed stops the rest,
    but those before it (even in an unfinished group) are committed, as one by one."""
    import opensdv.cloud.ota.director as director_module
    from opensdv.cloud.ota.director import Assignment
    from opensdv.cloud.ota.inventory import VehicleState
    from opensdv.cloud.ota.repository import OtaRepositoryError

    monkeypatch.setattr(director_module, "GROUP_COMMIT", 2)
    world = make_world(tmp_path)
    vins = [world.add_vehicle("nissan-leaf-40", n) for n in range(1, 6)]
    world.add_image(IMAGE, "2.4.0", 24)
    target, _ = world.backend.images.image(IMAGE)
    states = {s.vin: s for s in world.backend.inventory.vehicles(vins)}

    def work(vin: str, ecu: str = "EAXLE_FRONT") -> tuple[VehicleState, list[Assignment]]:
        serial = f"{vin}-{ecu}"
        hardware = next((e.hardware_id for e in states[vin].ecus if e.serial == serial), "KDS-INV-110-400-B")
        return states[vin], [Assignment(serial, hardware, target)]

    director = world.backend.director
    director.assign_many([work(v) for v in vins[:3]], {}, "first")  # a full group, then one more
    assert all(IMAGE in director.instructions(v) for v in vins[:3])
    with pytest.raises(OtaRepositoryError, match="no enrolled ECU"):
        director.assign_many([work(vins[3]), work(vins[4], ecu="NOT_THERE")], {}, "second")
    director.forget(vins)
    assert IMAGE in director.instructions(vins[3])  # committed although its group never filled
    assert IMAGE not in director.instructions(vins[4])
    for vin in vins[:4]:  # what the cars fetch verifies and installs
        assert world.vehicles[vin].update().status == "installed"


def test_a_campaign_id_is_taken_once_even_when_two_creations_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opensdv.cloud.ota.campaigns import Campaigns
    from opensdv.cloud.ota.repository import OtaRepositoryError

    world = make_world(tmp_path)
    world.add_vehicle("nissan-leaf-40", 1)
    world.add_image(IMAGE, "2.4.0", 24)
    spec = CampaignSpec(id="inverter", image=IMAGE, stages=[100], mode="forced")
    first = world.backend.campaigns.create(spec)
    with pytest.raises(OtaRepositoryError, match="'inverter' already exists"):
        world.backend.campaigns.create(spec)
    monkeypatch.setattr(Campaigns, "exists", lambda self, campaign_id: False)  # the other passed the check too
    with pytest.raises(OtaRepositoryError, match="'inverter' already exists"):
        world.backend.campaigns.create(spec)
    assert world.backend.campaigns.progress("inverter") == first
