"""Simulated OCPP 2.0.1 charging stations, written with the same ``ocpp`` package as the CSMS.

A simulator boots, reports its connector, obeys SetChargingProfile and remote start/stop, and
advances its energy meter on demand (``charge(seconds)``), so tests and the demo move simulated
time without sleeping. Many simulators share one event loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import ssl
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from ocpp.routing import on
from ocpp.v21 import call as call21
from ocpp.v21 import call_result as call_result21
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201 import datatypes as dt
from ocpp.v201 import enums as e
from websockets.asyncio.client import ClientConnection, connect

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.ocpp.csms import SUBPROTOCOL
from opensdv.cloud.energy.ocpp.csms_state import utc_now
from opensdv.cloud.energy.ocpp.csms_v21 import SUBPROTOCOL_21
from opensdv.programs import cancel_and_wait

__all__ = ["LocalAuthList", "StationSimulator", "StationSimulator21"]

_TRANSACTION_IDS = itertools.count(1)


@dataclass
class LocalAuthList:
    """A station's local authorisation list (SendLocalList), the same in OCPP 1.6 and 2.0.1: what
    it decides by while it cannot reach the CSMS."""

    version: int = 0
    status: dict[str, str] = field(default_factory=dict)  # token -> Accepted, Blocked, ...

    def update(self, version: int, full: bool, entries: Mapping[str, str | None]) -> bool:
        """Apply an update (an entry without a status leaves the list); False for a Differential
        one that is not newer than the list (VersionMismatch)."""
        if not full and version <= self.version:
            return False
        if full:
            self.status.clear()
        for token, status in entries.items():
            if status is None:
                self.status.pop(token, None)
            else:
                self.status[token] = status
        self.version = version
        return True

    def decide(self, token: str) -> str:
        """Offline: the list's word for ``token``, Unknown when it is not on it."""
        return self.status.get(token, "Unknown")


