"""An OCPP 2.0.1 charging station written with the ``ocpp`` package alone (nothing of OpenSDV),
as a charger maker's firmware would talk to a managed site: boot, status, a transaction with
meter values, the car's ISO 15118 charging needs, and charging profiles it obeys."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201 import enums as e


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class IndependentStation(ChargePoint):  # type: ignore[misc]
    def __init__(self, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection)
        self.limits_w: list[float | None] = []  # every limit the CSMS set, in order (None: cleared)
        self.limit_changed = asyncio.Event()
        self._seq = 0

    @on(e.Action.set_charging_profile)
    def on_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> call_result.SetChargingProfile:
        period = charging_profile["charging_schedule"][0]["charging_schedule_period"][0]
        self.limits_w.append(float(period["limit"]))
        self.limit_changed.set()
        return call_result.SetChargingProfile(status=e.ChargingProfileStatusEnumType.accepted)

    @on(e.Action.clear_charging_profile)
    def on_clear(self, **_: Any) -> call_result.ClearChargingProfile:
        self.limits_w.append(None)
        self.limit_changed.set()
        return call_result.ClearChargingProfile(status=e.ClearChargingProfileStatusEnumType.accepted)

    @on(e.Action.get_transaction_status)
    def on_transaction_status(self, **_: Any) -> call_result.GetTransactionStatus:
        return call_result.GetTransactionStatus(messages_in_queue=False, ongoing_indicator=True)

    async def next_limit(self) -> float | None:
        """The next limit the CSMS sets (waits for it)."""
        await self.limit_changed.wait()
        self.limit_changed.clear()
        return self.limits_w[-1]

    async def boot(self) -> None:
        await self.call(call.BootNotification(
            charging_station={"vendor_name": "Elsewhere", "model": "Wallbox-22"}, reason="PowerUp"))  # fmt: skip
        await self.call(call.StatusNotification(
            timestamp=_now(), connector_status="Available", evse_id=1, connector_id=1))  # fmt: skip

    async def transaction(self, event: str, transaction_id: str, register_wh: float, token: str | None = None) -> None:
        self._seq += 1
        await self.call(call.TransactionEvent(
            event_type=event, timestamp=_now(), trigger_reason="CablePluggedIn" if event == "Started" else "MeterValuePeriodic",
            seq_no=self._seq, transaction_info={"transaction_id": transaction_id}, evse={"id": 1, "connector_id": 1},
            id_token={"id_token": token, "type": "ISO14443"} if token else None,
            meter_value=[{"timestamp": _now(), "sampled_value": [
                {"value": register_wh, "measurand": "Energy.Active.Import.Register"}]}],
        ))  # fmt: skip

    async def charging_needs(self, departure: str, energy_wh: float) -> None:
        """What the car said over ISO 15118-2 (AC): its departure and the energy it wants."""
        await self.call(call.NotifyEVChargingNeeds(evse_id=1, charging_needs={
            "requested_energy_transfer": "AC_three_phase", "departure_time": departure,
            "ac_charging_parameters": {"energy_amount": energy_wh, "ev_min_current": 6, "ev_max_current": 32,
                                       "ev_max_voltage": 400}}))  # fmt: skip


@contextlib.asynccontextmanager
async def independent_station(
    url: str, station_id: str, password: str | None = None, tls: ssl.SSLContext | None = None,
    kind: type[IndependentStation] = IndependentStation,
) -> AsyncIterator[IndependentStation]:
    """Connected (with HTTP Basic auth when a password is given, over ``wss://`` trusting
    ``tls``) and booted; its message loop runs until the block ends."""
    headers = {}
    if password is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{station_id}:{password}".encode()).decode()
    async with websockets.connect(
        f"{url}/{station_id}", subprotocols=["ocpp2.0.1"], additional_headers=headers, ssl=tls  # type: ignore[list-item]
    ) as connection:
        station = kind(station_id, connection)
        loop = asyncio.create_task(station.start())
        try:
            await station.boot()
            yield station
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop
