"""What a CSMS knows of its stations, whatever OCPP version they speak: boot data, connector
states, transactions — and where that state is kept between restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.energy.errors import EnergyError

__all__ = [
    "CsmsError",
    "SessionBasics",
    "StatePersistence",
    "StationState",
    "Transaction",
    "energy_and_power",
    "utc_now",
]

_ENERGY = "Energy.Active.Import.Register"


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


@dataclass
class StationState:
    """What the CSMS knows of one station: its boot data, connector states, transactions."""

    station_id: str
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    last_heartbeat: str | None = None
    firmware_status: list[str] = field(default_factory=list)  # FirmwareStatusNotification, in order
    ev_needs: dict[int, dict[str, Any]] = field(default_factory=dict)  # OCPP 2.1 V2X needs by EVSE
    connectors: dict[tuple[int, int], str] = field(default_factory=dict)
    transactions: dict[str, Transaction] = field(default_factory=dict)

    @property
    def booted(self) -> bool:
        return self.vendor is not None


def utc_now(clock: Clock = SYSTEM_CLOCK) -> str:
    """An OCPP timestamp (RFC 3339, UTC, whole seconds) of ``clock``'s time."""
    return datetime.fromtimestamp(clock.time(), UTC).isoformat(timespec="seconds")


def energy_and_power(meter_values: Iterable[dict[str, Any]]) -> tuple[float | None, float | None]:
    """The last energy register (Wh) and power (W) in OCPP meter values; kWh/kW are converted."""
    energy = power = None
    for sample_set in meter_values:
        for sample in sample_set.get("sampled_value", []):
            measurand = sample.get("measurand", _ENERGY)
            scale = 1000.0 if sample.get("unit_of_measure", {}).get("unit") in ("kWh", "kW") else 1.0
            if measurand == _ENERGY:
                energy = float(sample["value"]) * scale
            elif measurand == "Power.Active.Import":
                power = float(sample["value"]) * scale
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

    def _persist(self, transaction: Transaction | None = None) -> None:
        if self._store is not None:
            self._store.save(self.state, transaction)

    def _known(self, token: str) -> bool:
        return self._id_tokens is None or token in self._id_tokens
