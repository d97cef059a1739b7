"""One CSMS, three OCPP versions: 1.6, 2.0.1 and 2.1 stations, same state, same commands."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from opensdv.cloud.energy.ocpp.csms import Csms, CsmsError, listening_url
from opensdv.cloud.energy.ocpp.stations import StationSimulator, StationSimulator21
from opensdv.cloud.energy.ocpp.stations_v16 import StationSimulator16


@contextlib.asynccontextmanager
async def serving(system: Csms) -> AsyncIterator[str]:
    """The CSMS listening on a free port, its URL; closed afterwards."""
    server = await system.serve(port=0)
    try:
        yield listening_url(server)
    finally:
        server.close()
        await server.wait_closed()


async def test_ocpp_16_and_201_stations_side_by_side() -> None:
    system = Csms(["CS-16", "CS-201"])
    async with (
        serving(system) as url,
        StationSimulator16.connected(url, "CS-16") as old,
        StationSimulator.connected(url, "CS-201") as new,
    ):
        state = system.stations["CS-16"]
        assert (state.vendor, state.model, state.connectors[(1, 1)]) == (
            "OpenSDV",
            "SimCharger-16",
            "Available",
        )
        await old.plug_in("TAG-1")
        await new.plug_in("TAG-2")
        await system.set_power_limit("CS-16", 1, 3_700)
        assert old.limit_w == 3_700
        assert await system.power_schedule("CS-201", 1, 3600) == [(0, 11_000.0)]
        await old.charge(3600)
        (transaction,) = state.transactions.values()
        assert transaction.energy_wh == pytest.approx(3_700) and transaction.power_w == 3_700
        with pytest.raises(CsmsError, match="OCPP 1.6 stations cannot discharge"):
            await system.set_power_limit("CS-16", 1, -3_000)
        await system.remote_stop("CS-16", transaction.transaction_id)
        await old.settled()
        assert transaction.ended is not None and transaction.stopped_reason == "Remote"
        await system.clear_power_limits("CS-16", 1)
        assert old.limit_w is None


async def test_ocpp_21_station_reports_v2x_needs_and_follows_a_discharge_setpoint() -> None:
    system = Csms(["CS-21"])
    async with serving(system) as url, StationSimulator21.connected(url, "CS-21") as station:
        await station.plug_in("TAG-V2G")
        await station.notify_ev_needs(max_charge_w=11_000, max_discharge_w=7_000, min_energy_wh=12_000)
        needs = system.stations["CS-21"].ev_needs[1]
        assert (needs["max_discharge_power_w"], needs["min_energy_wh"]) == (7_000, 12_000)
        await system.set_power_limit("CS-21", 1, -5_000)  # feed 5 kW back to the site
        assert station.limit_w == -5_000
        await system.set_power_limit("CS-21", 1, 7_000)
        assert station.limit_w == 7_000
        assert system.stations["CS-21"].model == "SimCharger-11"


async def test_authorisation_list_for_every_version() -> None:
    system = Csms(["CS-16", "CS-201"], id_tokens={"04A1B2C3"})
    async with (
        serving(system) as url,
        StationSimulator16.connected(url, "CS-16") as old,
        StationSimulator.connected(url, "CS-201") as new,
    ):
        assert await old.authorize("04A1B2C3") == "Accepted"
        assert await old.authorize("DEADBEEF") == "Invalid"
        assert await new.authorize("04A1B2C3") == "Accepted"
        assert await new.authorize("DEADBEEF") == "Invalid"


async def test_local_authorisation_lists_follow_the_csms_for_every_version() -> None:
    """SendLocalList: a Full list after boot, then a lost card blocked on every connected station
    at once (Differential), so they refuse it even while they cannot reach the CSMS."""
    system = Csms(["CS-16", "CS-201", "CS-21"], id_tokens={"04A1B2C3", "0BADCAFE"})
    async with (
        serving(system) as url,
        StationSimulator16.connected(url, "CS-16") as old,
        StationSimulator.connected(url, "CS-201") as new,
        StationSimulator21.connected(url, "CS-21") as bidirectional,
    ):
        stations = (old, new, bidirectional)
        for station in stations:
            assert await system.send_local_list(station.id) == 1
            assert station.local_list.status == {"04A1B2C3": "Accepted", "0BADCAFE": "Accepted"}
        versions = await system.change_id_tokens(accept={"11112222"}, block={"0BADCAFE"})
        assert versions == {"CS-16": 2, "CS-201": 2, "CS-21": 2}
        for station in stations:
            assert station.local_list.version == 2
            assert station.local_list.decide("0BADCAFE") == "Blocked"
            assert station.local_list.decide("11112222") == "Accepted"
            assert station.local_list.decide("DEADBEEF") == "Unknown"
            assert await station.authorize("0BADCAFE") == "Invalid"  # and online, the CSMS says so
            assert await station.authorize("11112222") == "Accepted"
        # a full list again (a station that lost its list): blocked cards stay on it as Blocked
        assert await system.send_local_list("CS-201") == 3
        assert new.local_list.status == {
            "04A1B2C3": "Accepted",
            "11112222": "Accepted",
            "0BADCAFE": "Blocked",
        }
        # an old Differential is refused by the station, and the CSMS says which and why
        with pytest.raises(CsmsError, match="CS-16: SendLocalList version 1 was VersionMismatch"):
            await system._session("CS-16").send_local_list(1, {"04A1B2C3": "Blocked"}, full=False)
        assert old.local_list.decide("04A1B2C3") == "Accepted"


async def test_a_csms_that_accepts_every_token_has_no_list_to_send() -> None:
    system = Csms(["CS-201"])
    async with serving(system) as url:
        async with StationSimulator.connected(url, "CS-201"):
            with pytest.raises(CsmsError, match="accepts every token"):
                await system.send_local_list("CS-201")
            with pytest.raises(CsmsError, match="accepts every token"):
                await system.change_id_tokens(block={"0BADCAFE"})
        with pytest.raises(CsmsError, match="not connected"):
            await Csms(["CS-9"], id_tokens=set()).send_local_list("CS-9")


async def test_a_restarted_csms_gives_new_16_transaction_ids_and_keeps_the_meter_start(tmp_path: Path) -> None:
    """1.6 transaction ids are the CSMS's to give: after a restart it must not hand out one it has
    stored (the row would be overwritten), and a transaction open across the restart still counts
    its energy from its own meter start."""
    from opensdv.cloud.energy.ocpp.csms_store import CsmsStore
    from opensdv.storage import Database

    database = Database(f"sqlite:///{tmp_path / 'csms.db'}")
    database.migrate()
    first = Csms(["CS-16", "CS-16B"], store=CsmsStore(database))
    async with serving(first) as url, StationSimulator16.connected(url, "CS-16", max_power_w=11_000) as station:
        station.register_wh = 50_000.0  # a meter that has counted other cars before
        await station.plug_in("TAG-A")
        await station.charge(3600)  # 11 kW for an hour
        kept = str(station.transaction_id)
    from opensdv.cloud.energy.ocpp.csms_state import Transaction

    old = first.stations["CS-16B"]  # a transaction of long ago, another station's
    old.transactions["1000"] = Transaction("1000", 1, "2026-01-01T00:00:00+00:00", "TAG-OLD", ended="2026-01-01T01:00:00+00:00")
    CsmsStore(database).save(old, old.transactions["1000"])

    second = Csms(["CS-16", "CS-16B"], store=CsmsStore(database))
    async with serving(second) as url, StationSimulator16.connected(url, "CS-16B") as other:
        await other.plug_in("TAG-B")
        assert other.transaction_id == 1001  # past every id stored, whichever station it was
    async with serving(second) as url, StationSimulator16.connected(url, "CS-16", max_power_w=11_000) as station:
        station.register_wh, station.transaction_id = 50_000.0 + 11_000, int(kept)
        await station.charge(1800)
    stored = CsmsStore(database).load()
    assert stored["CS-16"].transactions[kept].energy_wh == pytest.approx(11_000 + 5_500, abs=1)
    assert {"1000", "1001"} <= set(stored["CS-16B"].transactions)  # nothing overwritten
