"""Charging sessions: who is plugged in when, and what they need.

The plain format, one row per session (CSV with a header, or a JSON list of objects):

| field | meaning |
| --- | --- |
| ``id`` | session id |
| ``station`` | charging station id |
| ``arrival``, ``departure`` | slot numbers (``arrival`` inclusive, ``departure`` exclusive) |
| ``kwh_requested`` | energy the driver asked for |
| ``max_kw`` | most charging power (car and station) |
| ``max_discharge_kw`` | optional, V2G: most discharging power (0 = no V2G) |
| ``capacity_kwh``, ``arrival_soc``, ``min_soc`` | optional, V2G: the battery window to respect |
| ``wear_cost_per_kwh`` | optional, V2G: this battery's wear per kWh of throughput (else the plan's) |

The ACN-Data export's names (``session_id``, ``station_id``, ``arrival_step``, ``departure_step``,
``requested_kwh``) are accepted too.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensdv.cloud.energy.errors import EnergyError
from opensdv.files import FileFormatError, parse_json, read_text

__all__ = ["Session", "SessionError", "load_sessions", "with_v2g"]

_ALIASES = {
    "session_id": "id",
    "station_id": "station",
    "arrival_step": "arrival",
    "departure_step": "departure",
    "requested_kwh": "kwh_requested",
}
MAX_SLOT = 366 * 24 * 12  # a year of five-minute slots: plans past it would not fit in memory
_REQUIRED = ("id", "station", "arrival", "departure", "kwh_requested", "max_kw")


class SessionError(EnergyError):
    """A session file or record is unusable; the message names the file, row and field."""


@dataclass(frozen=True)
class Session:
    id: str
    station: str
    arrival: int
    departure: int
    kwh_requested: float
    max_kw: float
    max_discharge_kw: float = 0.0
    capacity_kwh: float | None = None
    arrival_soc: float | None = None
    min_soc: float = 0.0
    wear_cost_per_kwh: float | None = None  # None: the plan's

    def __post_init__(self) -> None:
        if self.departure <= self.arrival:
            raise ValueError(f"departure {self.departure} must be after arrival {self.arrival}")
        if self.arrival < 0:
            raise ValueError(f"arrival {self.arrival} must not be negative")
        if self.departure > MAX_SLOT:
            raise ValueError(f"departure {self.departure} is past slot {MAX_SLOT} (a year of five-minute slots)")
        for name in ("kwh_requested", "max_kw", "max_discharge_kw"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        wear = self.wear_cost_per_kwh
        if wear is not None and (not math.isfinite(wear) or wear < 0):
            raise ValueError(f"wear_cost_per_kwh must be a finite number >= 0, got {wear}")
        if self.max_discharge_kw > 0:
            if self.capacity_kwh is None or self.arrival_soc is None:
                raise ValueError("a V2G session (max_discharge_kw > 0) needs capacity_kwh and arrival_soc")
            if not (0 <= self.min_soc <= self.arrival_soc <= 1):
                raise ValueError(
                    f"need 0 <= min_soc <= arrival_soc <= 1, got {self.min_soc}, {self.arrival_soc}"
                )

    @property
    def v2g(self) -> bool:
        return self.max_discharge_kw > 0

    @property
    def slots(self) -> int:
        return self.departure - self.arrival


def _number(row: dict[str, Any], field: str, where: str, kind: type = float, default: Any = None) -> Any:
    raw = row.get(field)
    if raw is None or raw == "":
        if default is not None or field not in _REQUIRED:
            return default
        raise SessionError(f"{where}: missing {field}")
    try:
        value = kind(float(raw)) if kind is int else kind(raw)
    except (TypeError, ValueError):
        raise SessionError(f"{where}: {field} is not a number: {raw!r}") from None
    if kind is int and float(raw) != value:
        raise SessionError(f"{where}: {field} must be a whole slot number: {raw!r}")
    return value


def load_sessions(path: Path) -> list[Session]:
    """Read sessions from CSV or JSON; every problem names the file, the row and the field."""
    try:
        text = read_text(path)
        rows = parse_json(text, path) if path.suffix.lower() == ".json" else None
    except FileFormatError as exc:
        raise SessionError(str(exc)) from None
    if path.suffix.lower() == ".json":
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise SessionError(f"{path}: expected a list of session objects")
        numbered = list(enumerate(rows, 1))
        label = "item"
    else:
        try:
            numbered = list(enumerate(csv.DictReader(text.splitlines()), 2))
        except csv.Error as exc:
            raise SessionError(f"{path}: not a CSV of sessions: {exc}") from None
        label = "line"
    sessions: list[Session] = []
    seen: set[str] = set()
    for number, raw in numbered:
        row = {_ALIASES.get(k.strip(), k.strip()): v for k, v in raw.items() if k is not None}
        where = f"{path}: {label} {number}"
        missing = [f for f in _REQUIRED if f not in row]
        if missing:
            raise SessionError(f"{where}: missing field(s) {missing}")
        session_id = str(row["id"])
        if session_id in seen:
            raise SessionError(f"{where}: session id {session_id!r} appears twice")
        seen.add(session_id)
        try:
            sessions.append(
                Session(
                    id=session_id,
                    station=str(row["station"]),
                    arrival=_number(row, "arrival", where, int),
                    departure=_number(row, "departure", where, int),
                    kwh_requested=_number(row, "kwh_requested", where),
                    max_kw=_number(row, "max_kw", where),
                    max_discharge_kw=_number(row, "max_discharge_kw", where, default=0.0),
                    capacity_kwh=_number(row, "capacity_kwh", where),
                    arrival_soc=_number(row, "arrival_soc", where),
                    min_soc=_number(row, "min_soc", where, default=0.0),
                    wear_cost_per_kwh=_number(row, "wear_cost_per_kwh", where),
                )
            )
        except ValueError as exc:
            raise SessionError(f"{where} (session {session_id}): {exc}") from None
    if not sessions:
        raise SessionError(f"{path}: no sessions")
    return sessions


def with_v2g(
    sessions: list[Session], share: float, *, capacity_kwh: float = 40.0, min_soc: float = 0.3, seed: int = 7
) -> list[Session]:
    """Make ``share`` of the sessions V2G-capable (for what-if studies on data without V2G fields):
    a battery of ``capacity_kwh`` (or larger, if the request needs it) that arrives with what it
    asked for still missing below 90 %, may discharge at its charging power, and keeps ``min_soc``."""
    import random

    chosen = set(random.Random(seed).sample(range(len(sessions)), round(share * len(sessions))))
    result = []
    for i, s in enumerate(sessions):
        if i in chosen:
            capacity = max(capacity_kwh, s.kwh_requested / (0.9 - min_soc))
            arrival_soc = max(min_soc, 0.9 - s.kwh_requested / capacity)  # max(): rounding
            s = Session(
                **{
                    **s.__dict__,
                    "max_discharge_kw": s.max_kw,
                    "capacity_kwh": capacity,
                    "arrival_soc": arrival_soc,
                    "min_soc": min_soc,
                }
            )
        result.append(s)
    return result
