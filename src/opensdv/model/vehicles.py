"""Vehicle definitions and the catalog that ties them to standard components.

A catalog file is a mapping with any of ``modules``, ``eaxles`` and ``vehicles``, each a list of
records. The package ships ``components.yaml`` and ``vehicles.yaml``; users add files of their own
(``--catalog FILE``) to bring a module, an e-axle, a vehicle or a whole brand without code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opensdv.model._files import CatalogError, describe_validation_error, read_document
from opensdv.model.components import BatteryModule, CheckResult, Dimensions, EAxle, Pack, check_compatibility

__all__ = [
    "APP_RUNTIME_HARDWARE_ID",
    "Catalog",
    "ChargingSpec",
    "Ecu",
    "PackSpec",
    "PublishedLabel",
    "Regulation",
    "RoadLoad",
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
    efficiency: float = Field(
        default=0.86,
        gt=0.5,
        le=1.0,
        description="energy into the pack per kWh from the wall on AC (charger, cabling, battery charging losses)",
    )


Regulation = Literal["epa", "wltp", "japan-wltc"]


class RoadLoad(_Record):
    """Coast-down coefficients, F = f0 + f1 v + f2 v^2 with v in km/h, as homologation documents
    print them (WLTP CoC fields f0/f1/f2; EPA's target A/B/C converted from lbf and mph)."""

    f0_n: float = Field(gt=0, lt=2000)
    f1_n_per_kmh: float = Field(ge=-5, lt=20)
    f2_n_per_kmh2: float = Field(gt=0, lt=1)
    test_mass_kg: float = Field(gt=300, lt=8000, description="the mass the coast-down was run at")


class PublishedLabel(_Record):
    """A range (and consumption) a regulation's test gave the car, as printed for buyers, with its source."""

    regulation: Regulation
    range_km: float = Field(gt=0, lt=2000, description="the label's range (EPA: combined, adjusted)")
    consumption_wh_per_km: float | None = Field(
        default=None, gt=20, lt=1000, description="the label's consumption from the wall (AC), if it states one"
    )
    adjustment: float | None = Field(
        default=None,
        gt=0.5,
        le=1.0,
        description="EPA only: the maker's factor from dynamometer to label (0.7, or its 5-cycle tests' ratio); "
        "not given: EPA's derived 5-cycle adjustment",
    )
    road_load: RoadLoad | None = Field(
        default=None,
        description="the coast-down this regulation's test used (EU CoC f0/f1/f2 for WLTP, EPA's target "
        "coefficients), at its test mass; replaces the vehicle's road load and test mass for this label",
    )
    source: str = Field(min_length=1, description="where the figures are published")

    @model_validator(mode="after")
    def _adjustment_is_epa_only(self) -> Self:
        if self.regulation != "epa" and self.adjustment is not None:
            raise ValueError(f"adjustment applies to EPA labels only, not {self.regulation}")
        return self


APP_RUNTIME_HARDWARE_ID = "OPENSDV-APP-RUNTIME-1"
DEFAULT_USABLE_FRACTION = 0.9


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
    curb_mass_kg: float = Field(gt=300, lt=5000, description="unladen, without a driver")
    gross_mass_kg: float | None = Field(default=None, gt=300, lt=8000, description="technically permissible maximum laden mass")
    drag_coefficient: float | None = Field(default=None, gt=0.1, lt=0.8)
    frontal_area_m2: float | None = Field(default=None, gt=1.0, lt=6.0)
    rolling_resistance: float | None = Field(
        default=None, gt=0.003, lt=0.03, description="tyre rolling resistance coefficient"
    )
    road_load: RoadLoad | None = Field(
        default=None, description="coast-down coefficients, instead of drag and rolling resistance"
    )
    wheel_radius_m: float = Field(gt=0.15, lt=0.6)
    auxiliary_load_w: float = Field(ge=0, lt=10000, description="in use: low-voltage loads plus climate control")
    test_load_w: float = Field(
        default=250,
        ge=0,
        lt=2000,
        description="low-voltage loads on a dynamometer, climate control off (every label's test conditions)",
    )
    usable_energy_kwh: float | None = Field(
        default=None, gt=0, description="what the BMS lets the car use; default: 90 % of the pack's nominal energy"
    )
    labels: list[PublishedLabel] = Field(default_factory=list, description="published ranges to validate against")
    sources: dict[str, str] = Field(
        default_factory=dict, description="field name -> where its value comes from (a spec sheet, a test record)"
    )
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

    @model_validator(mode="after")
    def _road_load_given_once(self) -> Self:
        coefficients = (self.drag_coefficient, self.frontal_area_m2, self.rolling_resistance)
        if self.road_load is None and None in coefficients:
            raise ValueError("give drag_coefficient, frontal_area_m2 and rolling_resistance, or road_load")
        if self.road_load is not None and any(c is not None for c in coefficients):
            raise ValueError("road_load replaces drag_coefficient, frontal_area_m2 and rolling_resistance: give one")
        return self

    @model_validator(mode="after")
    def _sources_name_fields(self) -> Self:
        unknown = sorted(set(self.sources) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"sources names no field of a vehicle: {', '.join(unknown)}")
        regulations = [label.regulation for label in self.labels]
        if len(set(regulations)) != len(regulations):
            raise ValueError(f"one label per regulation, got {regulations}")
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

    def with_labels(self, labels: Sequence[PublishedLabel]) -> Vehicle:
        """The vehicle judged against other published figures; a regulation's own coast-down in the
        catalog stays with the regulation unless the new label gives one."""
        own = {label.regulation: label.road_load for label in self.definition.labels}
        kept = [
            label if label.road_load else label.model_copy(update={"road_load": own.get(label.regulation)})
            for label in labels
        ]
        return replace(self, definition=self.definition.model_copy(update={"labels": kept}))

    def checks(self) -> list[CheckResult]:
        d = self.definition
        return check_compatibility(self.pack, list(self.eaxles), d.pack_envelope, d.max_pack_mass_kg)

    @property
    def usable_energy_kwh(self) -> float:
        """The catalog's figure, else the default window (FASTSim's convention: 5 % to 95 %)."""
        stated = self.definition.usable_energy_kwh
        return stated if stated is not None else self.pack.energy_kwh * DEFAULT_USABLE_FRACTION

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
        usable = definition.usable_energy_kwh
        if usable is not None and usable > pack.energy_kwh:
            raise CatalogError(
                source,
                f"vehicles[{definition.id}].usable_energy_kwh",
                f"{usable:g} kWh is more than the pack's nominal {pack.energy_kwh:.2f} kWh",
            )
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
