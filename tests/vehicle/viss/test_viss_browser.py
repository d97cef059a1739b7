"""A plain web page in Chromium subscribes to Vehicle.Speed over VISS v3 (WebSocket, sub-protocol
VISSv3) and shows each value the broker publishes: what a web or mobile client does."""

from __future__ import annotations

import shutil

import pytest

from opensdv.vehicle.broker import ALLOW_ALL
from tests.conftest import need
from tests.vehicle.viss.conftest import RunningViss

playwright = pytest.importorskip("playwright.async_api")

PAGE = """<!doctype html>
<html><body>
<p>speed: <span id="speed">-</span> km/h (<span id="state">connecting</span>)</p>
<script>
const socket = new WebSocket("URL", "VISSv3");
socket.onopen = () => {
  document.getElementById("state").textContent = socket.protocol;
  socket.send(JSON.stringify({action: "subscribe", path: "Vehicle.Speed", requestId: "1",
                              filter: {variant: "change", parameter: {"logic-op": "ne", diff: "0"}}}));
};
socket.onmessage = (message) => {
  const reply = JSON.parse(message.data);
  if (reply.action === "subscribe") document.getElementById("state").textContent = "subscribed";
  if (reply.action === "subscription") document.getElementById("speed").textContent = reply.data.dp.value;
};
</script>
</body></html>
"""


async def test_a_web_page_sees_the_speed_change(viss: RunningViss) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    need(chromium is not None, "Chromium (make test installs Debian's package as root)")
    viss.call(viss.broker.publish, {"Vehicle.Speed": 10.0}, ALLOW_ALL)
    async with playwright.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--headless=new"])
        try:
            page = await browser.new_page()
            await page.set_content(PAGE.replace("URL", viss.url))
            await playwright.expect(page.locator("#state")).to_have_text("subscribed", timeout=20_000)
            for speed in (42.5, 88.0):
                viss.call(viss.broker.publish, {"Vehicle.Speed": speed}, ALLOW_ALL)
                await playwright.expect(page.locator("#speed")).to_have_text(f"{speed:g}", timeout=20_000)
        finally:
            await browser.close()
