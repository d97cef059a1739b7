"""A managed site for real chargers: an OCPP station written without OpenSDV gets its charging
profile from the site's plan; stations of 1.6, 2.0.1 and 2.1 at one site; the site re-plans on
arrival, on the car's ISO 15118 needs, on departure and on a grid signal; a restart re-syncs."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ocpp.routing import on
from ocpp.v201 import enums as e

from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.csms_state import Transaction
from opensdv.cloud.energy.ocpp.csms_store import CsmsStore
from opensdv.cloud.energy.ocpp.stations import StationSimulator, StationSimulator21
from opensdv.cloud.energy.ocpp.stations_v16 import StationSimulator16
from opensdv.cloud.energy.site_controller import DriverNeeds, GridSignal, SiteController
from opensdv.cloud.energy.site_file import ManagedSite, StationRecord, load_managed_site, site_template
from opensdv.model._files import CatalogError
from opensdv.storage import Database
from tests.cloud.energy.independent_station import IndependentStation, independent_station
from tests.cloud.energy.test_csms_v16 import serving

STATIONS = ["CS-001", "CS-002", "CS-003"]
FLAT = {"off_peak_price": 0.2, "peak_price": 0.2, "demand_charge": 0.0}  # the same price all day


def _site(cap_kw: float = 11.0, **extra: object) -> ManagedSite:
    stations = [StationRecord(id=sid, max_kw=11.0) for sid in STATIONS]
    return ManagedSite.model_validate({"name": "Depot", "cap_kw": cap_kw, "stations": stations, **extra})


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


async def test_an_independent_station_gets_its_profile_from_the_plan_and_shares_the_cap() -> None:
    system = Csms(STATIONS)
    site = SiteController(_site(cap_kw=11.0, tariff=FLAT), system)
    async with (
        serving(system) as url,
        independent_station(url, "CS-001") as wallbox,
        StationSimulator.connected(url, "CS-002") as simulated,
    ):
        await wallbox.transaction("Started", "tx-1", register_wh=51_200, token="04A1B2C3")
        await wallbox.charging_needs(departure=_iso(time.time() + 2 * 3600), energy_wh=10_000)
        await site.step()
        (car,) = site.cars
        assert (car.needs_from, car.kwh_requested, car.kwh_delivered) == ("iso15118", 10.0, 0.0)  # register at start: 0 delivered
        assert 0 < wallbox.limits_w[-1] <= 11_000  # type: ignore[operator]

        await simulated.plug_in("TAG-2")  # a second car: the cap is shared
        await site.step()
        assert {c.needs_from for c in site.cars} == {"iso15118", "site defaults"}
        assert wallbox.limits_w[-1] + simulated.limit_w == pytest.approx(11_000)  # type: ignore[operator]  # both charge now, within the cap

        await wallbox.transaction("Updated", "tx-1", register_wh=53_700)  # 2.5 kWh delivered since the start
        await site.step()
        assert next(c for c in site.cars if c.station == "CS-001").kwh_delivered == 2.5

        await wallbox.transaction("Ended", "tx-1", register_wh=54_000)  # the car left
        await site.step()
        assert wallbox.limits_w[-1] is None and [c.station for c in site.cars] == ["CS-002"]
        assert system.stations["CS-001"].ev_needs == {}  # the next car says its own


async def test_stations_of_three_ocpp_versions_at_one_site() -> None:
    system = Csms(STATIONS)
    site = SiteController(_site(cap_kw=30.0, tariff=FLAT), system)
    async with (
        serving(system) as url,
        StationSimulator16.connected(url, "CS-001") as v16,
        StationSimulator.connected(url, "CS-002") as v201,
        StationSimulator21.connected(url, "CS-003") as v21,
    ):
        await v16.plug_in("TAG-16")
        await v201.plug_in("TAG-201")
        await v21.plug_in("TAG-21")
        sent = await site.step()
        assert set(sent) == set(STATIONS) and all(w is not None and w > 0 for w in sent.values())
        assert v16.limit_w == sent["CS-001"] and v201.limit_w == sent["CS-002"] and v21.limit_w == sent["CS-003"]


async def test_the_site_replans_by_itself_when_a_car_arrives() -> None:
    system = Csms(STATIONS)
    site = SiteController(_site(), system)
    stop = asyncio.Event()
    async with serving(system) as url, independent_station(url, "CS-001") as wallbox:
        running = asyncio.create_task(site.run(stop))
        try:
            async with asyncio.timeout(30):
                await wallbox.transaction("Started", "tx-9", register_wh=0, token="04A1B2C3")
                while not wallbox.limits_w or wallbox.limits_w[-1] is None:  # the first, empty plan may clear
                    await wallbox.next_limit()
            assert wallbox.limits_w[-1] > 0  # type: ignore[operator]
        finally:
            stop.set()
            await running


async def test_a_restart_mid_session_resyncs_and_replans(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'csms.db'}")
    database.migrate()
    departure = float(int(time.time()) + 3 * 3600)  # OCPP times are whole seconds
    first = Csms(STATIONS, store=CsmsStore(database))
    site = SiteController(_site(), first)
    async with serving(first) as url, independent_station(url, "CS-001") as wallbox:
        await wallbox.transaction("Started", "tx-7", register_wh=1_000, token="04A1B2C3")
        await wallbox.charging_needs(departure=_iso(departure), energy_wh=20_000)
        await wallbox.transaction("Updated", "tx-7", register_wh=4_000)
        await site.step()
        before = wallbox.limits_w[-1]
        assert before is not None and before > 0

    second = Csms(STATIONS, store=CsmsStore(database))  # the process restarted: all it has is the database
    site = SiteController(_site(), second)
    await site.step()  # before any station is back: planned from what was stored
    (car,) = site.cars
    assert (car.needs_from, car.kwh_delivered, car.departure_s) == ("iso15118", 3.0, departure)
    async with serving(second) as url, independent_station(url, "CS-001") as wallbox:
        await second.wait_synced("CS-001")  # GetTransactionStatus: the car is still charging
        await site.step()
        assert wallbox.limits_w and wallbox.limits_w[-1] == pytest.approx(before)


def _with_car(system: Csms, station: str, started_s: float, power_w: float | None = None) -> Transaction:
    transaction = Transaction(f"tx-{station}", 1, _iso(started_s), "TAG", power_w=power_w)
    system.stations[station].transactions[transaction.transaction_id] = transaction
    return transaction


def test_energy_that_could_go_now_or_later_at_one_price_goes_now() -> None:
    system = Csms(STATIONS)
    _with_car(system, "CS-001", time.time())
    site = SiteController(_site(tariff=FLAT), system)
    schedule = site.plan()
    assert schedule.power_kw[0, 0] == pytest.approx(11.0)  # 20 kWh by default, from the first slot at full power
    lazy = SiteController(_site(tariff=FLAT), system, time_preference=0.0).plan()
    assert lazy.delivered_kwh[0] == pytest.approx(20.0)  # the same energy either way


def test_the_month_peak_so_far_is_the_floor_of_the_demand_charge() -> None:
    system = Csms(STATIONS)
    now = time.time()
    _with_car(system, "CS-001", now)
    spread = SiteController(_site(cap_kw=22.0), system).plan()
    _with_car(system, "CS-002", now - 3600, power_w=0.0).ended = _iso(now)  # (a finished session)
    system.stations["CS-001"].transactions["tx-CS-001"].power_w = 11_000  # measured now: 11 kW
    floored = SiteController(_site(cap_kw=22.0), system).plan()
    assert spread.peak_kw < 11.0 - 1e-6  # with no peak yet, the demand charge spreads the charging
    assert floored.peak_kw == pytest.approx(11.0)  # up to the month's peak costs nothing more


def test_driver_input_and_defaults_when_the_car_says_nothing() -> None:
    system = Csms(STATIONS)
    now = time.time()
    transaction = _with_car(system, "CS-001", now)
    site = SiteController(_site(defaults={"dwell_hours": 4, "kwh": 12}), system)
    site.plan()
    assert (site.cars[0].needs_from, site.cars[0].kwh_requested) == ("site defaults", 12.0)
    assert site.cars[0].departure_s == pytest.approx(round(now) + 4 * 3600, abs=1)
    site.set_driver_needs(transaction.transaction_id, DriverNeeds(now + 3600, 5.0))
    site.plan()
    assert (site.cars[0].needs_from, site.cars[0].kwh_requested) == ("driver", 5.0)


def test_a_grid_signal_caps_the_plan_while_it_lasts() -> None:
    system = Csms(STATIONS)
    now = time.time()
    for station in STATIONS:
        _with_car(system, station, now)
    site = SiteController(_site(cap_kw=30.0), system)
    site.add_signal(GridSignal(now - 60, now + 3600, cap_kw=4.0))
    schedule = site.plan()
    assert schedule.site_kw[:3].max() <= 4.0 + 1e-6  # the signal's hour
    assert schedule.site_kw.max() > 4.0  # and more after it
    with pytest.raises(Exception, match="cap >= 0 kW"):
        site.add_signal(GridSignal(now, now - 1, cap_kw=5.0))


def test_the_site_file_is_checked_by_field(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(site_template(4))
    site = load_managed_site(path)
    assert [s.id for s in site.stations] == ["CS-001", "CS-002", "CS-003", "CS-004"]
    assert site.horizon_slots == 96 and site.site_cap_kw == pytest.approx(26.4)
    path.write_text("cap_kw: 20\nstations: [{id: CS-001, max_kw: 11}]\ncircuits: [{id: r, stations: [CS-009], max_kw: 5}]\n")
    with pytest.raises(CatalogError, match=r"site\.yaml.*circuits name stations the site does not have: \['CS-009'\]"):
        load_managed_site(path)
    path.write_text("cap_kw: 20\nstations: [{id: CS-001, max_kw: -1}]\n")
    with pytest.raises(CatalogError, match=r"stations\.0\.max_kw"):
        load_managed_site(path)


def test_a_site_over_stations_the_csms_does_not_serve_is_refused() -> None:
    with pytest.raises(Exception, match=r"does not serve stations \['CS-003'\]"):
        SiteController(_site(), Csms(["CS-001", "CS-002"]))


class _Clock:
    """Time as the test sets it (plan() only reads it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def test_the_cars_the_sites_history_says_are_coming_keep_capacity_free() -> None:
    """Three weekdays, three cars plug in at 09:00 and take 20 kWh each by 14:00. On the fourth, a car
    at 08:00 wants 10 kWh by 14:00 while the morning is the dear time: alone it would wait for
    noon; the site, expecting the 09:00 cars, charges it now."""
    monday = datetime(2026, 11, 30, tzinfo=UTC).timestamp()
    site = _site(cap_kw=11.0, tariff={"peak_hours": [8, 12], "demand_charge": 0.0})
    stations = [f"CS-{n:03d}" for n in range(1, 5)]
    site = site.model_copy(update={"stations": [StationRecord(id=sid, max_kw=11.0) for sid in stations]})
    system = Csms(stations)
    clock = _Clock(monday)
    learning = SiteController(site, system, clock=clock)  # type: ignore[arg-type]
    for day in range(3):
        nine = monday + day * 86_400 + 9 * 3600
        for n, station in enumerate(stations[1:]):
            transaction = Transaction(f"d{day}-{n}", 1, _iso(nine), "TAG")
            system.stations[station].transactions[transaction.transaction_id] = transaction
            system.stations[station].ev_needs[1] = {"departure_time": _iso(nine + 5 * 3600), "energy_wh": 20_000}
        clock.now = nine
        learning.plan()
        for station in stations[1:]:
            for transaction in system.stations[station].transactions.values():
                transaction.ended, transaction.energy_wh = _iso(nine + 5 * 3600), 20_000.0
            system.stations[station].ev_needs.clear()

    thursday_eight = monday + 3 * 86_400 + 8 * 3600
    clock.now = thursday_eight
    car = Transaction("early", 1, _iso(thursday_eight), "TAG")
    system.stations["CS-001"].transactions["early"] = car
    system.stations["CS-001"].ev_needs[1] = {"departure_time": _iso(thursday_eight + 6 * 3600), "energy_wh": 10_000}
    expecting = learning.plan()
    alone = SiteController(site, system, clock=clock, forecast=False).plan()  # type: ignore[arg-type]
    assert alone.power_kw[0, 0] == pytest.approx(0.0)  # it waits for the cheap hours
    assert expecting.power_kw[0, 0] == pytest.approx(11.0)  # it charges before the others come
    assert learning.load_curve()[0] == pytest.approx(11.0)  # the curve shows the real car only
    restarted = SiteController(site, system, clock=clock)  # type: ignore[arg-type]
    assert restarted.plan().power_kw[0, 0] == pytest.approx(11.0)  # its history is the CSMS's stored transactions


class _HangsOnProfiles(IndependentStation):
    """A charger whose firmware hangs on SetChargingProfile: it never answers."""

    never = asyncio.Event()

    @on(e.Action.set_charging_profile)
    async def on_profile(self, **_: object) -> None:
        await self.never.wait()


async def test_a_station_that_never_answers_does_not_hold_up_the_others() -> None:
    system = Csms(STATIONS)
    site = SiteController(_site(cap_kw=30.0, tariff=FLAT), system)
    site.dispatcher.timeout_s = 0.5
    async with (
        serving(system) as url,
        independent_station(url, "CS-001", kind=_HangsOnProfiles) as stuck,
        independent_station(url, "CS-002") as fine,
    ):
        await stuck.transaction("Started", "tx-a", register_wh=0, token="A")
        await fine.transaction("Started", "tx-b", register_wh=0, token="B")
        async with asyncio.timeout(10):  # well before ocpp's own 30 s response timeout
            sent = await site.step()
        assert "CS-001" not in sent and "CS-001" in site.dispatcher.failures  # tried again at the next re-plan
        assert sent["CS-002"] == fine.limits_w[-1] and fine.limits_w[-1] > 0  # type: ignore[operator]
        _HangsOnProfiles.never.set()
