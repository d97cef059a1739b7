"""Vehicle definitions and the catalog that ties them to standard components.

A catalog file is a mapping with any of ``modules``, ``eaxles`` and ``vehicles``, each a list of
records. The package ships ``components.yaml`` and ``vehicles.yaml``; users add files of their own
(``--catalog FILE``) to bring a module, an e-axle, a vehicle or a whole brand without code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opensdv.model._files import CatalogError, describe_validation_error, read_document
from opensdv.model.components import BatteryModule, CheckResult, Dimensions, EAxle, Pack, check_compatibility

__all__ = [
    "APP_RUNTIME_HARDWARE_ID",
    "Catalog",
    "ChargingSpec",
    "Ecu",
    "PackSpec",
    "Vehicle",
    "VehicleDefinition",
    "load_catalog",
    "shipped_catalog_files",
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PackSpec(_Record):
    module: str = Field(min_length=1, description="id of a standard battery module")
    modules_series: int = Field(ge=1, le=64)
    modules_parallel: int = Field(default=1, ge=1, le=16)


class ChargingSpec(_Record):
    """How the car charges: what a charging site may plan for it."""

    ac_kw: float = Field(gt=0, le=50, description="on-board charger, AC")
    dc_kw: float | None = Field(default=None, gt=0, le=500, description="DC fast charging")
    bidirectional: bool = Field(default=False, description="may discharge to the grid or home (V2G/V2H)")


APP_RUNTIME_HARDWARE_ID = "OPENSDV-APP-RUNTIME-1"


class Ecu(_Record):
    hardware_id: str = Field(min_length=1)
    description: str = ""


class VehicleDefinition(_Record):
    """What a model is made of and the numbers the twin and OTA targeting need."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    brand: str = Field(min_length=1)
    model: str = Field(min_length=1)
    model_year: int = Field(ge=1990, le=2100)
    markets: list[str] = Field(min_length=1, description="ISO 3166 alpha-2 codes or EU")
    platform: str = Field(
        min_length=1, description="shared platform id; two brands on one platform = complementation"
    )
    body_type: str = Field(min_length=1)
    pack: PackSpec
    eaxles: list[str] = Field(min_length=1, max_length=4)
    curb_mass_kg: float = Field(gt=300, lt=5000)
    drag_coefficient: float = Field(gt=0.1, lt=0.8)
    frontal_area_m2: float = Field(gt=1.0, lt=6.0)
    rolling_resistance: float = Field(gt=0.003, lt=0.03, description="tyre rolling resistance coefficient")
    wheel_radius_m: float = Field(gt=0.15, lt=0.6)
    auxiliary_load_w: float = Field(ge=0, lt=10000)
    pack_envelope: Dimensions
    max_pack_mass_kg: float = Field(gt=0)
    can_adapter: str | None = Field(default=None, description="id of the brand CAN adapter (DBC + mapping)")
    charging: ChargingSpec | None = Field(default=None, description="charging capability (energy services)")
    ecus: dict[str, Ecu] = Field(
        default_factory=dict, description="brand ECUs by name; component ECUs are added"
    )

    @model_validator(mode="after")
    def _markets(self) -> Self:
        for market in self.markets:
            if not (len(market) == 2 and market.isupper() and market.isalpha()):
                raise ValueError(f"market {market!r} is not an ISO 3166 alpha-2 code such as JP, US or EU")
        return self


@dataclass(frozen=True)
class Vehicle:
    """A definition with its components resolved: what the twin simulates and the demo shows."""

    definition: VehicleDefinition
    pack: Pack
    eaxles: tuple[EAxle, ...]

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def title(self) -> str:
        d = self.definition
        return f"{d.brand} {d.model} ({d.model_year})"

    @cached_property
    def ecus(self) -> dict[str, Ecu]:
        """Brand ECUs plus the platform's: ``BMS``, ``EAXLE_FRONT``/``EAXLE_REAR`` of the standard
        components, and ``APPS``, the app runtime, whose "image" is the set of apps the car runs."""
        ecus = dict(self.definition.ecus)
        ecus["BMS"] = Ecu(
            hardware_id=self.pack.module.bms_hardware_id, description=f"BMS of {self.pack.module.id}"
        )
        for axle in self.eaxles:
            ecus[f"EAXLE_{axle.position.upper()}"] = Ecu(
                hardware_id=axle.inverter.hardware_id, description=f"inverter of {axle.id}"
            )
        ecus["APPS"] = Ecu(
            hardware_id=APP_RUNTIME_HARDWARE_ID, description="OpenSDV app runtime (apps over the air)"
        )
        return ecus

    def checks(self) -> list[CheckResult]:
        d = self.definition
        return check_compatibility(self.pack, list(self.eaxles), d.pack_envelope, d.max_pack_mass_kg)

    @property
    def compatible(self) -> bool:
        return all(check.passed for check in self.checks())


_R = TypeVar("_R", bound=BaseModel)
_SECTIONS = ("modules", "eaxles", "vehicles")


