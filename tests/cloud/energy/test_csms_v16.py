"""One CSMS, two OCPP versions: a 1.6 station beside a 2.0.1 one, same state, same commands."""

from __future__ import annotations

import pytest

from opensdv.cloud.energy.csms import Csms, CsmsError
from opensdv.cloud.energy.stations import StationSimulator
from opensdv.cloud.energy.stations_v16 import StationSimulator16


async def test_ocpp_16_and_201_stations_side_by_side() -> None:
    system = Csms(["CS-16", "CS-201"])
    server = await system.serve(port=0)
    url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
    try:
        async with (
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
    finally:
        server.close()
        await server.wait_closed()
