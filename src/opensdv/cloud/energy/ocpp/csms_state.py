"""What a CSMS knows of its stations, whatever OCPP version they speak: boot data, connector
states, transactions — and where that state is kept between restarts."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ocpp.exceptions import PropertyConstraintViolationError

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.errors import EnergyError
from opensdv.files import nesting_depth

__all__ = [
    "CsmsError",
    "SessionBasics",
    "StatePersistence",
    "StationState",
    "Transaction",
    "energy_and_power",
    "frame_problem",
    "meter_reading",
    "parse_charging_needs",
    "utc_now",
]

_ENERGY = "Energy.Active.Import.Register"
MAX_DEPTH = 16  # the deepest OCPP 2.0.1 message nests about 8 levels (below the files' limit)
MAX_ENERGY_WH = 1e12  # a meter register beyond a terawatt hour is no meter's (net of V2G: signed)
MAX_POWER_W = 1e7  # nor beyond ten megawatts (negative: discharging)


class CsmsError(EnergyError):
    """A station is not connected, or it refused what the CSMS asked."""


@dataclass
class Transaction:
    transaction_id: str
    evse_id: int
    started: str
    id_token: str | None = None
    energy_wh: float = 0.0
    power_w: float | None = None
    ended: str | None = None
    stopped_reason: str | None = None
    meter_start_wh: float | None = None  # the meter register at the first reading

    def metered(self, register_wh: float) -> None:
        """A meter register reading: ``energy_wh`` becomes what this transaction delivered (a
        station's register counts across transactions)."""
        if self.meter_start_wh is None:
            self.meter_start_wh = register_wh
        self.energy_wh = register_wh - self.meter_start_wh


@dataclass
class StationState:
    """What the CSMS knows of one station: its boot data, connector states, transactions."""

    station_id: str
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    last_heartbeat: str | None = None
    firmware_status: list[str] = field(default_factory=list)  # FirmwareStatusNotification, in order
    ev_needs: dict[int, dict[str, Any]] = field(default_factory=dict)  # by EVSE: see parse_charging_needs
    connectors: dict[tuple[int, int], str] = field(default_factory=dict)
    transactions: dict[str, Transaction] = field(default_factory=dict)

    @property
    def booted(self) -> bool:
        return self.vendor is not None


def parse_charging_needs(needs: dict[str, Any]) -> dict[str, Any]:
    """What a NotifyEVChargingNeeds (the car's ISO 15118 needs, relayed by the station) tells the
    planner: ``departure_time``, ``energy_wh`` wanted, ``max_power_w`` (DC, or 2.1's V2X), and for
    V2X the most it may discharge and the least energy it must keep. Absent values are None."""
    ac = needs.get("ac_charging_parameters") or {}
    dc = needs.get("dc_charging_parameters") or {}
    v2x = needs.get("v2x_charging_parameters") or {}
    return {
        "departure_time": needs.get("departure_time"),
        "energy_wh": _first(v2x.get("ev_target_energy_request"), dc.get("energy_amount"), ac.get("energy_amount")),
        "max_power_w": _first(v2x.get("max_charge_power"), dc.get("ev_max_power")),
        "max_discharge_power_w": v2x.get("max_discharge_power"),
        "min_energy_wh": v2x.get("ev_min_energy_request"),
    }


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def utc_now(clock: Clock = SYSTEM_CLOCK) -> str:
    """An OCPP timestamp (RFC 3339, UTC, whole seconds) of ``clock``'s time."""
    return datetime.fromtimestamp(clock.time(), UTC).isoformat(timespec="seconds")


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def frame_problem(raw: str | bytes) -> tuple[str, str] | None:
    """Why an OCPP-J frame cannot be handled — (message id or ``"-1"``, reason) — or ``None``.

    Python's JSON decoder accepts ``NaN`` and ``Infinity``, which JSON (RFC 8259) does not, and
    recurses on nesting; the ``ocpp`` package would store the first and crash on the second."""
    try:
        frame = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        return "-1", "nested too deeply"
    except (ValueError, UnicodeDecodeError) as exc:
        return _message_id(raw), f"not JSON: {str(exc)[:80]}"
    if nesting_depth(frame) > MAX_DEPTH:
        return _message_id(frame), f"nested deeper than {MAX_DEPTH} levels"
    return None


def _message_id(frame: object) -> str:
    """The frame's message id if one can be read (also from a frame that is JSON but for a NaN),
    else ``"-1"`` as OCPP-J says."""
    if isinstance(frame, str | bytes):
        try:
            frame = json.loads(frame)  # Python's lenient decoder: only to find the id to answer
        except (ValueError, UnicodeDecodeError, RecursionError):
            return "-1"
    return frame[1] if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str) else "-1"


def meter_reading(value: object, measurand: str) -> float:
    """A sampled value as a number within what a meter can read, else the OCPP error that says so."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    limit = MAX_ENERGY_WH if measurand == _ENERGY else MAX_POWER_W
    if not math.isfinite(number) or abs(number) > limit:
        raise PropertyConstraintViolationError(
            description=f"{measurand} value {str(value)[:40]} is outside what a meter reads"
        )
    return number


def _unit_201(sample: dict[str, Any]) -> object:
    return sample.get("unit_of_measure", {}).get("unit")


def energy_and_power(
    meter_values: Iterable[dict[str, Any]], unit_of: Callable[[dict[str, Any]], object] = _unit_201
) -> tuple[float | None, float | None]:
    """The last energy register (Wh) and power (W) in OCPP meter values; kWh/kW are converted.
    ``unit_of``: where a sampled value keeps its unit (2.0.1: ``unitOfMeasure.unit``; 1.6: ``unit``)."""
    energy = power = None
    for sample_set in meter_values:
        for sample in sample_set.get("sampled_value", []):
            measurand = sample.get("measurand", _ENERGY)
            scale = 1000.0 if unit_of(sample) in ("kWh", "kW") else 1.0
            if measurand == _ENERGY:
                energy = meter_reading(sample["value"], measurand) * scale
            elif measurand == "Power.Active.Import":
                power = meter_reading(sample["value"], measurand) * scale
    return energy, power


class StatePersistence(Protocol):
    """Where the CSMS keeps its state (``CsmsStore`` writes it to the platform database)."""

    def load(self) -> dict[str, StationState]: ...

    def save(self, state: StationState, transaction: Transaction | None = None) -> None: ...


class SessionBasics:
    """What every OCPP version's station session keeps: the station's state, where it is stored,
    the heartbeat interval and the authorisation list. Mixed in before the ocpp ChargePoint."""

    def __init__(
        self,
        state: StationState,
        connection: Any,
        heartbeat_s: int,
        store: StatePersistence | None,
        id_tokens: AbstractSet[str] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(state.station_id, connection)  # type: ignore[call-arg]  # the ChargePoint's
        self.clock = clock
        self.state = state
        self._heartbeat_s = heartbeat_s
        self._store = store
        self._id_tokens = id_tokens
        self.synced = asyncio.Event()  # set once open transactions were checked after a boot
        self.ended = asyncio.Event()  # set when the connection is gone

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Answer a frame the ``ocpp`` package would drop silently, store or crash on (not JSON,
        NaN, nested too deeply) with a CallError, as OCPP-J asks; hand the rest on."""
        problem = frame_problem(raw_msg)
        if problem is None:
            await super().route_message(raw_msg)  # type: ignore[misc]  # the ChargePoint's
            return
        message_id, reason = problem
        code = "FormationViolation" if self._ocpp_version == "1.6" else "FormatViolation"  # type: ignore[attr-defined]
        await self._send(json.dumps([4, message_id, code, reason, {}]))  # type: ignore[attr-defined]

    def _persist(self, transaction: Transaction | None = None) -> None:
        if self._store is not None:
            self._store.save(self.state, transaction)

    def _known(self, token: str) -> bool:
        return self._id_tokens is None or token in self._id_tokens