class Catalog:
    """Every module, e-axle and vehicle from a set of catalog files, cross-checked."""

    def __init__(
        self,
        modules: Mapping[str, BatteryModule],
        eaxles: Mapping[str, EAxle],
        vehicles: Mapping[str, VehicleDefinition],
        sources: Mapping[str, str] | None = None,
    ) -> None:
        self.modules = dict(modules)
        self.eaxles = dict(eaxles)
        self.vehicles = dict(vehicles)
        self._sources = dict(sources or {})
        for definition in self.vehicles.values():
            self._resolve(definition)  # fail early on dangling references

    def _resolve(self, definition: VehicleDefinition) -> Vehicle:
        source = self._sources.get(f"vehicles/{definition.id}", "catalog")
        module = self.modules.get(definition.pack.module)
        if module is None:
            raise CatalogError(
                source,
                f"vehicles[{definition.id}].pack.module",
                f"unknown module {definition.pack.module!r} (known: {', '.join(sorted(self.modules)) or 'none'})",
            )
        axles = []
        for axle_id in definition.eaxles:
            if axle_id not in self.eaxles:
                raise CatalogError(
                    source,
                    f"vehicles[{definition.id}].eaxles",
                    f"unknown e-axle {axle_id!r} (known: {', '.join(sorted(self.eaxles)) or 'none'})",
                )
            axles.append(self.eaxles[axle_id])
        positions = [a.position for a in axles]
        if len(set(positions)) != len(positions):
            raise CatalogError(
                source, f"vehicles[{definition.id}].eaxles", f"two e-axles in one position: {positions}"
            )
        clash = {f"EAXLE_{p.upper()}" for p in positions} | {"BMS"}
        if clash & set(definition.ecus):
            raise CatalogError(
                source,
                f"vehicles[{definition.id}].ecus",
                f"{sorted(clash & set(definition.ecus))} are named by the components",
            )
        try:
            pack = Pack(module, definition.pack.modules_series, definition.pack.modules_parallel)
        except ValueError as exc:
            raise CatalogError(source, f"vehicles[{definition.id}].pack", str(exc)) from None
        return Vehicle(definition, pack, tuple(axles))

    def vehicle(self, vehicle_id: str) -> Vehicle:
        try:
            definition = self.vehicles[vehicle_id]
        except KeyError:
            raise CatalogError(
                "catalog",
                "vehicles",
                f"unknown vehicle {vehicle_id!r} (known: {', '.join(sorted(self.vehicles))})",
            ) from None
        return self._resolve(definition)

    def all_vehicles(self) -> list[Vehicle]:
        return [self._resolve(d) for d in self.vehicles.values()]

    def source_of(self, section: str, record_id: str) -> str:
        return self._sources.get(f"{section}/{record_id}", "catalog")


def _parse_section(records: object, model: type[_R], section: str, source: str) -> list[_R]:
    if not isinstance(records, list):
        raise CatalogError(source, section, f"expected a list of records, got {type(records).__name__}")
    parsed = []
    for index, record in enumerate(records):
        label = record.get("id", index) if isinstance(record, dict) else index
        try:
            parsed.append(model.model_validate(record))
        except ValidationError as exc:
            raise CatalogError(source, f"{section}[{label}]", describe_validation_error(exc)) from None
    return parsed


def catalog_from_documents(documents: Iterable[tuple[object, str]]) -> Catalog:
    """Build a catalog from parsed documents; a repeated id names both files."""
    found: dict[str, dict[str, Any]] = {section: {} for section in _SECTIONS}
    sources: dict[str, str] = {}
    models: dict[str, type[BaseModel]] = {
        "modules": BatteryModule,
        "eaxles": EAxle,
        "vehicles": VehicleDefinition,
    }
    for document, source in documents:
        if not isinstance(document, dict):
            raise CatalogError(
                source, "", f"expected a mapping with {', '.join(_SECTIONS)}, got {type(document).__name__}"
            )
        unknown = set(document) - set(_SECTIONS)
        if unknown:
            raise CatalogError(
                source, "", f"unknown section(s) {sorted(unknown)} (expected {', '.join(_SECTIONS)})"
            )
        for section in _SECTIONS:
            for record in _parse_section(document.get(section, []), models[section], section, source):
                record_id = record.id  # type: ignore[attr-defined]
                key = f"{section}/{record_id}"
                if key in sources:
                    raise CatalogError(
                        source, f"{section}[{record_id}]", f"id already defined in {sources[key]}"
                    )
                found[section][record_id] = record
                sources[key] = source
    return Catalog(found["modules"], found["eaxles"], found["vehicles"], sources)


def shipped_catalog_files() -> list[Path]:
    """The component and vehicle files OpenSDV ships, in load order."""
    data = resources.files("opensdv.model") / "data"
    return [Path(str(data / "components.yaml")), Path(str(data / "vehicles.yaml"))]


def load_catalog(extra: Iterable[str | Path] = (), *, include_shipped: bool = True) -> Catalog:
    """The shipped catalog plus ``extra`` files (modules, e-axles, vehicles of your own)."""
    paths = [*(shipped_catalog_files() if include_shipped else []), *(Path(p) for p in extra)]
    return catalog_from_documents((read_document(p), str(p)) for p in paths)
