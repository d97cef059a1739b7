"""The demo's OTA story over real demo vehicles: a campaign for the standard e-axle inverters
reaches every brand by hardware id; the injected failure rolls back and pauses the rollout."""

from __future__ import annotations

from pathlib import Path

from opensdv.demo.ota import APP_CAMPAIGN, DEMO_CAMPAIGN, broker_conditions, start_demo_ota
from opensdv.demo.vehicles import start_demo_vehicles, stop_demo_vehicles
from opensdv.model.vehicles import load_catalog
from opensdv.vehicle.ota.primary import VehicleConditions

PARKED = VehicleConditions(parked=True, battery_kwh=20.0)


async def test_campaign_reaches_every_brand_and_the_injected_failure_pauses_it(tmp_path: Path) -> None:
    running = await start_demo_vehicles(load_catalog().all_vehicles(), base_port=0)
    try:
        ota = start_demo_ota(running, tmp_path)
        brands = {ota.vehicles[vin][0].vehicle.definition.brand: vin for vin in ota.vehicles}
        assert ota.progress().counts == {"assigned": 2, "pending": 2}  # stage 1 of 2: half the fleet

        ota.cycle(dict.fromkeys(ota.vehicles, PARKED))

        progress = ota.progress()
        assert progress.state == "paused" and "1 of 2 vehicles failed in stage 1" in progress.reason
        assert ota.inverter_version(brands["Honda"]) == "2.4.0"
        assert ota.inverter_version(brands["Mitsubishi"]) == "1.0.0"  # rolled back
        assert ota.status[brands["Mitsubishi"]] == "failed: health-check, ok"  # inverter back, app set in
        assert progress.counts == {"succeeded": 1, "failed": 1, "pending": 2}  # stage 2 never started
        apps = ota.backend.campaigns.progress(APP_CAMPAIGN)
        assert apps.state == "completed" and apps.counts == {"succeeded": 4}
        await ota.sync_apps()  # each car's runtime starts what its APPS ECU now holds
        try:
            assert {ota.apps(vin) for vin in ota.vehicles} == {"departure-charge (running)"}
        finally:
            for runtime in ota.runtimes.values():
                await runtime.stop_all()
        conditions = broker_conditions(running[0])
        assert conditions.battery_kwh > 0
    finally:
        await stop_demo_vehicles(running)


async def test_a_moving_car_postpones_its_update(tmp_path: Path) -> None:
    running = await start_demo_vehicles(load_catalog().all_vehicles()[:2], base_port=0)
    try:
        ota = start_demo_ota(running, tmp_path)
        ota.cycle(dict.fromkeys(ota.vehicles, VehicleConditions(parked=False, battery_kwh=20.0)))
        assigned = [vin for vin, status in ota.status.items() if status.startswith("postponed")]
        assert assigned and all("not parked" in ota.status[vin] for vin in assigned)
        assert ota.backend.campaigns.progress(DEMO_CAMPAIGN).state == "running"
    finally:
        await stop_demo_vehicles(running)
