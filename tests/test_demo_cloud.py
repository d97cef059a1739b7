"""The whole platform as the demo runs it: cars -> CAN -> broker -> agent -> MQTT -> ingest ->
DuckDB -> REST API (over real HTTP), and commands back down through the safety guard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3

from opensdv.demo.cloud import start_demo_cloud
from opensdv.demo.energy import start_demo_site
from opensdv.demo.ota import start_demo_ota
from opensdv.demo.vehicles import start_demo_vehicles, stop_demo_vehicles
from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.broker import ALLOW_ALL
from opensdv.vehicle.ota.primary import VehicleConditions

LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
TRUNK = "Vehicle.Body.Trunk.Rear.IsOpen"


async def _http(method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    def call() -> tuple[int, Any]:
        reply = urllib3.request(method, url, **kwargs)
        return reply.status, json.loads(reply.data or b"null")

    return await asyncio.to_thread(call)


async def test_cars_to_cloud_and_commands_back(tmp_path: Path) -> None:
    running = await start_demo_vehicles(load_catalog().all_vehicles(), base_port=0)
    ota = start_demo_ota(running, tmp_path / "ota")
    energy = await start_demo_site(running, tick_s=0.2)
    cloud = await start_demo_cloud(running, ota, tmp_path, http_port=0, sites={"depot": energy.site})
    try:
        vins = [item.vin for item in running]
        await asyncio.wait_for(cloud.ingest.written.wait_until(
            lambda: all(len(cloud.store.sequences(v)) >= 2 for v in vins) and len(cloud.store.statuses()) == 4
        ), 30)

        async def login(name: str) -> dict[str, str]:
            form = {"grant_type": "password", "username": name, "password": cloud.credentials[name]}
            encoded = urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
            status, body = await _http("POST", f"{cloud.url}/api/v1/token", body=encoded, headers=headers)
            assert status == 200, body
            return {"Authorization": f"Bearer {body['access_token']}"}

        platform, nissan = await login("platform"), await login("nissan")
        status, fleet = await _http("GET", f"{cloud.url}/api/v1/fleet", headers=platform)
        assert (
            status == 200
            and len(fleet) == 4
            and all(car["online"] and car["speed"] is not None for car in fleet)
        )
        _, own = await _http("GET", f"{cloud.url}/api/v1/fleet", headers=nissan)
        assert {car["brand"] for car in own} == {"Nissan"} and len(own) == 2
        page = await asyncio.to_thread(urllib3.request, "GET", f"{cloud.url}/")
        assert page.status == 200 and b"OpenSDV fleet" in page.data  # the dashboard

        leaf = next(item for item in running if item.vehicle.id == "nissan-leaf-40")
        body = json.dumps({"path": LIMIT, "value": 60}).encode()
        headers = {**nissan, "Content-Type": "application/json"}
        status, _ = await _http(
            "POST", f"{cloud.url}/api/v1/vehicles/{leaf.vin}/commands", body=body, headers=headers
        )
        assert status == 202
        trunk = json.dumps({"path": TRUNK, "value": True}).encode()
        await _http("POST", f"{cloud.url}/api/v1/vehicles/{leaf.vin}/commands", body=trunk, headers=headers)
        await asyncio.wait_for(cloud.ingest.written.wait_until(
            lambda: any(e.kind == "safety-denied" for e in cloud.store.events(leaf.vin))
        ), 30)
        target = leaf.broker.get_target(LIMIT, ALLOW_ALL)
        assert target is not None and target.value == 60  # executed in the car, under the operator's name
        denial = next(e for e in cloud.store.events(leaf.vin) if e.kind == "safety-denied")
        assert denial.detail.startswith(f"cloud:nissan: {TRUNK} = True:")

        # an OTA install shows up in the fleet view: the car's status carries its new versions
        parked = VehicleConditions(parked=True, battery_kwh=20.0)
        await asyncio.to_thread(ota.cycle, dict.fromkeys(ota.vehicles, parked))
        honda = next(item.vin for item in running if item.vehicle.definition.brand == "Honda")
        await asyncio.wait_for(cloud.ingest.written.wait_until(
            lambda: cloud.store.statuses()[honda].software.get("EAXLE_REAR") == "2.4.0"
        ), 60)
        # the depot: the demo cars themselves at its stations, the plan's load curve, profiles sent
        status, sites = await _http("GET", f"{cloud.url}/api/v1/energy/sites", headers=platform)
        assert status == 200 and [(s["id"], s["stations"], s["sessions"]) for s in sites] == [("depot", 4, 4)]
        status, site = await _http("GET", f"{cloud.url}/api/v1/energy/sites/depot", headers=platform)
        assert status == 200 and len(site["load_kw"]) == 96 and max(site["load_kw"]) <= site["cap_kw"] + 1e-6
        assert [s["open_transactions"] for s in site["stations"]] == [1, 1, 1, 1]
        assert any(s["limit_w"] is not None for s in site["stations"])
        assert sorted(s["id"] for s in site["sessions"]) == sorted(vins)  # the cars, by VIN
        v2g = {s["id"] for s in site["sessions"] if s["v2g"]}
        assert v2g == {i.vin for i in running if i.vehicle.definition.brand != "Honda"}  # CHAdeMO V2H
        planned, asked = (sum(s[key] for s in site["sessions"]) for key in ("kwh_planned", "kwh_requested"))
        assert asked > 10 and planned >= 0.98 * asked  # a day's driving, charged back overnight
        _, theirs = await _http("GET", f"{cloud.url}/api/v1/energy/sites/depot", headers=nissan)
        nissans = {i.vin for i in running if i.vehicle.definition.brand == "Nissan"}
        assert {s["id"] for s in theirs["sessions"]} == nissans  # a brand sees its own cars' sessions only
        status, _ = await _http("GET", f"{cloud.url}/api/v1/energy/sites/elsewhere", headers=platform)
        assert status == 404
    finally:
        await cloud.stop()
        await energy.stop()
        await stop_demo_vehicles(running)