class StationSimulator(ChargePoint):  # type: ignore[misc]  # the ocpp package has no type hints
    """One single-EVSE station with a ``max_power_w`` charger."""

    subprotocol = SUBPROTOCOL

    def __init__(
        self,
        station_id: str,
        connection: ClientConnection,
        max_power_w: float = 11_000,
        transaction_id: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``transaction_id``: a transaction still running from before a reconnect."""
        super().__init__(station_id, connection)
        self.clock = clock
        self.max_power_w = max_power_w
        self.limit_w: float | None = None
        self.transaction_id = transaction_id
        self.energy_wh = 0.0
        self.firmware_location: str | None = None
        self.local_list = LocalAuthList()
        self._seq = itertools.count()
        self._pending: set[asyncio.Task[Any]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def connected(  # type: ignore[no-untyped-def]
        cls, csms_url: str, station_id: str, password: str | None = None, tls: ssl.SSLContext | None = None,
        **kwargs: Any,
    ):  # fmt: skip
        """Open the websocket (with Basic auth when a password is given: OCPP security profile 1;
        over ``wss://`` trusting ``tls``'s CAs as well: profile 2),
        run the station's message loop, boot; close on exit."""
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        async with connect(
            f"{csms_url}/{station_id}", subprotocols=[cls.subprotocol], additional_headers=headers, ssl=tls
        ) as connection:
            station = cls(station_id, connection, **kwargs)
            loop = asyncio.create_task(station.start())
            try:
                await station.boot()
                yield station
            finally:
                await cancel_and_wait([loop])

    async def boot(self) -> None:
        reply = await self.call(
            call.BootNotification(
                charging_station=dt.ChargingStationType(
                    vendor_name="OpenSDV", model="SimCharger-11", firmware_version="1.0"
                ),
                reason=e.BootReasonEnumType.power_up,
            )
        )
        if reply.status != e.RegistrationStatusEnumType.accepted:
            raise ConnectionError(f"{self.id}: the CSMS did not accept the boot ({reply.status})")
        await self._status(e.ConnectorStatusEnumType.available)

    async def _status(self, status: e.ConnectorStatusEnumType) -> None:
        await self.call(
            call.StatusNotification(timestamp=utc_now(self.clock), connector_status=status, evse_id=1, connector_id=1)
        )

    @property
    def power_w(self) -> float:
        if self.transaction_id is None:
            return 0.0
        return (
            self.max_power_w
            if self.limit_w is None
            else max(-self.max_power_w, min(self.limit_w, self.max_power_w))
        )

    async def authorize(self, id_token: str) -> str:
        """Authorize (a card swipe): the CSMS's answer, e.g. Accepted or Invalid."""
        reply = await self.call(
            call.Authorize(id_token=dt.IdTokenType(id_token=id_token, type=e.IdTokenEnumType.iso14443))
        )
        return str(reply.id_token_info["status"])

    async def plug_in(self, id_token: str, remote_start_id: int | None = None) -> str:
        """Start a transaction (as after a card swipe, or a remote start) and report it."""
        self.transaction_id = f"{self.id}-{next(_TRANSACTION_IDS)}"
        await self._status(e.ConnectorStatusEnumType.occupied)
        await self._transaction_event(
            e.TransactionEventEnumType.started,
            e.TriggerReasonEnumType.remote_start
            if remote_start_id is not None
            else e.TriggerReasonEnumType.authorized,
            id_token=dt.IdTokenType(id_token=id_token, type=e.IdTokenEnumType.central),
            remote_start_id=remote_start_id,
        )
        return self.transaction_id

    async def charge(self, seconds: float) -> None:
        """Advance the meter by ``seconds`` at the current power and report it."""
        self.energy_wh += self.power_w * seconds / 3600
        await self._transaction_event(
            e.TransactionEventEnumType.updated, e.TriggerReasonEnumType.meter_value_periodic
        )

    async def unplug(self) -> None:
        await self._transaction_event(
            e.TransactionEventEnumType.ended,
            e.TriggerReasonEnumType.ev_departed,
            stopped_reason=e.ReasonEnumType.ev_disconnected,
        )
        self.transaction_id = None
        await self._status(e.ConnectorStatusEnumType.available)

    async def _transaction_event(
        self,
        event_type: e.TransactionEventEnumType,
        trigger: e.TriggerReasonEnumType,
        id_token: dt.IdTokenType | None = None,
        remote_start_id: int | None = None,
        stopped_reason: e.ReasonEnumType | None = None,
    ) -> None:
        assert self.transaction_id is not None
        sampled = [
            dt.SampledValueType(
                value=round(self.energy_wh, 3), measurand=e.MeasurandEnumType.energy_active_import_register
            ),
            dt.SampledValueType(
                value=round(self.power_w, 1), measurand=e.MeasurandEnumType.power_active_import
            ),
        ]
        await self.call(
            call.TransactionEvent(
                event_type=event_type,
                timestamp=utc_now(self.clock),
                trigger_reason=trigger,
                seq_no=next(self._seq),
                transaction_info=dt.TransactionType(
                    transaction_id=self.transaction_id,
                    remote_start_id=remote_start_id,
                    stopped_reason=stopped_reason,
                ),
                evse=dt.EVSEType(id=1, connector_id=1),
                id_token=id_token,
                meter_value=[dt.MeterValueType(timestamp=utc_now(self.clock), sampled_value=sampled)],
            )
        )

    def _later(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Wait until what remote commands started (transaction events) has been sent."""
        while self._pending:
            await asyncio.gather(*self._pending)

    @on(e.Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        periods = charging_profile["charging_schedule"][0]["charging_schedule_period"]
        self.limit_w = float(periods[0]["limit"])
        return call_result.SetChargingProfile(status=e.ChargingProfileStatusEnumType.accepted)

    @on(e.Action.clear_charging_profile)
    def on_clear_charging_profile(self, **_: Any) -> call_result.ClearChargingProfile:
        known = self.limit_w is not None
        self.limit_w = None
        status = (
            e.ClearChargingProfileStatusEnumType.accepted
            if known
            else e.ClearChargingProfileStatusEnumType.unknown
        )
        return call_result.ClearChargingProfile(status=status)

    @on(e.Action.get_composite_schedule)
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, charging_rate_unit: str | None = None, **_: Any
    ) -> call_result.GetCompositeSchedule:
        if charging_rate_unit not in (None, e.ChargingRateUnitEnumType.watts):
            return call_result.GetCompositeSchedule(status=e.GenericStatusEnumType.rejected)
        limit = self.max_power_w if self.limit_w is None else self.limit_w
        schedule = dt.CompositeScheduleType(
            evse_id=evse_id,
            duration=duration,
            schedule_start=utc_now(self.clock),
            charging_rate_unit=e.ChargingRateUnitEnumType.watts,
            charging_schedule_period=[dt.ChargingSchedulePeriodType(start_period=0, limit=limit)],
        )
        return call_result.GetCompositeSchedule(status=e.GenericStatusEnumType.accepted, schedule=schedule)

    @on(e.Action.request_start_transaction)
    def on_request_start(
        self, id_token: dict[str, Any], remote_start_id: int, **_: Any
    ) -> call_result.RequestStartTransaction:
        if self.transaction_id is not None:
            return call_result.RequestStartTransaction(status=e.RequestStartStopStatusEnumType.rejected)
        self._later(self.plug_in(id_token["id_token"], remote_start_id))  # after the reply, as a station does
        return call_result.RequestStartTransaction(status=e.RequestStartStopStatusEnumType.accepted)

    @on(e.Action.request_stop_transaction)
    def on_request_stop(self, transaction_id: str, **_: Any) -> call_result.RequestStopTransaction:
        if transaction_id != self.transaction_id:
            return call_result.RequestStopTransaction(status=e.RequestStartStopStatusEnumType.rejected)
        self._later(self.unplug())
        return call_result.RequestStopTransaction(status=e.RequestStartStopStatusEnumType.accepted)

    @on(e.Action.update_firmware)
    def on_update_firmware(
        self, request_id: int, firmware: dict[str, Any], **_: Any
    ) -> call_result.UpdateFirmware:
        self._later(self._install_firmware(request_id, firmware["location"]))
        return call_result.UpdateFirmware(status=e.UpdateFirmwareStatusEnumType.accepted)

    async def _install_firmware(self, request_id: int, location: str) -> None:
        """Report the steps a station goes through (the download itself is simulated)."""
        steps = (
            e.FirmwareStatusEnumType.downloading, e.FirmwareStatusEnumType.downloaded,
            e.FirmwareStatusEnumType.installing, e.FirmwareStatusEnumType.installed,
        )  # fmt: skip
        for status in steps:
            await self.call(call.FirmwareStatusNotification(status=status, request_id=request_id))
        self.firmware_location = location

    @on(e.Action.send_local_list)
    def on_send_local_list(
        self, version_number: int, update_type: str, local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:  # fmt: skip
        entries = {
            item["id_token"]["id_token"]: (item.get("id_token_info") or {}).get("status")
            for item in local_authorization_list or []
        }
        applied = self.local_list.update(version_number, update_type == e.UpdateEnumType.full, entries)
        return call_result.SendLocalList(
            status=e.SendLocalListStatusEnumType.accepted
            if applied
            else e.SendLocalListStatusEnumType.version_mismatch
        )

    @on(e.Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(version_number=self.local_list.version)

    @on(e.Action.get_transaction_status)
    def on_get_transaction_status(
        self, transaction_id: str | None = None, **_: Any
    ) -> call_result.GetTransactionStatus:
        ongoing = transaction_id is not None and transaction_id == self.transaction_id
        return call_result.GetTransactionStatus(messages_in_queue=False, ongoing_indicator=ongoing)


class StationSimulator21(StationSimulator):
    """An OCPP 2.1 station with a bidirectional charger: it tells the CSMS what the car may
    discharge, and follows discharge setpoints (``limit_w`` goes negative)."""

    subprotocol = SUBPROTOCOL_21
    _ocpp_version = "2.1"
    _call = call21
    _call_result = call_result21

    async def notify_ev_needs(
        self, max_charge_w: float, max_discharge_w: float, min_energy_wh: float
    ) -> None:
        needs = {
            "requested_energy_transfer": "AC_BPT",
            "v2x_charging_parameters": {
                "max_charge_power": max_charge_w, "max_discharge_power": max_discharge_w,
                "ev_min_energy_request": min_energy_wh,
            },
        }  # fmt: skip
        await self.call(call21.NotifyEVChargingNeeds(charging_needs=needs, evse_id=1))

    @on(e.Action.set_charging_profile)
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        period = charging_profile["charging_schedule"][0]["charging_schedule_period"][0]
        self.limit_w = float(
            period["setpoint"] if period.get("operation_mode") == "CentralSetpoint" else period["limit"]
        )
        return call_result21.SetChargingProfile(status=e.ChargingProfileStatusEnumType.accepted)
