"""`opensdv cloud run`'s checks before anything starts, and its ops endpoints."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from opensdv.cloud.energy.ocpp.csms_store import CsmsStore
from opensdv.cloud.energy.ocpp.stations import StationSimulator
from opensdv.cloud.process import CloudProcess, CloudProcessError, ops_app
from opensdv.config import load_settings
from opensdv.storage import Database


@pytest.mark.parametrize(
    ("only", "message"),
    [
        ({"api"}, "api and ingest share the embedded DuckDB telemetry file"),
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
    settings = load_settings(
        data_dir=tmp_path, cloud={"stations": ["CS-1"], "csms_port": 0, "ops_port": 0}
    )
    for attempt in range(2):
        process = CloudProcess(settings, frozenset({"energy"}))
        stop = asyncio.Event()
        running = asyncio.create_task(process.run(stop))
        await asyncio.wait_for(process.started.wait(), 30)
        assert process.ready == {"energy": True}
        async with StationSimulator.connected(process.addresses["energy"], "CS-1") as station:
            if attempt == 0:
                tid = await station.plug_in("RFID-1")
                await station.charge(600)
                await station.unplug()
        stop.set()
        await running
    state = CsmsStore(Database(settings.effective_database_url)).load()["CS-1"]
    assert state.booted and state.transactions[tid].ended is not None


async def test_the_ingest_without_its_identity_says_how_to_provision_it(tmp_path: Path) -> None:
    process = CloudProcess(load_settings(data_dir=tmp_path), frozenset({"api", "ingest"}))
    with pytest.raises(CloudProcessError, match="opensdv fleet provision-service ingest --out"):
        await process.run(asyncio.Event())
