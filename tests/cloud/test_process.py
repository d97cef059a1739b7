"""`opensdv cloud run`'s checks before anything starts, and its ops endpoints."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
import urllib3
from fastapi.testclient import TestClient

from opensdv.cloud.energy.ocpp.credentials import StationCredentials
from opensdv.cloud.energy.ocpp.csms_store import CsmsStore
from opensdv.cloud.energy.ocpp.stations import StationSimulator
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.fleet.operators import Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.process import CloudProcess, CloudProcessError, ops_app, token_key
from opensdv.config import Settings, load_settings
from opensdv.link.fleet import Sample, VehicleStatus
from opensdv.model.vehicles import load_catalog
from opensdv.storage import Database
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from tests.cloud.telemetry.test_store import _postgres_url
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import Fleet


@pytest.mark.parametrize(
    ("only", "message"),
    [
        ({"api"}, "api and ingest share the embedded DuckDB telemetry file"),
        ({"ingest"}, "or give both cloud.telemetry_url"),
        ({"ingest", "ota"}, "api and ingest share"),
        ({"api", "ingest", "billing"}, "--only: billing; the services are api, ingest, ota, energy"),
        (set(), "--only: nothing"),
    ],
)
def test_services_that_cannot_run_as_asked_are_refused_by_name(only: set[str], message: str) -> None:
    with pytest.raises(CloudProcessError, match=message):
        CloudProcess(load_settings(), frozenset(only))


def test_ops_endpoints_say_what_is_ready_and_export_metrics() -> None:
    process = CloudProcess(load_settings(), frozenset({"ota", "energy"}))
    client = TestClient(ops_app(process))
    assert client.get("/healthz").json() == {"status": "ok", "services": ["energy", "ota"]}
    not_yet = client.get("/readyz")
    assert not_yet.status_code == 503 and not_yet.json()["services"] == {"energy": False, "ota": False}
    process.ready["ota"] = process.ready["energy"] = True
    assert client.get("/readyz").status_code == 200
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert 'opensdv_service_ready{service="ota"} 1.0' in metrics.text


async def test_the_energy_service_takes_its_stations_and_keeps_them_across_a_restart(tmp_path: Path) -> None:
    """`cloud run --only energy`: a station boots against the CSMS and runs a transaction; after a
    restart of the service the CSMS still knows it (its state is in the database)."""
    ca = FleetCa.init(tmp_path / "ca")
    ca.provision_service("energy", tmp_path / "identities", hosts=("127.0.0.1",))  # its wss:// listener
    settings = load_settings(data_dir=tmp_path, cloud={"csms_port": 0, "ops_port": 0})
    database = Database(settings.effective_database_url)
    database.migrate()
    password = StationCredentials(database).set_password("CS-1")  # stations: those with credentials
    trust = ssl.create_default_context(cafile=str(ca.cert_file))
    for attempt in range(2):
        process = CloudProcess(settings, frozenset({"energy"}))
        stop = asyncio.Event()
        running = asyncio.create_task(process.run(stop))
        await asyncio.wait_for(process.started.wait(), 30)
        assert process.ready == {"energy": True} and process.addresses["energy"].startswith("wss://")
        async with StationSimulator.connected(process.addresses["energy"], "CS-1", password, tls=trust) as station:
            if attempt == 0:
                tid = await station.plug_in("RFID-1")
                await station.charge(600)
                await station.unplug()
        stop.set()
        await running
    state = CsmsStore(database).load()["CS-1"]
    assert state.booted and state.transactions[tid].ended is not None


async def test_the_ingest_without_its_identity_says_how_to_provision_it(tmp_path: Path) -> None:
    process = CloudProcess(load_settings(data_dir=tmp_path), frozenset({"api", "ingest"}))
    with pytest.raises(CloudProcessError, match="opensdv fleet provision-service ingest --out"):
        await process.run(asyncio.Event())


async def test_api_and_two_ingest_workers_part_on_postgresql(fleet: Fleet, tmp_path: Path) -> None:
    """`cloud run --only ingest` twice (one group) and `--only api`, as three processes would run:
    what a car sends is stored by the workers and served by the API from the shared database."""
    need_mosquitto()
    telemetry = _postgres_url()
    vin = "JN1NSSAN0DD000001"
    async with fleet.mosquitto(free_port(), tmp_path) as mqtt:
        for role in ("ingest", "api"):
            fleet.identity(role)

        def settings(**cloud: object) -> Settings:
            return load_settings(data_dir=tmp_path, cloud={
                "mqtt_url": mqtt, "identities_dir": fleet.services, "telemetry_url": telemetry,
                "ingest_group": "ingest", "api_port": 0, "ops_port": 0, "confirm_s": 0.2, **cloud,
            })  # fmt: skip

        processes = [
            CloudProcess(settings(ingest_id=f"opensdv-ingest-{n}"), frozenset({"ingest"})) for n in (1, 2)
        ] + [CloudProcess(settings(), frozenset({"api"}))]
        database = Database(processes[-1].settings.effective_database_url)
        database.migrate()
        leaf = load_catalog().vehicle("nissan-leaf-40")
        VehicleRegistry(database).register(vin, leaf, leaf.definition.markets[0])
        Operators(database, token_key(tmp_path)).add("ops", "a long secret", "Nissan")
        stop = asyncio.Event()
        running = [asyncio.create_task(p.run(stop)) for p in processes]
        status = VehicleStatus(vin=vin, online=True, at=time.time(), brand="Nissan", model="Leaf 40 kWh")
        uplink = Uplink(fleet.connector(mqtt, vin), status, Spool(tmp_path / "spool.db"))
        car = asyncio.create_task(uplink.run())
        try:
            await asyncio.wait_for(asyncio.gather(*(p.started.wait() for p in processes)), 30)
            await asyncio.wait_for(asyncio.gather(*(p.ingest.subscribed.wait() for p in processes[:2])), 30)
            for n in range(30):
                uplink.record([Sample(path="Vehicle.Speed", value=float(n), ts=time.time())])
            await asyncio.wait_for(uplink.wait_confirmed(), 30)
            assert sum(p.ingest.stored for p in processes[:2]) == 30
            api = processes[-1].addresses["api"]
            form = {"grant_type": "password", "username": "ops", "password": "a long secret"}
            body, form_type = urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
            token = await asyncio.to_thread(urllib3.request, "POST", f"{api}/api/v1/token", body=body, headers=form_type)
            headers = {"Authorization": f"Bearer {json.loads(token.data)['access_token']}"}
            answer = await asyncio.to_thread(urllib3.request, "GET", f"{api}/api/v1/vehicles/{vin}", headers=headers)
            signals = json.loads(answer.data)["signals"]
            assert signals["Vehicle.Speed"]["value"] == 29.0, signals  # written by the workers, read by the API
        finally:
            car.cancel()
            stop.set()
            await asyncio.gather(car, *running, return_exceptions=True)
