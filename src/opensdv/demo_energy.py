"""The demo's charging site: a CSMS with four simulated OCPP 2.0.1 stations (two of them V2G), a
rolling plan under a 22 kW site cap on a time-of-use tariff, and the plan sent to the stations
slot by slot — one quarter-hour every ``tick_s`` seconds of demo time."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from opensdv.cloud.energy.csms import Csms, listening_url
from opensdv.cloud.energy.sessions import Session
from opensdv.cloud.energy.site import ChargingSite
from opensdv.cloud.energy.stations import StationSimulator

__all__ = ["DemoSite", "start_demo_site"]

STATIONS = ["SITE-01", "SITE-02", "SITE-03", "SITE-04"]


@dataclass
class DemoSite:
    site: ChargingSite
    url: str
    stations: list[StationSimulator]
    stack: AsyncExitStack
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def run(self, tick_s: float = 2.0) -> None:
        """Each tick: send the slot's profiles, let every station charge a simulated quarter-hour."""
        while True:
            await self.site.step()
            for station in self.stations:
                if station.transaction_id is not None:
                    await station.charge(self.site.slot_h * 3600)
            await asyncio.sleep(tick_s)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.stack.aclose()


def _sessions() -> list[Session]:
    """Overnight and day sessions; the two V2G cars may feed the site in the evening peak."""
    return [
        Session("night-leaf", "SITE-01", 0, 96, 30.0, 7.4),
        Session("day-honda", "SITE-02", 8, 40, 18.0, 11.0),
        Session("v2g-sakura", "SITE-03", 0, 96, 10.0, 11.0, max_discharge_kw=7.0, capacity_kwh=20.0,
                arrival_soc=0.5, min_soc=0.3),
        Session("v2g-ekx", "SITE-04", 0, 96, 10.0, 11.0, max_discharge_kw=7.0, capacity_kwh=20.0,
                arrival_soc=0.5, min_soc=0.3),
    ]  # fmt: skip


async def start_demo_site(tick_s: float = 2.0) -> DemoSite:
    stack = AsyncExitStack()
    csms = Csms(STATIONS)
    server = await csms.serve(port=0)
    stack.callback(server.close)
    url = listening_url(server)
    stations = []
    for station_id in STATIONS:
        station = await stack.enter_async_context(StationSimulator.connected(url, station_id))
        await station.plug_in(f"TOKEN-{station_id}")
        stations.append(station)
    demo = DemoSite(ChargingSite("OpenSDV demo depot", csms, _sessions(), cap_kw=22.0), url, stations, stack)
    demo.tasks.append(asyncio.create_task(demo.run(tick_s)))
    return demo
