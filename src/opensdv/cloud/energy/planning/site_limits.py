"""What a site's grid connection and wiring allow: the site cap, circuit limits (kW, or A per phase)
and the grid operator's signals (a power cap for a while, a flexibility window) — read from a site
file and turned into per-slot arrays the planners take.

A site file (YAML or JSON)::

    name: Depot A
    cap_kw: 150                        # or cap_a_per_phase: 250 (phases: 3, volts: 230)
    circuits:                          # stations behind one breaker share its limit, both ways
      - {id: row-1, stations: [S1, S2, S3], max_a_per_phase: 32}
      - {id: row-2, stations: [S4], max_kw: 7.4}
    grid_signals:                      # slots [from_slot, to_slot)
      - {kind: cap, from_slot: 64, to_slot: 80, kw: 60}                 # the site may import/export 60 kW
      - {kind: flexibility, from_slot: 8, to_slot: 16, min_import_kw: 40}  # it must take 40 kW, export nothing
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opensdv.cloud.energy.planning.sessions import Session
from opensdv.model._files import CatalogError, describe_validation_error, read_document

__all__ = ["Circuit", "SiteLimits", "load_site", "phase_kw"]


def phase_kw(amps: float, phases: int = 3, volts: float = 230.0) -> float:
    """A current limit per phase as power: amps x phase-to-neutral volts x phases."""
    return amps * volts * phases / 1000


@dataclass(frozen=True)
class Circuit:
    """Stations behind one breaker: their net power together stays within ``max_kw``, charging
    or discharging."""

    id: str
    stations: frozenset[str]
    max_kw: float


@dataclass(frozen=True)
class SiteLimits:
    """Per slot: the site cap (import and export), the least the site must import (upward
    flexibility; no export then), and the circuits."""

    cap_kw: NDArray[np.float64]
    min_import_kw: NDArray[np.float64]
    circuits: tuple[Circuit, ...] = ()

    def circuit_index(self, sessions: Sequence[Session]) -> NDArray[np.int64]:
        """Each session's circuit (by its station), -1 for none."""
        where = {station: n for n, c in enumerate(self.circuits) for station in c.stations}
        return np.array([where.get(s.station, -1) for s in sessions], dtype=np.int64)


class _Power(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    max_kw: float | None = Field(default=None, gt=0)
    max_a_per_phase: float | None = Field(default=None, gt=0)
    phases: Literal[1, 3] = 3
    volts: float = Field(default=230.0, gt=0, le=1000, description="phase to neutral")

    @model_validator(mode="after")
    def _one_limit(self) -> Self:
        if (self.max_kw is None) == (self.max_a_per_phase is None):
            raise ValueError("give exactly one of max_kw and max_a_per_phase")
        return self

    @property
    def kw(self) -> float:
        if self.max_kw is not None:
            return self.max_kw
        assert self.max_a_per_phase is not None  # one of them is set (checked above)
        return phase_kw(self.max_a_per_phase, self.phases, self.volts)


class _CircuitRecord(_Power):
    id: str = Field(min_length=1)
    stations: list[str] = Field(min_length=1)


class _Signal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    kind: Literal["cap", "flexibility"]
    from_slot: int = Field(ge=0)
    to_slot: int = Field(gt=0)
    kw: float | None = Field(default=None, ge=0, description="cap: the most the site may import or export")
    min_import_kw: float | None = Field(
        default=None, gt=0, description="flexibility: the least it must import"
    )

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Self:
        if self.to_slot <= self.from_slot:
            raise ValueError(f"to_slot {self.to_slot} must be after from_slot {self.from_slot}")
        wanted, other = ("kw", "min_import_kw") if self.kind == "cap" else ("min_import_kw", "kw")
        if getattr(self, wanted) is None or getattr(self, other) is not None:
            raise ValueError(f"a {self.kind} signal takes {wanted} (and not {other})")
        return self


class _SiteRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = Field(default="site", min_length=1)
    cap_kw: float | None = Field(default=None, gt=0)
    cap_a_per_phase: float | None = Field(default=None, gt=0)
    phases: Literal[1, 3] = 3
    volts: float = Field(default=230.0, gt=0, le=1000)
    circuits: list[_CircuitRecord] = Field(default_factory=list)
    grid_signals: list[_Signal] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.cap_kw is None) == (self.cap_a_per_phase is None):
            raise ValueError("give exactly one of cap_kw and cap_a_per_phase")
        ids = [c.id for c in self.circuits]
        if len(set(ids)) != len(ids):
            raise ValueError(f"circuit ids repeat: {sorted({i for i in ids if ids.count(i) > 1})}")
        stations = [s for c in self.circuits for s in c.stations]
        if len(set(stations)) != len(stations):
            twice = sorted({s for s in stations if stations.count(s) > 1})
            raise ValueError(f"stations on more than one circuit: {twice}")
        return self


def load_site(path: Path, slots: int) -> tuple[str, SiteLimits]:
    """The site file's name and limits over ``slots`` slots; every problem names the file and
    the field. A signal reaching past the last slot is cut there."""
    try:
        record = _SiteRecord.model_validate(read_document(path) or {})
    except ValidationError as exc:
        raise CatalogError(path, "", describe_validation_error(exc)) from None
    cap = np.full(
        slots,
        record.cap_kw if record.cap_kw is not None else phase_kw(record.cap_a_per_phase or 0.0, record.phases, record.volts),
    )  # fmt: skip
    minimum = np.zeros(slots)
    for n, signal in enumerate(record.grid_signals):
        window = slice(signal.from_slot, min(signal.to_slot, slots))
        if signal.kind == "cap":
            cap[window] = np.minimum(cap[window], signal.kw or 0.0)
        else:
            minimum[window] = np.maximum(minimum[window], signal.min_import_kw or 0.0)
        if (minimum > cap).any():
            raise CatalogError(path, f"grid_signals.{n}", "asks for more import than the site's cap allows")
    circuits = tuple(Circuit(c.id, frozenset(c.stations), c.kw) for c in record.circuits)
    return record.name, SiteLimits(cap, minimum, circuits)
