"""The file an operator writes for a managed charging site (``opensdv energy site serve``): its
stations, its grid connection and circuits, its tariff, and what to assume of a car that says
nothing about itself.

::

    name: Depot A
    cap_kw: 150                       # or cap_a_per_phase: 250 (phases: 3, volts: 230)
    timezone: Europe/Amsterdam        # the tariff's hours are local
    slot_minutes: 15                  # the plan's step
    horizon_hours: 24                 # how far each re-plan looks ahead (the past is frozen)
    stations:
      - {id: CS-001, max_kw: 22}
      - {id: CS-002, max_kw: 11}
    circuits:                         # stations behind one breaker share its limit
      - {id: row-1, stations: [CS-001, CS-002], max_a_per_phase: 32}
    tariff: {off_peak_price: 0.12, peak_price: 0.40, peak_hours: [16, 21], demand_charge: 15}
    defaults: {dwell_hours: 8, kwh: 20}   # a car without ISO 15118 needs or a driver's input
    openadr:                          # optional: the utility's grid signals (OpenADR 2.0b VEN)
      vtn_url: https://vtn.example.com/OpenADR2/Simple/2.0b
      ven_name: depot-a
      cert: ven.pem
      key: ven.key
      vtn_fingerprint: "A1:B2:..."

Grid signals are not in the file: they arrive while the site runs (OpenADR or the fleet API).
Relative paths in ``openadr`` are relative to the site file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opensdv.cloud.energy.openadr import OpenAdrSettings
from opensdv.cloud.energy.planning.site_limits import Circuit, _CircuitRecord, phase_kw
from opensdv.model._files import CatalogError, describe_validation_error, read_document

__all__ = ["ManagedSite", "load_managed_site", "site_template"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class StationRecord(_Strict):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    max_kw: float = Field(gt=0, le=1000, description="the most the station delivers, kW")


class TariffRecord(_Strict):
    off_peak_price: float = Field(default=0.12, ge=0, description="currency per kWh")
    peak_price: float = Field(default=0.40, ge=0)
    peak_hours: tuple[float, float] = (16.0, 21.0)
    demand_charge: float = Field(default=15.0, ge=0, description="currency per kW of the month's peak")
    export_share: float = Field(default=0.8, ge=0, le=1, description="exported energy earns this share of the price")

    @model_validator(mode="after")
    def _hours(self) -> Self:
        start, end = self.peak_hours
        if not 0 <= start < end <= 24:
            raise ValueError(f"peak_hours must be [start, end) within 0..24, got {list(self.peak_hours)}")
        return self


class DefaultsRecord(_Strict):
    dwell_hours: float = Field(default=8.0, gt=0, le=24 * 7, description="a car stays this long")
    kwh: float = Field(default=20.0, ge=0, le=500, description="and wants this much energy")


class ManagedSite(_Strict):
    """A managed site, checked: station ids unique, circuits over the site's own stations."""

    name: str = Field(default="site", min_length=1)
    cap_kw: float | None = Field(default=None, gt=0)
    cap_a_per_phase: float | None = Field(default=None, gt=0)
    phases: int = Field(default=3, ge=1, le=3)
    volts: float = Field(default=230.0, gt=0, le=1000)
    timezone: str = "UTC"
    slot_minutes: int = Field(default=15, ge=1, le=60)
    horizon_hours: float = Field(default=24.0, ge=1, le=24 * 7)
    stations: list[StationRecord] = Field(min_length=1)
    circuits: list[_CircuitRecord] = Field(default_factory=list)
    tariff: TariffRecord = TariffRecord()
    defaults: DefaultsRecord = DefaultsRecord()
    openadr: OpenAdrSettings | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/Amsterdam)") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.cap_kw is None) == (self.cap_a_per_phase is None):
            raise ValueError("give exactly one of cap_kw and cap_a_per_phase")
        if 60 % self.slot_minutes:
            raise ValueError(f"slot_minutes must divide an hour, got {self.slot_minutes}")
        ids = [s.id for s in self.stations]
        if twice := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"station ids repeat: {twice}")
        wired = [s for c in self.circuits for s in c.stations]
        if twice := sorted({s for s in wired if wired.count(s) > 1}):
            raise ValueError(f"stations on more than one circuit: {twice}")
        if unknown := sorted(set(wired) - set(ids)):
            raise ValueError(f"circuits name stations the site does not have: {unknown}")
        return self

    @property
    def site_cap_kw(self) -> float:
        return self.cap_kw if self.cap_kw is not None else phase_kw(self.cap_a_per_phase or 0.0, self.phases, self.volts)

    @property
    def slot_s(self) -> float:
        return self.slot_minutes * 60.0

    @property
    def horizon_slots(self) -> int:
        return round(self.horizon_hours * 60 / self.slot_minutes)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def station(self, station_id: str) -> StationRecord:
        return next(s for s in self.stations if s.id == station_id)

    def circuit_limits(self) -> tuple[Circuit, ...]:
        return tuple(Circuit(c.id, frozenset(c.stations), c.kw) for c in self.circuits)


def load_managed_site(path: Path) -> ManagedSite:
    """The site file, checked; every problem names the file and the field."""
    try:
        site = ManagedSite.model_validate(read_document(path) or {})
    except ValidationError as exc:
        raise CatalogError(path, "", describe_validation_error(exc)) from None
    if site.openadr is not None:
        files = {name: path.parent / value for name in ("cert", "key", "ca_file")
                 if (value := getattr(site.openadr, name)) is not None}  # fmt: skip
        if missing := [f"openadr.{name}: {file}" for name, file in files.items() if not file.is_file()]:
            raise CatalogError(path, "", f"no such file: {'; '.join(missing)}")
        site = site.model_copy(update={"openadr": site.openadr.model_copy(update=files)})
    return site


def site_template(stations: int, name: str = "My site", station_kw: float = 11.0) -> str:
    """A site file for stations CS-001..CS-N to start from: a cap of 60 % of what they could draw
    together (sites are rarely connected for all at once), each station on the site's own cap."""
    site = ManagedSite(
        name=name,
        cap_kw=round(max(0.6 * stations * station_kw, station_kw), 1),
        stations=[StationRecord(id=f"CS-{n:03d}", max_kw=station_kw) for n in range(1, stations + 1)],
    )
    body = site.model_dump(mode="json", exclude_none=True, exclude={"circuits"})
    header = (
        f"# A managed charging site ({stations} stations). Edit the cap to your grid connection, the\n"
        "# stations to your chargers (each needs credentials: opensdv energy station add ID), then\n"
        "#   opensdv energy site serve --site THIS_FILE\n"
    )
    return header + yaml.safe_dump(body, sort_keys=False)
