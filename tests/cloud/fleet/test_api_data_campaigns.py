"""Data collection campaigns through the fleet API: per-tenant creation and visibility, clear
errors, each change a new signed set for exactly the cars it concerns, which the cars verify and
report on; captures listed, plotted from, exported as Parquet."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from fastapi.testclient import TestClient

from opensdv.cloud.fleet.api import FleetCloud, create_api
from opensdv.cloud.fleet.commands import CommandOrder
from opensdv.cloud.fleet.data_campaigns import DataCampaigns
from opensdv.cloud.fleet.operators import PLATFORM, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.demo.vehicles import demo_vin
from opensdv.link.campaigns import CampaignStates, SignedCampaignSet
from opensdv.link.fleet import CampaignTag, Command, Sample, TelemetryBatch
from opensdv.link.signing import CommandVerifier
from opensdv.model.vehicles import load_catalog
from opensdv.model.vss import load_default_vss
from opensdv.storage.database import Database
from opensdv.vehicle.agent.campaign_set import CarFacts, CloudCampaigns
from opensdv.vehicle.agent.campaigns import CampaignEngine
from tests.fleet_identities import Fleet

SECRET = "correct horse battery"
CATALOG = load_default_vss()
SHIPPED = yaml.safe_load((resources.files("opensdv.model") / "data" / "campaigns" / "cruise-disengagements.yaml").read_text())
CRUISE = SHIPPED | {"targets": {}}  # as a brand's operator sends it: its own brand's cars


class World:
    def __init__(self, tmp_path: Path, fleet: Fleet) -> None:
        self.database = Database(f"sqlite:///{tmp_path / 'fleet.db'}")
        self.database.migrate()
        self.registry = VehicleRegistry(self.database)
        self.catalog = load_catalog()
        self.vins: dict[str, str] = {}
        for n, vid in enumerate(["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"], 1):
            vehicle = self.catalog.vehicle(vid)
            self.vins[vehicle.definition.brand] = self.registry.register(demo_vin(vehicle, n), vehicle, "JP").vin
        self.store = TelemetryStore()
        operators = Operators(self.database, b"k" * 32)
        operators.add("nissan-ops", SECRET, "Nissan", can_command=True)
        operators.add("honda-viewer", SECRET, "Honda")
        operators.add("platform", SECRET, PLATFORM, can_command=True)
        self.published: list[tuple[str, bytes]] = []

        async def publish(sets: list[tuple[str, bytes]]) -> None:
            self.published += sets

        async def send(order: CommandOrder) -> Command:
            raise AssertionError("no command in these tests")

        self.fleet = fleet
        self.campaigns = DataCampaigns(self.database, self.registry, fleet.signer(), publish, CATALOG)
        self.client = TestClient(create_api(FleetCloud(self.registry, self.store, operators, send, None, self.campaigns)))
        self.cars = {brand: self._car(vin) for brand, vin in self.vins.items()}

    def _car(self, vin: str) -> CloudCampaigns:
        vehicle = self.catalog.vehicle(self.registry.get(vin).definition_id)
        facts = CarFacts(vin, vehicle.definition.brand, vehicle.definition.model, tuple(vehicle.definition.markets))
        engine = CampaignEngine(CATALOG, lambda record: None)
        return CloudCampaigns(engine, CommandVerifier(vin, self.fleet.ca.cert_file), facts, self.report)

    def report(self, states: CampaignStates) -> None:
        self.store.set_campaign_states([states])  # what the ingest does with the car's retained report

    def deliver(self) -> set[str]:
        """Every set published so far to its car; the VINs that got one."""
        sets, self.published = self.published, []
        for vin, payload in sets:
            brand = next(b for b, v in self.vins.items() if v == vin)
            self.cars[brand].receive(payload)
        return {vin for vin, _ in sets}

    def login(self, name: str) -> dict[str, str]:
        reply = self.client.post("/api/v1/token", data={"grant_type": "password", "username": name, "password": SECRET})
        assert reply.status_code == 200, reply.text
        return {"Authorization": f"Bearer {reply.json()['access_token']}"}


@pytest.fixture
def world(tmp_path: Path, fleet: Fleet) -> World:
    return World(tmp_path, fleet)


def running(car: CloudCampaigns) -> dict[str, int]:
    return {c.id: c.version for c in car.engine.campaigns}


def test_a_brands_campaign_reaches_its_cars_only_and_others_cannot_see_or_change_it(world: World) -> None:
    nissan, honda = world.login("nissan-ops"), world.login("honda-viewer")
    everyone = SHIPPED  # Nissan, Honda and Mitsubishi
    refused = world.client.post("/api/v1/data/campaigns", json=everyone, headers=nissan)
    assert refused.status_code == 403 and "may not target brands ['Honda', 'Mitsubishi']" in refused.json()["detail"]
    created = world.client.post("/api/v1/data/campaigns", json=CRUISE, headers=nissan)
    assert created.status_code == 201, created.text
    assert created.json()["tenant"] == "Nissan" and created.json()["cars"] == 1
    assert world.deliver() == {world.vins["Nissan"]}
    assert running(world.cars["Nissan"]) == {"cruise-disengagements": 1}
    shown = world.client.get("/api/v1/data/campaigns/cruise-disengagements", headers=nissan).json()
    assert [(c["vin"], c["state"]) for c in shown["vehicles"]] == [(world.vins["Nissan"], "active")]
    assert shown["car_states"] == {"active": 1} and shown["document"]["targets"]["brands"] == ["Nissan"]
    # Honda's operator: sees none of it, and may not create campaigns at all
    assert world.client.get("/api/v1/data/campaigns", headers=honda).json() == []
    assert world.client.get("/api/v1/data/campaigns/cruise-disengagements", headers=honda).status_code == 404
    assert world.client.post("/api/v1/data/campaigns/cruise-disengagements/suspend", headers=honda).status_code == 403
    assert world.client.post("/api/v1/data/campaigns", json=CRUISE | {"id": "h"}, headers=honda).status_code == 403
    assert world.client.get("/api/v1/data/campaigns").status_code == 401


def test_bad_documents_and_stale_versions_are_refused_with_the_reason(world: World) -> None:
    nissan = world.login("nissan-ops")
    bad_expression = CRUISE | {"scheme": CRUISE["scheme"] | {"expression": "Vehicle.Speed >"}}
    reply = world.client.post("/api/v1/data/campaigns", json=bad_expression, headers=nissan)
    assert reply.status_code == 422 and "scheme.expression: at character" in reply.json()["detail"]
    unknown = world.client.post("/api/v1/data/campaigns", json=CRUISE | {"signals": [{"path": "Vehicle.Nope"}]}, headers=nissan)
    assert unknown.status_code == 422 and "signals[0].path: unknown VSS path 'Vehicle.Nope'" in unknown.json()["detail"]
    wrong_type = world.client.post("/api/v1/data/campaigns", json=CRUISE | {"priority": 12}, headers=nissan)
    assert wrong_type.status_code == 422 and "priority" in wrong_type.json()["detail"]
    assert world.client.post("/api/v1/data/campaigns", json=CRUISE, headers=nissan).status_code == 201
    again = world.client.post("/api/v1/data/campaigns", json=CRUISE, headers=nissan)
    assert again.status_code == 409 and "needs a higher version" in again.json()["detail"]
    assert world.deliver() == {world.vins["Nissan"]}  # the refused documents published nothing


def test_suspend_resume_delete_and_a_platform_campaign_each_make_a_new_revision(world: World) -> None:
    nissan, platform = world.login("nissan-ops"), world.login("platform")
    leaf = world.cars["Nissan"]
    world.client.post("/api/v1/data/campaigns", json=CRUISE, headers=nissan)
    world.deliver()
    fleet_wide = {"id": "fleet-speed", "version": 1, "signals": [{"path": "Vehicle.Speed"}],
                  "scheme": {"kind": "time", "period_ms": 10_000}}  # fmt: skip
    assert world.client.post("/api/v1/data/campaigns", json=fleet_wide, headers=platform).json()["cars"] == 3
    assert world.deliver() == set(world.vins.values())
    assert running(leaf) == {"cruise-disengagements": 1, "fleet-speed": 1} and leaf.revision == 2
    assert running(world.cars["Honda"]) == {"fleet-speed": 1}
    steps = [("post", "suspend", {"fleet-speed": 1}), ("post", "resume", {"cruise-disengagements": 1, "fleet-speed": 1})]
    for method, action, expected in steps:
        reply = getattr(world.client, method)(f"/api/v1/data/campaigns/cruise-disengagements/{action}", headers=nissan)
        assert reply.status_code == 200, reply.text
        assert world.deliver() == {world.vins["Nissan"]} and running(leaf) == expected
    assert world.client.delete("/api/v1/data/campaigns/cruise-disengagements", headers=nissan).json()["state"] == "deleted"
    assert world.deliver() == {world.vins["Nissan"]} and running(leaf) == {"fleet-speed": 1} and leaf.revision == 5
    assert world.client.post("/api/v1/data/campaigns/cruise-disengagements/resume", headers=nissan).status_code == 409
    audit = [e["action"] for e in world.client.get("/api/v1/audit", headers=nissan).json()]
    assert audit[:4] == ["data-campaign-delete", "data-campaign-resume", "data-campaign-suspend", "data-campaign-create"]


async def test_a_car_registered_later_gets_its_set_and_a_restarted_cloud_republishes(world: World) -> None:
    world.client.post("/api/v1/data/campaigns", json=CRUISE, headers=world.login("nissan-ops"))
    world.deliver()
    vehicle = world.catalog.vehicle("nissan-leaf-40")
    late = world.registry.register(demo_vin(vehicle, 9), vehicle, "JP").vin
    assert await world.campaigns.sync() == 1 and [vin for vin, _ in world.published] == [late]
    world.published = []
    assert await world.campaigns.sync() == 0  # nothing changed
    assert await world.campaigns.sync(republish=True) == 2  # both Leafs' sets, at the same revisions
    revisions = {vin: SignedCampaignSet.model_validate_json(p).content.revision for vin, p in world.published}
    assert revisions == {world.vins["Nissan"]: 1, late: 1}


def test_captures_are_listed_plotted_and_exported_per_campaign(world: World) -> None:
    nissan = world.login("nissan-ops")
    world.client.post("/api/v1/data/campaigns", json=CRUISE, headers=nissan)
    vin = world.vins["Nissan"]
    tag = CampaignTag(id="cruise-disengagements", version=1, trigger=105.0)
    samples = [Sample(path="Vehicle.Speed", value=90.0 - t, ts=95.0 + t) for t in range(16)]
    samples.append(Sample(path="Vehicle.ADAS.CruiseControl.IsActive", value=False, ts=105.0))
    for seq, batch_tag in ((3, tag), (4, None)):  # 4: the car's ordinary telemetry
        assert world.store.add(TelemetryBatch(vin=vin, seq=seq, samples=samples, campaign=batch_tag), 200.0)
    assert not world.store.add(TelemetryBatch(vin=vin, seq=3, samples=samples, campaign=tag), 201.0)  # a repeat
    shown = world.client.get("/api/v1/data/campaigns/cruise-disengagements", headers=nissan).json()
    assert [(c["vin"], c["seq"], c["trigger"], c["samples"]) for c in shown["capture_list"]] == [(vin, 3, 105.0, 17)]
    (listed,) = world.client.get("/api/v1/data/campaigns", headers=nissan).json()
    assert listed["captures"] == shown["captures"] == 1
    capture: dict[str, Any] = world.client.get(
        f"/api/v1/data/campaigns/cruise-disengagements/captures/{vin}/3", headers=nissan
    ).json()
    assert capture["signals"]["Vehicle.ADAS.CruiseControl.IsActive"] == [[105.0, False]]
    assert [t for t, _ in capture["signals"]["Vehicle.Speed"]] == [95.0 + t for t in range(16)]
    reply = world.client.get("/api/v1/data/campaigns/cruise-disengagements/export", headers=nissan)
    assert reply.status_code == 200
    table = pq.read_table(io.BytesIO(reply.content))
    assert table.num_rows == 17 and set(table.column("vin").to_pylist()) == {vin}
    assert table.column_names == ["vin", "version", "trigger_ts", "path", "ts", "num", "other"]
    assert world.client.get(
        f"/api/v1/data/campaigns/cruise-disengagements/captures/{vin}/4", headers=nissan
    ).status_code == 404  # ordinary telemetry is no capture
