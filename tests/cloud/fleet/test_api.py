"""The fleet REST API: OAuth2 tokens, tenants (another brand's car is a 404), telemetry queries,
commands onto the link, campaigns."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opensdv.cloud.energy.battery.passport import validate_passport
from opensdv.cloud.fleet.api import FleetCloud, create_api
from opensdv.cloud.fleet.commands import CommandOrder
from opensdv.cloud.fleet.operators import PLATFORM, AuthError, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.demo.vehicles import demo_vin
from opensdv.link.fleet import Command, Sample, TelemetryBatch, VehicleEvent, VehicleStatus
from opensdv.model.vehicles import load_catalog
from opensdv.physics import VehicleParams, simulate
from opensdv.storage.database import Database
from tests.fleet_identities import Fleet
from tests.ota_world import make_world

SECRET = "correct horse battery"


@pytest.fixture
def cloud(tmp_path: Path, fleet: Fleet) -> tuple[TestClient, dict[str, str], list[tuple[str, Command]]]:
    database = Database(f"sqlite:///{tmp_path / 'fleet.db'}")
    database.migrate()
    registry = VehicleRegistry(database)
    catalog = load_catalog()
    vins = {}
    for n, vid in enumerate(["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"], 1):
        vehicle = catalog.vehicle(vid)
        vins[vehicle.definition.brand] = registry.register(demo_vin(vehicle, n), vehicle, "JP").vin
    store = TelemetryStore()
    for brand, vin in vins.items():
        store.set_status(
            VehicleStatus(vin=vin, online=True, at=1.0, brand=brand, software={"EAXLE_FRONT": "2.4.0"})
        )
        samples = [Sample(path="Vehicle.Speed", value=float(t), ts=float(t)) for t in range(100)]
        store.add(
            TelemetryBatch(
                vin=vin,
                seq=0,
                samples=[
                    *samples,
                    Sample(
                        path="Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", value=77.0, ts=99.0
                    ),
                ],
            ),
            100.0,
        )
    operators = Operators(database, b"k" * 32)
    operators.add("nissan-ops", SECRET, "Nissan", can_command=True)
    operators.add("honda-viewer", SECRET, "Honda")
    operators.add("platform", SECRET, PLATFORM, can_command=True)
    sent: list[tuple[str, Command]] = []

    signer = fleet.signer()

    async def send(order: CommandOrder) -> Command:
        command = signer.command(order.vin, order.tenant, order.operator, order.path, order.value)
        sent.append((order.vin, command))
        return command

    client = TestClient(create_api(FleetCloud(registry, store, operators, send)))
    return client, vins, sent


def _login(client: TestClient, name: str, grant: str = "password") -> dict[str, str]:
    form = {"grant_type": grant, "username": name, "password": SECRET} if grant == "password" else {
        "grant_type": grant, "client_id": name, "client_secret": SECRET}  # fmt: skip
    reply = client.post("/api/v1/token", data=form)
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_tenants_see_only_their_brand_and_other_cars_are_404(
    cloud: tuple[TestClient, dict[str, str], list],
) -> None:
    client, vins, _ = cloud
    nissan, platform = _login(client, "nissan-ops"), _login(client, "platform", "client_credentials")
    listed = client.get("/api/v1/fleet", headers=nissan)
    assert listed.status_code == 200, listed.text
    assert [v["brand"] for v in listed.json()] == ["Nissan"]
    assert sorted(v["brand"] for v in client.get("/api/v1/fleet", headers=platform).json()) == [
        "Honda",
        "Mitsubishi",
        "Nissan",
    ]
    honda_car = client.get(f"/api/v1/vehicles/{vins['Honda']}", headers=nissan)
    unknown = client.get("/api/v1/vehicles/JN1NSSAN0DD999999", headers=nissan)
    assert honda_car.status_code == unknown.status_code == 404 and honda_car.json() == {
        "detail": f"no vehicle {vins['Honda']}"
    }
    own = client.get(f"/api/v1/vehicles/{vins['Nissan']}", headers=nissan).json()
    assert own["soc"] == 77.0 and own["online"] and own["signals"]["Vehicle.Speed"]["value"] == 99.0
    assert {e["name"] for e in own["ecus"]} >= {"BMS", "EAXLE_FRONT", "APPS"}


def test_series_down_samples(cloud: tuple[TestClient, dict[str, str], list]) -> None:
    client, vins, _ = cloud
    nissan = _login(client, "nissan-ops")
    raw = client.get(
        f"/api/v1/vehicles/{vins['Nissan']}/series",
        params={"path": "Vehicle.Speed", "start": 0, "end": 100},
        headers=nissan,
    ).json()
    assert len(raw) == 100
    buckets = client.get(
        f"/api/v1/vehicles/{vins['Nissan']}/series",
        params={"path": "Vehicle.Speed", "start": 0, "end": 100, "bucket_s": 10}, headers=nissan,
    ).json()  # fmt: skip
    assert buckets[:2] == [[0.0, 4.5], [10.0, 14.5]] and len(buckets) == 10


def test_tokens_and_commands(cloud: tuple[TestClient, dict[str, str], list]) -> None:
    client, vins, sent = cloud
    assert client.get("/api/v1/fleet").status_code == 401
    assert client.get("/api/v1/fleet", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    bad = client.post(
        "/api/v1/token", data={"grant_type": "password", "username": "nissan-ops", "password": "wrong"}
    )
    assert bad.status_code == 400 and bad.json()["detail"] == {"error": "invalid_client"}
    honda = _login(client, "honda-viewer")
    body = {"path": "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit", "value": 80}
    assert (
        client.post(f"/api/v1/vehicles/{vins['Honda']}/commands", json=body, headers=honda).status_code == 403
    )
    nissan = _login(client, "nissan-ops")
    assert (
        client.post(f"/api/v1/vehicles/{vins['Honda']}/commands", json=body, headers=nissan).status_code
        == 404
    )
    accepted = client.post(f"/api/v1/vehicles/{vins['Nissan']}/commands", json=body, headers=nissan)
    assert (
        accepted.status_code == 202 and sent[0][0] == vins["Nissan"] and sent[0][1].operator == "nissan-ops"
    )
    assert client.get("/openapi.json").json()["info"]["title"] == "OpenSDV fleet cloud"
    assert client.get("/api/v1/energy/sites", headers=nissan).json() == []  # no site in this cloud
    assert client.get("/api/v1/energy/sites/depot", headers=nissan).status_code == 404


def test_operator_secrets_are_hashed_and_checked(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'o.db'}")
    database.migrate()
    operators = Operators(database, b"k" * 32)
    with pytest.raises(AuthError, match="at least 12"):
        operators.add("x", "short", "Nissan")
    operators.add("x", SECRET, "Nissan")
    with pytest.raises(AuthError, match="already exists"):
        operators.add("x", SECRET, "Nissan")
    with pytest.raises(AuthError):
        operators.authenticate("x", "wrong secret!!")
    with database.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT secret_hash FROM operators").scalar_one()
    assert stored.startswith("scrypt$") and SECRET not in stored
    token = operators.token(operators.authenticate("x", SECRET), now=0)
    with pytest.raises(AuthError, match="expired"):
        operators.verify(token)


def test_live_signals_as_server_sent_events(cloud: tuple[TestClient, dict[str, str], list]) -> None:
    client, vins, _ = cloud
    nissan = _login(client, "nissan-ops")
    leaf, honda = vins["Nissan"], vins["Honda"]
    assert client.post(f"/api/v1/vehicles/{honda}/live-ticket", headers=nissan).status_code == 404
    ticket = client.post(f"/api/v1/vehicles/{leaf}/live-ticket", headers=nissan).json()["ticket"]
    with client.stream("GET", f"/api/v1/vehicles/{leaf}/live", params={"ticket": ticket}) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == "event: signals"
        data = json.loads(next(lines).removeprefix("data: "))
    assert data["Vehicle.Speed"]["value"] == 99.0


def test_a_stream_ticket_opens_one_stream_of_one_car_and_is_no_bearer_token(
    cloud: tuple[TestClient, dict[str, str], list],
) -> None:
    client, vins, _ = cloud
    nissan = _login(client, "nissan-ops")
    token = nissan["Authorization"].removeprefix("Bearer ")
    leaf = vins["Nissan"]
    assert client.get(f"/api/v1/vehicles/{leaf}/live", params={"ticket": token}).status_code == 401  # not a ticket
    assert client.get(f"/api/v1/vehicles/{leaf}/live", params={"token": token}).status_code == 422  # no token in URLs
    ticket = client.post(f"/api/v1/vehicles/{leaf}/live-ticket", headers=nissan).json()["ticket"]
    assert client.get("/api/v1/fleet", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401
    assert client.get(f"/api/v1/vehicles/{vins['Honda']}/live", params={"ticket": ticket}).status_code == 401  # another car
    with client.stream("GET", f"/api/v1/vehicles/{leaf}/live", params={"ticket": ticket}) as stream:
        assert stream.status_code == 200
    assert client.get(f"/api/v1/vehicles/{leaf}/live", params={"ticket": ticket}).status_code == 401  # used once


def test_api_docs_are_off_unless_configured(cloud: tuple[TestClient, dict[str, str], list]) -> None:
    client, _, _ = cloud
    assert client.get("/docs").status_code == 404  # Swagger UI would load scripts from a CDN
    assert client.get("/openapi.json").status_code == 200


def test_passports_are_per_tenant_and_validate(cloud: tuple[TestClient, dict[str, str], list]) -> None:
    client, vins, _ = cloud
    nissan = _login(client, "nissan-ops")
    assert client.get(f"/api/v1/vehicles/{vins['Honda']}/passport", headers=nissan).status_code == 404
    reply = client.get(f"/api/v1/vehicles/{vins['Nissan']}/passport", params={"years": 8}, headers=nissan)
    assert reply.status_code == 200
    document = reply.json()
    validate_passport(document)
    assert document["identity"]["vehicle"]["vin"] == vins["Nissan"]
    assert 60 < document["state_of_health"]["soh_percent"] < 100 and len(document["modules"]) == 12
    younger = client.get(
        f"/api/v1/vehicles/{vins['Nissan']}/passport", params={"years": 1}, headers=nissan
    ).json()
    assert younger["state_of_health"]["soh_percent"] > document["state_of_health"]["soh_percent"]
    bad = client.get(f"/api/v1/vehicles/{vins['Nissan']}/passport", params={"years": 99}, headers=nissan)
    assert bad.status_code == 422 and "years" in bad.text


def test_alerts_count_the_recent_events(cloud: tuple[TestClient, dict[str, str], list]) -> None:
    client, vins, _ = cloud
    store: TelemetryStore = client.app.state.cloud.telemetry  # type: ignore[attr-defined]
    now = time.time()
    store.add_events([VehicleEvent(vin=vins["Nissan"], kind="safety-denied", detail="trunk at 20 km/h", at=now),
                      VehicleEvent(vin=vins["Nissan"], kind="dtc", at=now - 2 * 24 * 3600)])  # fmt: skip
    fleet = {
        car["vin"]: car for car in client.get("/api/v1/fleet", headers=_login(client, "platform")).json()
    }
    assert fleet[vins["Nissan"]]["alerts"] == 1 and fleet[vins["Honda"]]["alerts"] == 0


def test_campaigns_are_created_and_steered_by_the_platform_only(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    leaf = world.add_vehicle("nissan-leaf-40", 1)
    world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24)
    operators = Operators(world.backend.database, b"k" * 32)
    operators.add("platform", SECRET, PLATFORM)
    operators.add("nissan-ops", SECRET, "Nissan")

    async def send(order: CommandOrder) -> Command:
        raise AssertionError("no commands here")

    cloud = FleetCloud(world.registry, TelemetryStore(), operators, send, world.backend)
    client = TestClient(create_api(cloud))
    spec = {"id": "inverter-2-4", "image": "eaxle/inverter-2.4.0.bin", "stages": [50, 100], "mode": "forced"}
    assert (
        client.post("/api/v1/campaigns", json=spec, headers=_login(client, "nissan-ops")).status_code == 403
    )
    platform = _login(client, "platform")
    created = client.post("/api/v1/campaigns", json=spec, headers=platform)
    assert created.status_code == 201 and created.json()["state"] == "running"
    assert world.backend.director.instructions(leaf)  # the car has its instructions
    again = client.post("/api/v1/campaigns", json=spec, headers=platform)
    assert again.status_code == 409 and "already exists" in again.text
    unknown = client.post(
        "/api/v1/campaigns", json={**spec, "id": "x", "image": "nope.bin"}, headers=platform
    )
    assert unknown.status_code == 409 and "nope.bin" in unknown.text
    bad = client.post("/api/v1/campaigns", json={**spec, "stages": [50, 20]}, headers=platform)
    assert bad.status_code == 422 and "must increase" in bad.text
    paused = client.post("/api/v1/campaigns/inverter-2-4/pause", headers=platform)
    assert paused.json()["state"] == "paused"
    assert [c["id"] for c in client.get("/api/v1/campaigns", headers=platform).json()] == ["inverter-2-4"]
    assert client.get("/api/v1/campaigns", headers=_login(client, "nissan-ops")).json() == []  # no other brand's results


def _battery_telemetry(vin: str, vehicle_id: str, soh: float, start: float) -> TelemetryBatch:
    """A WLTC drive of an aged pack, by the twin, as the agent would send it: VSS paths and signs,
    one sample a second, rounded as the car rounds them."""
    base = VehicleParams.from_vehicles([load_catalog().vehicle(vehicle_id)])
    aged = base.with_changes(capacity_ah=base.capacity_ah * soh, r0_ohm=base.r0_ohm * (1 + 1.5 * (1 - soh)))
    traces = simulate(aged, "wltc_class3b", soc_start=0.9, keep_traces=True).traces
    battery = "Vehicle.Powertrain.TractionBattery."
    samples = []
    for k in range(traces["soc"].shape[1]):
        at = start + k
        samples += [
            Sample(path=battery + "CurrentCurrent", value=round(-float(traces["current_a"][0, k]), 1), ts=at),
            Sample(path=battery + "CurrentVoltage", value=round(float(traces["voltage_v"][0, k]), 1), ts=at),
            Sample(path=battery + "StateOfCharge.Current", value=round(float(traces["soc"][0, k]) * 100, 1), ts=at),
        ]  # fmt: skip
    return TelemetryBatch(vin=vin, seq=1, samples=samples)


def test_pack_health_is_measured_from_the_cars_own_telemetry(
    cloud: tuple[TestClient, dict[str, str], list],
) -> None:
    client, vins, _ = cloud
    store: TelemetryStore = client.app.state.cloud.telemetry  # type: ignore[attr-defined]
    store.add(_battery_telemetry(vins["Nissan"], "nissan-leaf-40", 0.82, time.time() - 3600), time.time())
    nissan = _login(client, "nissan-ops")
    health = client.get(f"/api/v1/vehicles/{vins['Nissan']}/health", headers=nissan).json()
    assert health["samples"] > 1500 and health["notes"] == []
    assert health["soh_percent"] == pytest.approx(82, abs=0.5)  # the pack the twin drove had 82 %
    assert health["capacity_ah"] == pytest.approx(0.82 * health["rated_capacity_ah"], rel=0.01)
    assert health["resistance_factor"] == pytest.approx(1.27, rel=0.03)  # and 1.27x its new resistance
    # the Honda sent no battery telemetry (and its operators cannot see the Nissan at all)
    honda = _login(client, "honda-viewer")
    none = client.get(f"/api/v1/vehicles/{vins['Honda']}/health", headers=honda).json()
    assert none["soh_percent"] is None and none["notes"] == ["no battery telemetry in the window"]
    assert client.get(f"/api/v1/vehicles/{vins['Nissan']}/health", headers=honda).status_code == 404
    assert client.get(f"/api/v1/vehicles/{vins['Nissan']}/health?hours=0", headers=nissan).status_code == 422
    # an hour ago is outside a 10-minute window
    recent = client.get(f"/api/v1/vehicles/{vins['Nissan']}/health?hours=0.1", headers=nissan).json()
    assert recent["samples"] == 0 and recent["soh_percent"] is None
