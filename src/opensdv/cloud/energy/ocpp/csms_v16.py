"""The CSMS side of an OCPP 1.6 (JSON) station — most installed chargers still speak it.

Same ``StationState`` as 2.0.1 stations, so the operator sees one fleet: a 1.6 connector is kept as
EVSE ``connector_id``, the CSMS numbers the transactions it accepts, and meter values become the
same energy (Wh delivered in the transaction) and power. Commands translate to 1.6 messages:
SetChargingProfile with a TxDefaultProfile in W, ClearChargingProfile, GetCompositeSchedule,
RemoteStart/StopTransaction, UpdateFirmware.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16 import datatypes as dt16
from ocpp.v16 import enums as e16
from websockets.typing import Subprotocol

from opensdv.cloud.energy.ocpp.csms_state import (
    CsmsError,
    SessionBasics,
    Transaction,
    energy_and_power,
    utc_now,
)

__all__ = ["SUBPROTOCOL_16", "StationSession16"]

SUBPROTOCOL_16 = Subprotocol("ocpp1.6")


def _unit_16(sample: dict[str, Any]) -> object:
    return sample.get("unit")  # 1.6 sampled values carry the unit as a string (Wh, kWh, W, kW)


class StationSession16(SessionBasics, ChargePoint):  # type: ignore[misc]  # the ocpp package has no type hints
    transaction_ids: Iterator[int] = itertools.count(1)  # the CSMS hands every session its shared counter

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)

    def _tag_info(self, id_tag: str) -> dt16.IdTagInfo:
        known = self._id_tokens is None or id_tag in self._id_tokens
        return dt16.IdTagInfo(
            status=e16.AuthorizationStatus.accepted if known else e16.AuthorizationStatus.invalid
        )

    @on(e16.Action.boot_notification)
    def on_boot(
        self, charge_point_vendor: str, charge_point_model: str, **extra: Any
    ) -> call_result.BootNotification:
        self.state.vendor, self.state.model = charge_point_vendor, charge_point_model
        self.state.firmware = extra.get("firmware_version")
        self._persist()
        return call_result.BootNotification(
            current_time=utc_now(self.clock), interval=self._heartbeat_s, status=e16.RegistrationStatus.accepted
        )

    @after(e16.Action.boot_notification)
    async def resync(self, **_: Any) -> None:
        """1.6 has no GetTransactionStatus: a station re-sends what it queued, so open transactions
        stay open until their StopTransaction arrives."""
        self.synced.set()

    @on(e16.Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        self.state.last_heartbeat = utc_now(self.clock)
        return call_result.Heartbeat(current_time=self.state.last_heartbeat)

    @on(e16.Action.status_notification)
    def on_status(self, connector_id: int, status: str, **_: Any) -> call_result.StatusNotification:
        self.state.connectors[(connector_id, 1)] = status
        self._persist()
        return call_result.StatusNotification()

    @on(e16.Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=self._tag_info(id_tag))

    @on(e16.Action.start_transaction)
    def on_start(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> call_result.StartTransaction:
        tid = next(self.transaction_ids)
        transaction = Transaction(str(tid), connector_id, timestamp, id_tag, meter_start_wh=float(meter_start))
        self.state.transactions[transaction.transaction_id] = transaction
        self._persist(transaction)
        return call_result.StartTransaction(transaction_id=tid, id_tag_info=self._tag_info(id_tag))

    def _metered(self, transaction: Transaction, register_wh: float | None, power_w: float | None) -> None:
        if register_wh is not None:
            transaction.metered(register_wh)
        if power_w is not None:
            transaction.power_w = power_w
        self._persist(transaction)

    @on(e16.Action.meter_values)
    def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **_: Any,
    ) -> call_result.MeterValues:
        transaction = self.state.transactions.get(str(transaction_id)) if transaction_id is not None else None
        if transaction is not None:
            self._metered(transaction, *energy_and_power(meter_value, _unit_16))
        return call_result.MeterValues()

    @on(e16.Action.stop_transaction)
    def on_stop(
        self, meter_stop: int, timestamp: str, transaction_id: int, reason: str | None = None, **_: Any
    ) -> call_result.StopTransaction:
        transaction = self.state.transactions.get(str(transaction_id))
        if transaction is not None:
            transaction.ended, transaction.stopped_reason = timestamp, reason or "Local"
            self._metered(transaction, float(meter_stop), None)
        return call_result.StopTransaction()

    @on(e16.Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **_: Any) -> call_result.FirmwareStatusNotification:
        self.state.firmware_status.append(status)
        return call_result.FirmwareStatusNotification()

    # -- commands (OCPP 1.6) -------------------------------------------------------------------------
    async def set_power_limit(self, evse_id: int, watts: float, profile_id: int) -> None:
        if watts < 0:
            raise CsmsError(
                f"{self.state.station_id}: OCPP 1.6 stations cannot discharge ({watts:g} W asked)"
            )
        profile = dt16.ChargingProfile(
            charging_profile_id=profile_id,
            stack_level=0,
            charging_profile_purpose=e16.ChargingProfilePurposeType.tx_default_profile,
            charging_profile_kind=e16.ChargingProfileKindType.absolute,
            charging_schedule=dt16.ChargingSchedule(
                charging_rate_unit=e16.ChargingRateUnitType.watts,
                start_schedule=utc_now(self.clock),
                charging_schedule_period=[dt16.ChargingSchedulePeriod(start_period=0, limit=watts)],
            ),
        )
        reply = await self.call(call.SetChargingProfile(connector_id=evse_id, cs_charging_profiles=profile))
        if reply.status != e16.ChargingProfileStatus.accepted:
            raise CsmsError(f"{self.state.station_id}: SetChargingProfile {watts:g} W was {reply.status}")

    async def clear_power_limits(self, evse_id: int) -> None:
        reply = await self.call(call.ClearChargingProfile(connector_id=evse_id))
        if reply.status != e16.ClearChargingProfileStatus.accepted:
            raise CsmsError(f"{self.state.station_id}: ClearChargingProfile was {reply.status}")

    async def power_schedule(self, evse_id: int, duration_s: int) -> list[tuple[int, float]]:
        reply = await self.call(
            call.GetCompositeSchedule(
                connector_id=evse_id, duration=duration_s, charging_rate_unit=e16.ChargingRateUnitType.watts
            )
        )
        if reply.status != e16.GetCompositeScheduleStatus.accepted or reply.charging_schedule is None:
            raise CsmsError(f"{self.state.station_id}: GetCompositeSchedule was {reply.status}")
        periods = reply.charging_schedule["charging_schedule_period"]
        return [(p["start_period"], float(p["limit"])) for p in periods]

    async def remote_start(self, evse_id: int, id_token: str, remote_start_id: int) -> None:
        reply = await self.call(call.RemoteStartTransaction(id_tag=id_token, connector_id=evse_id))
        if reply.status != e16.RemoteStartStopStatus.accepted:
            raise CsmsError(f"{self.state.station_id}: RemoteStartTransaction was {reply.status}")

    async def remote_stop(self, transaction_id: str) -> None:
        reply = await self.call(call.RemoteStopTransaction(transaction_id=int(transaction_id)))
        if reply.status != e16.RemoteStartStopStatus.accepted:
            raise CsmsError(
                f"{self.state.station_id}: RemoteStopTransaction {transaction_id} was {reply.status}"
            )

    async def update_firmware(self, location: str, request_id: int, retrieve_at: str | None = None) -> None:
        await self.call(call.UpdateFirmware(location=location, retrieve_date=retrieve_at or utc_now(self.clock)))

    async def local_list_version(self) -> int:
        version = int((await self.call(call.GetLocalListVersion())).list_version)
        if version < 0:  # 1.6: -1 means no local authorisation list
            raise CsmsError(f"{self.state.station_id}: the station keeps no local authorisation list")
        return version

    async def send_local_list(self, version: int, entries: Mapping[str, str], full: bool) -> None:
        listed = [
            dt16.AuthorizationData(
                id_tag=tag, id_tag_info=dt16.IdTagInfo(status=e16.AuthorizationStatus(status))
            )
            for tag, status in entries.items()
        ]
        update = e16.UpdateType.full if full else e16.UpdateType.differential
        reply = await self.call(
            call.SendLocalList(list_version=version, update_type=update, local_authorization_list=listed)
        )
        if reply.status != e16.UpdateStatus.accepted:
            raise CsmsError(f"{self.state.station_id}: SendLocalList version {version} was {reply.status}")
