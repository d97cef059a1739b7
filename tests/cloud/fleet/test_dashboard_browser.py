"""The dashboard in a real browser: Playwright drives Debian's Chromium against the demo cloud —
sign in, see the fleet, watch a car's live values change, pause a campaign."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.site import ChargingSite
from opensdv.demo.cloud import start_demo_cloud
from opensdv.demo.energy import start_demo_site
from opensdv.demo.ota import APP_CAMPAIGN, start_demo_ota
from opensdv.demo.vehicles import start_demo_vehicles, stop_demo_vehicles
from opensdv.model.vehicles import load_catalog
from tests.conftest import need

playwright = pytest.importorskip("playwright.async_api")


async def test_fleet_live_values_and_pausing_a_campaign(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "Chromium (make test installs Debian's package as root)")
    running = await start_demo_vehicles(load_catalog().all_vehicles(), base_port=0)
    ota = start_demo_ota(running, tmp_path / "ota")
    energy = await start_demo_site(running, tick_s=0.2)
    annex = ChargingSite("Annex", Csms(["ANNEX-1"]), [], cap_kw=11.0)  # a second site, not yet in use
    cloud = await start_demo_cloud(
        running, ota, tmp_path, http_port=0, sites={"depot": energy.site, "annex": annex}
    )
    try:
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--headless=new"]
            )
            page = await browser.new_page()
            await page.goto(f"{cloud.url}/")
            await page.fill("#user", "platform")
            await page.fill("#secret", cloud.credentials["platform"])
            await page.click("#login-form button")
            rows = page.locator("#fleet-rows tr")
            await playwright.expect(rows).to_have_count(4, timeout=20_000)
            assert "Mitsubishi" in await page.locator("#fleet-rows").inner_text()
            await playwright.expect(page.locator("#site-rows tr")).to_have_count(4, timeout=20_000)
            await playwright.expect(page.locator("#session-rows tr")).not_to_have_count(0, timeout=20_000)
            await page.select_option("#site-select", "annex")  # the other site
            await playwright.expect(page.locator("#site-title")).to_have_text(
                "Charging site — Annex", timeout=20_000
            )
            await playwright.expect(page.locator("#site-rows tr")).to_have_count(1, timeout=20_000)
            await page.select_option("#site-select", "depot")

            await rows.first.click()
            speed = page.locator('#signal-rows tr[data-path="Vehicle.Speed"] td:nth-child(2)')
            await playwright.expect(speed).not_to_have_text("", timeout=20_000)
            first = await speed.inner_text()
            await playwright.expect(speed).not_to_have_text(first, timeout=20_000)  # the car is driving
            health = page.locator("#vehicle-health")  # measured from the car's telemetry, or why not yet
            await playwright.expect(health).to_contain_text("battery health", timeout=20_000)

            pause = page.locator(f'#campaign-rows tr[data-campaign="{APP_CAMPAIGN}"] button')
            await playwright.expect(pause).to_have_text("pause", timeout=20_000)
            await pause.click()
            await playwright.expect(pause).to_have_text("resume", timeout=20_000)
            assert ota.backend.campaigns.progress(APP_CAMPAIGN).state == "paused"
            await browser.close()
    finally:
        await cloud.stop()
        await energy.stop()
        await stop_demo_vehicles(running)
