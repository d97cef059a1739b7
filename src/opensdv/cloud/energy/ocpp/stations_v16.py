"""A simulated OCPP 1.6 station (one connector), for tests and mixed-fleet demos: boots, starts and
stops transactions, meters charging on ``charge(seconds)``, obeys charging profiles and remote
start/stop like the 2.0.1 simulator."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16 import enums as e16
from websockets.asyncio.client import ClientConnection, connect

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.ocpp.csms_state import utc_now
from opensdv.cloud.energy.ocpp.csms_v16 import SUBPROTOCOL_16
from opensdv.cloud.energy.ocpp.stations import LocalAuthList
from opensdv.programs import cancel_and_wait

__all__ = ["StationSimulator16"]


class StationSimulator16(ChargePoint):  # type: ignore[misc]  # the ocpp package has no type hints
    def __init__(
        self, station_id: str, connection: ClientConnection, max_power_w: float = 7_400, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(station_id, connection)
        self.clock = clock
        self.max_power_w = max_power_w
        self.limit_w: float | None = None
        self.transaction_id: int | None = None
        self.register_wh = 0.0
        self.local_list = LocalAuthList()
        self._pending: set[asyncio.Task[Any]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def connected(cls, csms_url: str, station_id: str, **kwargs: Any):  # type: ignore[no-untyped-def]
        async with connect(f"{csms_url}/{station_id}", subprotocols=[SUBPROTOCOL_16]) as connection:
            station = cls(station_id, connection, **kwargs)
            loop = asyncio.create_task(station.start())
            try:
                reply = await station.call(
                    call.BootNotification(charge_point_vendor="OpenSDV", charge_point_model="SimCharger-16")
                )
                if reply.status != e16.RegistrationStatus.accepted:
                    raise ConnectionError(f"{station_id}: boot not accepted ({reply.status})")
                await station.call(
                    call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
                )
                yield station
            finally:
                await cancel_and_wait([loop])

    async def authorize(self, id_tag: str) -> str:
        reply = await self.call(call.Authorize(id_tag=id_tag))
        return str(reply.id_tag_info["status"])

    async def plug_in(self, id_tag: str) -> None:
        reply = await self.call(
            call.StartTransaction(
                connector_id=1, id_tag=id_tag, meter_start=int(self.register_wh), timestamp=utc_now(self.clock)
            )
        )
        self.transaction_id = reply.transaction_id
        await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Charging"))

    async def charge(self, seconds: float) -> None:
        power = self.max_power_w if self.limit_w is None else min(self.limit_w, self.max_power_w)
        self.register_wh += power * seconds / 3600
        sampled = [
            {"value": f"{self.register_wh:.1f}", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": f"{power:.1f}", "measurand": "Power.Active.Import", "unit": "W"},
        ]
        await self.call(
            call.MeterValues(
                connector_id=1, transaction_id=self.transaction_id,
                meter_value=[{"timestamp": utc_now(self.clock), "sampled_value": sampled}],
            )
        )  # fmt: skip

    async def unplug(self, reason: str = "EVDisconnected") -> None:
        if self.transaction_id is None:
            return
        await self.call(
            call.StopTransaction(
                meter_stop=int(self.register_wh),
                timestamp=utc_now(self.clock),
                transaction_id=self.transaction_id,
                reason=reason,
            )
        )
        self.transaction_id = None
        await self.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))

    async def settled(self) -> None:
        while self._pending:
            await asyncio.gather(*self._pending)

    def _later(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @on(e16.Action.set_charging_profile)
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **_: Any
    ) -> call_result.SetChargingProfile:
        self.limit_w = float(
            cs_charging_profiles["charging_schedule"]["charging_schedule_period"][0]["limit"]
        )
        return call_result.SetChargingProfile(status=e16.ChargingProfileStatus.accepted)

    @on(e16.Action.clear_charging_profile)
    def on_clear_charging_profile(self, **_: Any) -> call_result.ClearChargingProfile:
        known, self.limit_w = self.limit_w is not None, None
        status = e16.ClearChargingProfileStatus.accepted if known else e16.ClearChargingProfileStatus.unknown
        return call_result.ClearChargingProfile(status=status)

    @on(e16.Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, **_: Any) -> call_result.RemoteStartTransaction:
        if self.transaction_id is not None:
            return call_result.RemoteStartTransaction(status=e16.RemoteStartStopStatus.rejected)
        self._later(self.plug_in(id_tag))
        return call_result.RemoteStartTransaction(status=e16.RemoteStartStopStatus.accepted)

    @on(e16.Action.send_local_list)
    def on_send_local_list(
        self, list_version: int, update_type: str, local_authorization_list: list[dict[str, Any]] | None = None,
        **_: Any,
    ) -> call_result.SendLocalList:  # fmt: skip
        entries = {
            item["id_tag"]: (item.get("id_tag_info") or {}).get("status")
            for item in local_authorization_list or []
        }
        applied = self.local_list.update(list_version, update_type == e16.UpdateType.full, entries)
        return call_result.SendLocalList(
            status=e16.UpdateStatus.accepted if applied else e16.UpdateStatus.version_mismatch
        )

    @on(e16.Action.get_local_list_version)
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(list_version=self.local_list.version)

    @on(e16.Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int, **_: Any) -> call_result.RemoteStopTransaction:
        if transaction_id != self.transaction_id:
            return call_result.RemoteStopTransaction(status=e16.RemoteStartStopStatus.rejected)
        self._later(self.unplug("Remote"))
        return call_result.RemoteStopTransaction(status=e16.RemoteStartStopStatus.accepted)
