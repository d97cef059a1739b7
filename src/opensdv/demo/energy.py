"""The demo's charging depot: the demo cars themselves plug in there, each at its own simulated
OCPP 2.0.1 station connected to the cloud's CSMS (the ``energy`` service), and charge under a
rolling plan (3.7 kW of site cap per car, time-of-use tariff); the cars with bidirectional chargers
may feed the site back when that pays. The plan goes to the stations slot by slot: one quarter-hour
every ``tick_s`` seconds of demo time.

What the site knows of each car is what the demo tells it (arrival, departure, energy wanted),
read from the car's own broker; forming sessions from what stations report is the site service's
job (docs/energy.md)."""

from __future__ import annotations

import asyncio
import ssl
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.ocpp.credentials import StationCredentials
from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.stations import StationSimulator
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.site import ChargingSite
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.demo.vehicles import DemoCar
from opensdv.physics import combined_range_km, wear_cost_per_kwh
from opensdv.programs import cancel_and_wait
from opensdv.vehicle.broker import Permissions

__all__ = ["DemoSite", "depot_stations", "start_demo_site"]

STATION_KW = 11.0  # the depot's AC stations; a car takes the lesser of this and its charger
SITE_KW_PER_CAR = 3.7
MAX_STATIONS = 24
TARGET_SOC = 0.9
V2G_MIN_SOC = 0.3
DAILY_KM = (45.0, 80.0, 60.0)  # what the cars drove today before they plug in, in turn
START_HOUR = 18.0
DEPARTURE_SLOT = 56  # 08:00
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
READ_SOC = Permissions.from_scope(f"read:{SOC}", subject="demo-depot")


def _station(n: int) -> str:
    return f"DEPOT-{n + 1:02d}"


def depot_stations(cars: int) -> list[str]:
    """The depot's station ids for ``cars`` demo cars (the CSMS accepts these)."""
    return [_station(n) for n in range(min(cars, MAX_STATIONS))]


def _soc(car: DemoCar) -> float:
    """The car's state of charge now (0..1), from its broker."""
    point = car.process.broker.get(SOC, READ_SOC)
    return float(point.value) / 100 if point is not None and point.value is not None else TARGET_SOC


@dataclass
class DemoSite:
    site: ChargingSite
    url: str
    stations: list[StationSimulator]
    stack: AsyncExitStack
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    clock: Clock = SYSTEM_CLOCK

    async def run(self, tick_s: float = 2.0) -> None:
        """Each tick: send the slot's profiles, let every station charge a simulated quarter-hour."""
        while True:
            await self.site.step()
            for station in self.stations:
                if station.transaction_id is not None:
                    await station.charge(self.site.slot_h * 3600)
            await self.clock.sleep(tick_s)

    async def stop(self) -> None:
        await cancel_and_wait(self.tasks)
        await self.stack.aclose()


def depot_sessions(cars: list[DemoCar]) -> list[Session]:
    """One session per car (its VIN), at the car's own station, arriving from 18:00 (the depot's
    day starts then: 96 quarter-hours, the evening peak first) one after another and leaving at
    08:00: from the state of charge the car has after a day's driving (its broker's now, less
    ``DAILY_KM`` at the twin's combined consumption) back to 90 %; its battery's wear cost from
    the twin's ageing model for its chemistry."""
    _, wh_per_km = combined_range_km([car.vehicle for car in cars])
    sessions = []
    for n, car in enumerate(cars):
        pack_kwh = car.vehicle.pack.energy_kwh
        soc = max(_soc(car) - DAILY_KM[n % len(DAILY_KM)] * float(wh_per_km[n]) / 1000 / pack_kwh, 0.05)
        charging = car.vehicle.definition.charging
        max_kw = min(STATION_KW, charging.ac_kw) if charging else STATION_KW
        v2g = bool(charging and charging.bidirectional)
        sessions.append(
            Session(
                car.vin, _station(n), arrival=2 * (n % 16), departure=DEPARTURE_SLOT,
                kwh_requested=round(max(TARGET_SOC - soc, 0.0) * pack_kwh, 2), max_kw=max_kw,
                max_discharge_kw=max_kw if v2g else 0.0, capacity_kwh=pack_kwh,
                arrival_soc=soc, min_soc=min(V2G_MIN_SOC, soc),
                wear_cost_per_kwh=wear_cost_per_kwh(car.vehicle.pack.module.chemistry),
            )
        )  # fmt: skip
    return sessions


@dataclass(frozen=True)
class DepotLogin:
    """How one simulated station proves who it is: its password (profile 2) or, with none, the
    client certificate in ``tls`` (profile 3); ``tls`` trusts the fleet CA either way."""

    password: str | None
    tls: ssl.SSLContext


def provision_depot(
    ca: FleetCa, credentials: StationCredentials, stations: list[str], directory: Path
) -> dict[str, DepotLogin]:
    """Each depot station's own credentials, as an operator gives them: a password
    (``opensdv energy station add``), or for every second station a certificate
    (``opensdv fleet provision-station`` and ``station add --certificate --no-password``)."""
    logins = {}
    for index, station_id in enumerate(stations):
        if index % 2:
            identity = ca.provision_station(station_id, directory / station_id)
            credentials.allow_certificate(station_id)
            logins[station_id] = DepotLogin(None, identity.client_context())
        else:
            trust = ssl.create_default_context(cafile=str(ca.cert_file))
            logins[station_id] = DepotLogin(credentials.set_password(station_id), trust)
    return logins


async def start_demo_site(
    cars: list[DemoCar], csms: Csms, csms_url: str, logins: dict[str, DepotLogin], tick_s: float = 2.0
) -> DemoSite:
    """The depot for the first ``MAX_STATIONS`` demo cars at the cloud's CSMS, already plugged in
    (each station's transaction carries the car's VIN as its token)."""
    sessions = depot_sessions(cars[:MAX_STATIONS])
    stack = AsyncExitStack()
    stations = []
    try:
        for session in sessions:
            login = logins[session.station]
            station = await stack.enter_async_context(
                StationSimulator.connected(
                    csms_url, session.station, login.password, tls=login.tls, max_power_w=session.max_kw * 1000
                )
            )
            await station.plug_in(session.id)
            stations.append(station)
    except BaseException:
        await stack.aclose()
        raise
    site = ChargingSite(
        "OpenSDV demo depot", csms, sessions, cap_kw=SITE_KW_PER_CAR * len(sessions), start_hour=START_HOUR
    )
    demo = DemoSite(site, csms_url, stations, stack)
    demo.tasks.append(asyncio.create_task(demo.run(tick_s)))
    return demo
