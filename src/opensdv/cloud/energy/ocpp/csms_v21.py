"""OCPP 2.1 stations: 2.0.1 plus what bidirectional charging needs.

2.1 keeps 2.0.1's messages (so the 2.0.1 session's handlers serve, validated against the 2.1
schemas) and adds, for V2X: the car's charging needs with its V2X parameters (NotifyEVChargingNeeds:
how much it may discharge, the energy window it must keep), and charging schedule periods in an
operation mode — here ``CentralSetpoint``, where a negative ``setpoint`` tells the station to
discharge at that power.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocpp.routing import on
from ocpp.v21 import call, call_result
from ocpp.v21 import datatypes as dt21
from ocpp.v21 import enums as e21
from websockets.typing import Subprotocol

from opensdv.clock import Clock
from opensdv.cloud.energy.ocpp.csms_state import CsmsError, parse_charging_needs, utc_now

__all__ = ["SUBPROTOCOL_21", "V2xMixin"]

SUBPROTOCOL_21 = Subprotocol("ocpp2.1")


class V2xMixin:
    """Mixed into the 2.0.1 session class to make the 2.1 one (see ``csms.StationSession21``)."""

    clock: Clock  # the session's (SessionBasics)

    _ocpp_version = "2.1"
    _call = call
    _call_result = call_result
    state: Any

    if TYPE_CHECKING:  # the ocpp ChargePoint provides it; a real method here would shadow it

        async def call(self, payload: Any) -> Any: ...

        def _persist(self, transaction: Any = None) -> None: ...  # SessionBasics's

    @on(e21.Action.notify_ev_charging_needs)
    def on_ev_charging_needs(
        self, charging_needs: dict[str, Any], evse_id: int, **_: Any
    ) -> call_result.NotifyEVChargingNeeds:
        self.state.ev_needs[evse_id] = parse_charging_needs(charging_needs)
        self._persist()
        return call_result.NotifyEVChargingNeeds(status=e21.NotifyEVChargingNeedsStatusEnumType.accepted)

    async def set_power_limit(self, evse_id: int, watts: float, profile_id: int) -> None:
        """A charge limit as in 2.0.1, or — negative — a discharge setpoint (OCPP 2.1 V2X)."""
        if watts >= 0:
            period = dt21.ChargingSchedulePeriodType(start_period=0, limit=watts)
        else:
            period = dt21.ChargingSchedulePeriodType(
                start_period=0, setpoint=watts, operation_mode=e21.OperationModeEnumType.central_setpoint
            )
        profile = dt21.ChargingProfileType(
            id=profile_id,
            stack_level=0,
            charging_profile_purpose=e21.ChargingProfilePurposeEnumType.tx_default_profile,
            charging_profile_kind=e21.ChargingProfileKindEnumType.absolute,
            charging_schedule=[
                dt21.ChargingScheduleType(
                    id=profile_id,
                    start_schedule=utc_now(self.clock),
                    charging_rate_unit=e21.ChargingRateUnitEnumType.w,
                    charging_schedule_period=[period],
                )
            ],
        )
        reply = await self.call(call.SetChargingProfile(evse_id=evse_id, charging_profile=profile))
        if reply.status != e21.ChargingProfileStatusEnumType.accepted:
            raise CsmsError(f"{self.state.station_id}: SetChargingProfile {watts:g} W was {reply.status}")
