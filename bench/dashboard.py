"""The dashboard's fleet page with a big fleet, in a real browser (Debian's Chromium via Playwright).

    python -m bench.dashboard [--vehicles 1000] [--repeats 7]

1,000 cars (the three demo models in turn) are registered in the storage seam, each with a status
and a telemetry batch in DuckDB; the real fleet API runs under uvicorn. Timed: from asking for the
page (already signed in) to the fleet table holding every car, medians of ``--repeats`` loads; and
``GET /api/v1/fleet`` alone. Target: the page in <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import uvicorn
from rich.console import Console
from rich.table import Table

from opensdv.cloud.fleet.api import SOC, SPEED, FleetCloud, create_api
from opensdv.cloud.fleet.operators import PLATFORM, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.demo.vehicles import demo_vin
from opensdv.link.fleet import Command, Sample, TelemetryBatch, VehicleStatus
from opensdv.model.vehicles import load_catalog
from opensdv.storage.database import Database

console = Console()
MODELS = ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"]
SECRET = "bench secret"


def _fleet(directory: Path, vehicles: int) -> FleetCloud:
    database = Database(f"sqlite:///{directory / 'fleet.db'}")
    database.migrate()
    registry = VehicleRegistry(database)
    catalog = load_catalog()
    store = TelemetryStore(directory / "telemetry.duckdb")
    now = time.time()
    statuses, batches = [], []
    for n in range(vehicles):
        vehicle = catalog.vehicle(MODELS[n % len(MODELS)])
        vin = registry.register(demo_vin(vehicle, n + 1), vehicle, "JP").vin
        statuses.append(VehicleStatus(vin=vin, online=n % 7 != 0, at=now, brand=vehicle.definition.brand,
                                      model=vehicle.definition.model, software={"EAXLE_FRONT": "2.4.0"}))  # fmt: skip
        samples = [
            Sample(path=SOC, value=50.0 + n % 50, ts=now),
            Sample(path=SPEED, value=float(n % 120), ts=now),
        ]
        batches.append(TelemetryBatch(vin=vin, seq=0, samples=samples))
    store.set_statuses(statuses)
    store.add_many(batches, now)
    operators = Operators(database, b"b" * 32)
    operators.add("platform", SECRET, PLATFORM)

    async def no_commands(vin: str, command: Command) -> None:
        raise RuntimeError("the benchmark sends no commands")

    return FleetCloud(registry, store, operators, no_commands)


async def _measure(url: str, chromium: str, vehicles: int, repeats: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    async with httpx2.AsyncClient(base_url=url) as client:
        reply = await client.post("/api/v1/token", data={"grant_type": "password", "username": "platform",
                                                         "password": SECRET})  # fmt: skip
        token = reply.json()["access_token"]
        api_ms = []
        for _ in range(repeats):
            started = time.perf_counter()
            cars = (await client.get("/api/v1/fleet", headers={"Authorization": f"Bearer {token}"})).json()
            api_ms.append((time.perf_counter() - started) * 1000)
        assert len(cars) == vehicles
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--headless=new"])
        page = await browser.new_page()
        await page.goto(url)
        await page.evaluate("token => sessionStorage.setItem('opensdv-token', token)", token)
        page_ms = []
        for _ in range(repeats):
            started = time.perf_counter()
            await page.reload()
            await expect(page.locator("#fleet-rows tr")).to_have_count(vehicles, timeout=30_000)
            page_ms.append((time.perf_counter() - started) * 1000)
        await browser.close()
    return {"api_ms": statistics.median(api_ms), "page_ms": statistics.median(page_ms), "runs": repeats}


async def _run(vehicles: int, repeats: int, chromium: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        with console.status(f"registering {vehicles} cars"):
            cloud = _fleet(Path(tmp), vehicles)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        server = uvicorn.Server(uvicorn.Config(create_api(cloud), log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            return await _measure(f"http://127.0.0.1:{sock.getsockname()[1]}/", chromium, vehicles, repeats)
        finally:
            server.should_exit = True
            await serving
            cloud.telemetry.close()


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n")[0])
    parser.add_argument("--vehicles", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("bench.dashboard needs Chromium (scripts/services.sh installs Debian's package)")
    result = asyncio.run(_run(args.vehicles, args.repeats, chromium))
    table = Table(title=f"Dashboard fleet page, {args.vehicles:,} cars (medians of {args.repeats})")
    for column in ("GET /api/v1/fleet ms", "page load to every row shown ms", "target"):
        table.add_column(column, justify="right")
    table.add_row(f"{result['api_ms']:.0f}", f"{result['page_ms']:.0f}", "<= 1,000 ms")
    console.print(table)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
