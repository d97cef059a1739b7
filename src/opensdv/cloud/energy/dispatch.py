"""From a plan to the chargers: each station gets its session's power for the current slot as an
OCPP charging profile — a positive limit to charge, a negative one to discharge (V2G) — and the
stations with nothing to do get theirs cleared.

``dispatch`` is called after every (re-)plan and at every slot boundary; it sends only what changed
since the last call, so a re-plan that moves nothing costs no messages.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed

from opensdv.cloud.energy.ocpp.csms import Csms, CsmsError
from opensdv.cloud.energy.planning.schedule import Schedule

__all__ = ["ProfileDispatcher"]


@dataclass
class ProfileDispatcher:
    csms: Csms
    evse_id: int = 1
    sent: dict[str, float | None] = field(default_factory=dict)  # station -> last limit (W); None: none set
    failures: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 10.0  # a station that does not answer in time is tried again next time; the others do not wait

    def targets(self, schedule: Schedule, slot: int) -> dict[str, float | None]:
        """Each station's limit in ``slot``: the power of the session there (W), None when idle."""
        wanted: dict[str, float | None] = dict.fromkeys(self.csms.stations)
        for i, session in enumerate(schedule.sessions):
            if session.station in wanted and session.arrival <= slot < session.departure:
                wanted[session.station] = round(float(schedule.power_kw[i, slot]) * 1000, 1)
        return wanted

    async def dispatch(self, schedule: Schedule, slot: int) -> dict[str, float | None]:
        """Send the changed limits to the connected stations; returns what was sent."""
        changes = {sid: w for sid, w in self.targets(schedule, slot).items() if self.sent.get(sid) != w}
        results = await asyncio.gather(
            *(self._send(sid, watts) for sid, watts in changes.items()), return_exceptions=True
        )
        sent = {}
        for (sid, watts), result in zip(changes.items(), results, strict=True):
            if isinstance(result, CsmsError | ConnectionClosed | TimeoutError):
                self.failures[sid] = str(result) or type(result).__name__  # gone, silent or refused: tried again
            elif isinstance(result, BaseException):
                raise result
            else:
                self.sent[sid] = sent[sid] = watts
                self.failures.pop(sid, None)
        return sent

    async def _send(self, station_id: str, watts: float | None) -> None:
        async with asyncio.timeout(self.timeout_s):
            await self._command(station_id, watts)

    async def _command(self, station_id: str, watts: float | None) -> None:
        if watts is None:
            await self.csms.clear_power_limits(station_id, self.evse_id)
        else:
            await self.csms.set_power_limit(station_id, self.evse_id, watts)
