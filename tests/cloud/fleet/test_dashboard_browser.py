"""The dashboard in a real browser: Playwright drives Debian's Chromium against the running demo
(its cloud process and driving cars) — sign in, see the fleet, watch a car's live values change,
switch charging sites, pause a campaign, plot a data campaign's capture around its trigger and
suspend the campaign."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.site import ChargingSite
from opensdv.cloud.ota.campaigns import CampaignSpec, Consent
from opensdv.demo.fleet import start_demo
from opensdv.link.fleet import CampaignTag, Sample, TelemetryBatch
from opensdv.model.vehicles import load_catalog
from tests.conftest import need

playwright = pytest.importorskip("playwright.async_api")


async def test_fleet_live_values_and_pausing_a_campaign(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "Chromium (make test installs Debian's package as root)")
    vehicles = load_catalog().all_vehicles()
    demo = await start_demo(tmp_path, vehicles, base_port=0, http_port=0, tick_s=0.2)
    demo.cloud.sites["annex"] = ChargingSite("Annex", Csms(["ANNEX-1"]), [], cap_kw=11.0)  # not yet in use
    backend = demo.cloud.ota_backend()
    tcus = sorted({e.hardware_id for v in vehicles for name, e in v.ecus.items() if name == "TCU"})
    backend.images.add_image("tcu/tcu-3.1.0.bin", b"telematics firmware 3.1.0", tcus, "3.1.0", 31)
    consent = Consent(purpose="telematics update", duration_min=10)
    # asks each driver, none of whom answers: it stays running until someone pauses it
    backend.campaigns.create(CampaignSpec(id="tcu-3-1", image="tcu/tcu-3.1.0.bin", stages=[100], consent=consent))
    try:
        async with playwright.async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--headless=new"]
            )
            page = await browser.new_page()
            await page.goto(f"{demo.url}/")
            await page.fill("#user", "platform")
            await page.fill("#secret", demo.credentials["platform"])
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

            pause = page.locator('#campaign-rows tr[data-campaign="tcu-3-1"] button')
            await playwright.expect(pause).to_have_text("pause", timeout=20_000)
            await pause.click()
            await playwright.expect(pause).to_have_text("resume", timeout=20_000)
            assert backend.campaigns.progress("tcu-3-1").state == "paused"

            # the demo's data campaign: every car's state, a capture plotted with its axes, suspended
            leaf = demo.car("nissan-leaf-40").vin
            tag = CampaignTag(id="cruise-disengagements", version=1, trigger=1_796_000_010.0)
            samples = [Sample(path="Vehicle.Speed", value=95.0 - i, ts=1_796_000_000.0 + i) for i in range(16)]
            samples.append(Sample(path="Vehicle.ADAS.CruiseControl.IsActive", value=False, ts=1_796_000_010.0))
            demo.cloud.ingest.store.add(TelemetryBatch(vin=leaf, seq=10**9, samples=samples, campaign=tag), 1.0)
            row = page.locator('#data-campaign-rows tr[data-campaign="cruise-disengagements"]')
            await playwright.expect(row).to_contain_text("4 active", timeout=30_000)
            await row.locator("td").first.click()
            await playwright.expect(page.locator("#data-car-rows tr")).to_have_count(4, timeout=20_000)
            capture = page.locator(f'#capture-rows tr[data-capture="{leaf}/{10**9}"]')
            await capture.click()
            legend = page.locator("#capture-legend")
            await playwright.expect(legend).to_contain_text("Vehicle.Speed (left axis, km/h)", timeout=20_000)
            assert "trigger at 2026-11-30" in await legend.inner_text()
            assert await page.locator("#capture-chart").is_visible()
            await row.locator("button").click()
            await playwright.expect(row.locator("button")).to_have_text("resume", timeout=20_000)
            await browser.close()
    finally:
        await demo.stop()
