"""The rolling planner's schedule reaching real (simulated) stations over OCPP, re-plan by re-plan."""

from __future__ import annotations

import numpy as np
import pytest

from opensdv.cloud.energy.dispatch import ProfileDispatcher
from opensdv.cloud.energy.ocpp.csms import Csms, listening_url
from opensdv.cloud.energy.ocpp.stations import StationSimulator
from opensdv.cloud.energy.planning.optimiser import RollingPlanner
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.tariff import Tariff
from opensdv.cloud.energy.site import ChargingSite

SLOT_H = 1.0


async def test_each_replan_sends_only_changed_profiles_including_v2g_discharge() -> None:
    tariff = Tariff(
        np.array([0.1, 0.1, 0.5, 0.5, 0.1, 0.1]), np.array([0.05, 0.05, 0.45, 0.45, 0.05, 0.05]), 0.0
    )
    v2g = Session(
        "v2g", "CS-2", 0, 6, 5.0, 7.0, max_discharge_kw=7.0, capacity_kwh=40.0, arrival_soc=0.5, min_soc=0.2
    )
    sessions = [Session("a", "CS-1", 0, 6, 12.0, 6.0), v2g, Session("c", "CS-3", 0, 6, 3.0, 3.0)]
    planner = RollingPlanner(sessions, slots=6, slot_h=SLOT_H, site_cap_kw=20, tariff=tariff)
    system = Csms(["CS-1", "CS-2", "CS-3"])
    server = await system.serve(port=0)
    url = listening_url(server)
    dispatcher = ProfileDispatcher(system)
    try:
        async with (
            StationSimulator.connected(url, "CS-1") as one,
            StationSimulator.connected(url, "CS-2") as two,
        ):  # CS-3 is not connected: its profile waits
            schedule = planner.solve()
            sent = await dispatcher.dispatch(schedule, slot=0)
            assert one.limit_w == pytest.approx(schedule.power_kw[0, 0] * 1000)
            assert sent.keys() == {"CS-1", "CS-2"} and "CS-3" in dispatcher.failures
            assert await dispatcher.dispatch(schedule, slot=0) == {}  # nothing changed, nothing sent
            sent = await dispatcher.dispatch(schedule, slot=2)  # the expensive hours: the V2G car feeds back
            assert (
                two.limit_w is not None
                and two.limit_w < 0
                and two.limit_w == pytest.approx(schedule.power_kw[1, 2] * 1000)
            )
            planner.add_arrival(Session("b", "CS-1", 3, 6, 4.0, 6.0), now=3)
            replanned = planner.solve()
            await dispatcher.dispatch(replanned, slot=3)
            assert one.limit_w == pytest.approx(replanned.power_kw[3, 3] * 1000)
    finally:
        server.close()
        await server.wait_closed()


async def test_the_site_replans_when_a_car_unplugs_early_and_when_the_grid_signals() -> None:
    """Online operation over real OCPP: the cars' transactions carry their session ids as tokens;
    one unplugs before its departure and the site re-plans without it at the next slot; a grid cap
    for the rest of the day reaches the stations at once."""
    sessions = [Session(f"car-{n}", f"CS-{n}", 0, 96, 30.0, 7.0) for n in (1, 2)]
    system = Csms(["CS-1", "CS-2"])
    server = await system.serve(port=0)
    url = listening_url(server)
    site = ChargingSite("depot", system, sessions, cap_kw=14.0)
    try:
        async with (
            StationSimulator.connected(url, "CS-1", max_power_w=7_000) as one,
            StationSimulator.connected(url, "CS-2", max_power_w=7_000) as two,
        ):
            await one.plug_in("car-1")
            await two.plug_in("car-2")
            await site.step()
            assert site.left == set() and one.limit_w is not None and two.limit_w is not None
            await two.unplug()  # car-2 leaves at slot 1, long before its departure
            await site.step()
            assert site.left == {"car-2"} and site.schedule is not None
            assert np.abs(site.schedule.power_kw[1, 1:]).max() == 0  # nothing more for it
            assert site.schedule.power_kw[1, 0] > 0 or site.schedule.power_kw[0, 0] > 0  # the past stays
            assert two.limit_w == 0 and site.schedule.delivered_kwh[0] == pytest.approx(30.0, abs=0.01)
            await site.signal(cap_kw=2.0)  # the DSO: 2 kW for the rest of the day
            assert one.limit_w is not None and one.limit_w <= 2_000 + 1e-6
            assert (site.schedule.site_kw[site.slot :] <= 2.0 + 1e-6).all()
    finally:
        server.close()
        await server.wait_closed()
