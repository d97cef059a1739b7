"""The battery passport in the Battery Pass consortium's data model v1.2.0 (DIN DKE SPEC 99100),
with the regulation's access groups: the Performance and Durability aspect computed by the
platform, the six others from the maker's records.

What only the maker can state (its address and plants, the carbon footprint study, the due
diligence report, the material composition, dismantling and recycled content, labels and test
reports) comes from the maker's records, one JSON document per aspect and module type in the
passport records directory, validated against the consortium's schema; the platform adds what it
knows of each battery to the general product information (identifiers, mass, putting into
service). An aspect the maker has not supplied is listed as such, never made up.

Every value says where it comes from (``provenance``): *measured* from the car's own telemetry in
the cloud (state of health, resistance growth, throughput, temperature exposure, state of charge),
*estimated* by the twin's ageing model where the telemetry cannot tell yet, *computed* from the
pack's model (power capability, round-trip efficiency, ratings), or *declared* by the module's
maker (``data/module_declarations.yaml``: expected cycles and lifetime, the reference test,
self-discharge). The aspect validates against the consortium's published JSON Schema (shipped).

Access (Regulation 2023/1542, Article 77 and Annex XIII): the battery's technical properties are
public (Annex XIII point 1: ratings, voltages, power capability, expected lifetime, reference
test, round-trip efficiency, internal resistance); its condition — state of health and what
measures it — is for persons with a legitimate interest (point 4, Article 14: here the car's
brand and the platform) and for authorities (points 3 and 4: the ``authority`` tenant); ``ACCESS``
says it for every part of every aspect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from jsonschema import Draft4Validator
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from opensdv.cloud.energy.battery.passport import PassportError
from opensdv.cloud.energy.battery.soh import MeasuredHealth
from opensdv.cloud.telemetry.store import TelemetryStorage
from opensdv.model.vehicles import Vehicle
from opensdv.physics import VehicleParams
from opensdv.physics.ageing import AgeingResult

__all__ = [
    "ACCESS",
    "ACCESS_GROUPS",
    "MAKER_ASPECTS",
    "PERFORMANCE",
    "AccessGroup",
    "BatteryUsage",
    "ModuleDeclaration",
    "battery_usage",
    "declaration_for",
    "general_product_information",
    "maker_records",
    "passport_identifier",
    "performance_and_durability",
    "readable_by",
    "section_access",
    "validate_aspect",
    "validate_performance",
]

AccessGroup = Literal["public", "legitimate-interest", "authorities"]
ACCESS_GROUPS: tuple[AccessGroup, ...] = ("public", "legitimate-interest", "authorities")
PERFORMANCE = "PerformanceAndDurability"
MAKER_ASPECTS = (  # what only the battery's maker can state: its records, validated and served
    "GeneralProductInformation", "CarbonFootprintForBatteries", "SupplyChainDueDiligence", "MaterialComposition",
    "Circularity", "Labeling",
)  # fmt: skip
ACCESS: dict[str, dict[str, AccessGroup]] = {  # who may read each part of each aspect (Annex XIII)
    PERFORMANCE: {"batteryTechicalProperties": "public", "batteryCondition": "legitimate-interest"},  # sic: Techical
    "GeneralProductInformation": {"*": "public"},  # point 1(a), Annex VI part A
    "CarbonFootprintForBatteries": {"*": "public"},  # point 1(c)
    "SupplyChainDueDiligence": {"*": "public"},  # point 1(d)
    "MaterialComposition": {  # chemistry and hazardous substances public (1(b)); the detailed composition (2(a)) not
        "batteryChemistry": "public", "hazardousSubstances": "public", "batteryMaterials": "legitimate-interest",
    },
    "Circularity": {  # recycled and renewable content, end of life public (1(e)-(h)); dismantling, spares, safety (2)
        "recycledContent": "public", "renewableContent": "public", "endOfLifeInformation": "public",
        "dismantlingAndRemovalInformation": "legitimate-interest", "sparePartSources": "legitimate-interest",
        "safetyMeasures": "legitimate-interest",
    },
    "Labeling": {"labels": "public", "declarationOfConformity": "public", "resultOfTestReport": "authorities"},  # 3
}  # fmt: skip
CURRENT = "Vehicle.Powertrain.TractionBattery.CurrentCurrent"
VOLTAGE = "Vehicle.Powertrain.TractionBattery.CurrentVoltage"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
TEMPERATURE = "Vehicle.Powertrain.TractionBattery.Temperature.Average"
MAX_GAP_S = 60.0  # a sample stands for at most this long (the link may drop out)
DEEP_DISCHARGE_PERCENT = 2.0


class ModuleDeclaration(BaseModel):
    """What a standard module's maker declares and no telemetry measures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expected_cycles: int = Field(ge=1)
    expected_lifetime_years: int = Field(ge=1, le=100)
    capacity_threshold_for_exhaustion_percent: float = Field(gt=0, lt=100)
    lifetime_reference_test: str = Field(pattern=r"^https?://")
    c_rate_life_cycle_test: float = Field(gt=0, le=10)
    initial_self_discharge_percent_per_month: float = Field(ge=0, le=100)
    round_trip_efficiency_at_50_percent_cycle_life_percent: float = Field(gt=0, le=100)
    temperature_range_idle_state_c: float = Field(ge=-20, le=60)


@cache
def _declarations() -> dict[str, ModuleDeclaration]:
    text = (resources.files("opensdv.cloud.energy.battery") / "data" / "module_declarations.yaml").read_text()
    raw = yaml.safe_load(text)
    try:
        return {module: ModuleDeclaration.model_validate(fields) for module, fields in raw.items()}
    except ValidationError as exc:
        raise PassportError(f"module_declarations.yaml: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from None


def declaration_for(vehicle: Vehicle) -> ModuleDeclaration:
    """The declaration of the vehicle's standard module (``PassportError`` if its maker gave none)."""
    module = vehicle.pack.module.id
    found = _declarations().get(module)
    if found is None:
        raise PassportError(f"module {module}: no maker's declaration for the battery passport (module_declarations.yaml)")
    return found


@dataclass(frozen=True)
class BatteryUsage:
    """What the cloud's telemetry of one car says about its pack's use, over ``[start, end]``."""

    start: float
    end: float
    energy_throughput_kwh: float
    capacity_throughput_ah: float
    soc_percent: float
    soc_at: float
    hours_above_max: float  # of the operating range
    hours_below_min: float
    hours_above_max_charging: float  # of the charging range, while charging
    hours_below_min_charging: float
    negative_events: tuple[tuple[str, float], ...]  # (what, when)


def battery_usage(store: TelemetryStorage, vehicle: Vehicle, vin: str, start: float, end: float) -> BatteryUsage | None:
    """The pack's use from the car's stored telemetry in [start, end); ``None`` without any."""
    series = store.series_of([vin], CURRENT, start, end, 1.0), store.series_of([vin], VOLTAGE, start, end, 1.0)
    soc = store.series(vin, SOC, start, end)
    if not soc:
        return None
    empty = (np.zeros(0), np.zeros(0))
    (t_i, amps), (t_v, volts) = (s.get(vin, empty) for s in series)
    seconds = np.intersect1d(t_i, t_v)
    amps, volts = amps[np.searchsorted(t_i, seconds)], volts[np.searchsorted(t_v, seconds)]
    dt = np.minimum(np.diff(seconds, append=seconds[-1] if len(seconds) else 0.0), MAX_GAP_S)
    charging_at = dict(zip(seconds.tolist(), (amps > 0.5).tolist(), strict=True))
    thermal = vehicle.pack.module.thermal
    hours = dict.fromkeys(("above", "below", "above_charging", "below_charging"), 0.0)
    events: list[tuple[str, float]] = []
    temperatures = store.series(vin, TEMPERATURE, start, end)
    for k, point in enumerate(temperatures):
        span_h = min((temperatures[k + 1].ts if k + 1 < len(temperatures) else point.ts) - point.ts, MAX_GAP_S) / 3600
        charging = charging_at.get(float(np.floor(point.ts)), False)
        hours["above"] += span_h * (point.value > thermal.max_operating_c)
        hours["below"] += span_h * (point.value < thermal.min_operating_c)
        hours["above_charging"] += span_h * (charging and point.value > thermal.max_charge_c)
        hours["below_charging"] += span_h * (charging and point.value < thermal.min_charge_c)
        if point.value > thermal.max_operating_c and (k == 0 or temperatures[k - 1].value <= thermal.max_operating_c):
            events.append(("overtemperature", point.ts))
    for k, point in enumerate(soc):
        if point.value < DEEP_DISCHARGE_PERCENT and (k == 0 or soc[k - 1].value >= DEEP_DISCHARGE_PERCENT):
            events.append(("deep discharge", point.ts))
    return BatteryUsage(
        start=float(soc[0].ts), end=float(soc[-1].ts),
        energy_throughput_kwh=float(np.sum(np.abs(amps * volts) * dt) / 3.6e6),
        capacity_throughput_ah=float(np.sum(np.abs(amps) * dt) / 3600),
        soc_percent=float(soc[-1].value), soc_at=float(soc[-1].ts),
        hours_above_max=hours["above"], hours_below_min=hours["below"],
        hours_above_max_charging=hours["above_charging"], hours_below_min_charging=hours["below_charging"],
        negative_events=tuple(sorted(events, key=lambda e: e[1])),
    )  # fmt: skip


def _round_trip_percent(ocv_v: float, current_a: float, resistance_ohm: float) -> float:
    """Energy out over energy in for a charge and a discharge at ``current_a`` through ``resistance_ohm``."""
    return 100 * (ocv_v - current_a * resistance_ohm) / (ocv_v + current_a * resistance_ohm)


def performance_and_durability(
    vehicle: Vehicle, usage: BatteryUsage, health: MeasuredHealth | None, aged: AgeingResult, now: float
) -> tuple[dict[str, Any], dict[str, str]]:
    """The aspect (validated against the consortium's schema) and where each value comes from."""
    declared = declaration_for(vehicle)
    pack = vehicle.pack
    params = VehicleParams.from_vehicles([vehicle])
    r0 = float(params.r0_ohm[0])
    cell = pack.module.cell_model

    def ocv(soc: float) -> float:
        return cell.ocv(soc) * pack.cells_series

    peak = pack.peak_discharge_a
    power_at = {s: peak * (ocv(s / 100) - peak * r0) / 1000 for s in (80, 20)}  # kW
    rated_power_w = peak * pack.nominal_voltage_v
    measured_soh = health is not None and health.soh is not None
    soh = float(health.soh) if health is not None and health.soh is not None else float(aged.state_of_health[-1])
    measured_r = health is not None and health.resistance_factor is not None
    factor = float(health.resistance_factor) if health is not None and health.resistance_factor is not None else float(aged.resistance_factor[-1])
    reference_a = declared.c_rate_life_cycle_test * pack.capacity_ah
    efficiency_new = _round_trip_percent(ocv(0.5), reference_a, r0)
    efficiency_now = _round_trip_percent(ocv(0.5), reference_a, r0 * factor)
    stamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    soc_stamp = datetime.fromtimestamp(usage.soc_at, UTC).isoformat(timespec="seconds")
    full_cycles = usage.capacity_throughput_ah / (2 * pack.capacity_ah)
    aspect = {
        "batteryTechicalProperties": {
            "originalPowerCapability": [{"atSoC": s, "powerCapabilityAt": round(kw, 1)} for s, kw in power_at.items()],
            "ratedMaximumPower": round(rated_power_w / 1000, 1),
            "powerCapabilityRatio": round(rated_power_w / (pack.energy_kwh * 1000), 3),
            "ratedEnergy": round(pack.energy_kwh, 2),
            "expectedNumberOfCycles": declared.expected_cycles,
            "initialSelfDischarge": declared.initial_self_discharge_percent_per_month,
            "roundtripEfficiency": round(efficiency_new, 2),
            "ratedCapacity": round(pack.capacity_ah, 2),
            "initialInternalResistance": [{"ohmicResistance": round(r0, 5), "batteryComponent": "pack"}],
            "expectedLifetime": declared.expected_lifetime_years,
            "nominalVoltage": round(pack.nominal_voltage_v, 1),
            "minimumVoltage": round(pack.min_voltage_v, 1),
            "maximumVoltage": round(pack.max_voltage_v, 1),
            "capacityThresholdForExhaustion": declared.capacity_threshold_for_exhaustion_percent,
            "lifetimeReferenceTest": declared.lifetime_reference_test,
            "cRateLifeCycleTest": declared.c_rate_life_cycle_test,
            "temperatureRangeIdleState": declared.temperature_range_idle_state_c,
        },
        "batteryCondition": {
            "energyThroughput": round(usage.energy_throughput_kwh, 3),
            "capacityThroughput": {"capacityThroughputValue": round(usage.capacity_throughput_ah, 2), "lastUpdate": stamp},
            "numberOfFullCycles": {"numberOfFullCyclesValue": round(full_cycles, 2), "lastUpdate": stamp},
            "stateOfCertifiedEnergy": {"stateOfCertifiedEnergyValue": round(soh * 100, 2), "lastUpdate": stamp},
            "capacityFade": {"capacityFadeValue": round((1 - soh) * 100, 2), "lastUpdate": stamp},
            "remainingEnergy": {"remainingEnergyalue": round(pack.energy_kwh * soh, 2), "lastUpdate": stamp},  # sic
            "remainingCapacity": {"remainingCapacityValue": round(pack.capacity_ah * soh, 2), "lastUpdate": stamp},
            "negativeEvents": [
                {"negativeEvent": what, "lastUpdate": datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")}
                for what, when in usage.negative_events
            ],
            "temperatureInformation": {
                "timeExtremeHighTemp": round(usage.hours_above_max, 3), "timeExtremeLowTemp": round(usage.hours_below_min, 3),
                "timeExtremeHighTempCharging": round(usage.hours_above_max_charging, 3),
                "timeExtremeLowTempCharging": round(usage.hours_below_min_charging, 3), "lastUpdate": stamp,
            },
            "remainingPowerCapability": [
                {"remainingPowerCapabilityValue": {"rPCLastUpdated": stamp, "atSoC": s, "powerCapabilityAt": round(kw / factor, 1)},
                 "lastUpdate": stamp}
                for s, kw in power_at.items()
            ],
            "powerFade": round((1 - 1 / factor) * 100, 2),
            "roundTripEfficiencyFade": round((efficiency_new - efficiency_now) / efficiency_new * 100, 3),
            "evolutionOfSelfDischarge": {"evolutionOfSelfDischargeEntityValue": 0.0},
            "currentSelfDischargingRate": {
                "currentSelfDischargingRateEntity": declared.initial_self_discharge_percent_per_month, "lastUpdate": stamp,
            },
            "internalResistanceIncrease": [
                {"internalResistanceIncreaseValue": round((factor - 1) * 100, 2), "lastUpdate": stamp, "batteryComponent": "pack"}
            ],
            "roundTripEfficiencyat50PerCentCycleLife": declared.round_trip_efficiency_at_50_percent_cycle_life_percent,
            "remainingRoundTripEnergyEfficiency": {"remainingRoundTripEnergyEfficiencyValue": round(efficiency_now, 2), "lastUpdate": stamp},
            "stateOfCharge": {"stateOfChargeValue": round(usage.soc_percent, 1), "lastUpdate": soc_stamp},
        },
    }  # fmt: skip
    validate_performance(aspect)
    window = f"measured from the car's telemetry, {_utc(usage.start)} to {_utc(usage.end)}"
    health_window = f"measured from the car's telemetry ({health.window_s / 3600:.1f} h)" if health is not None else ""
    estimated = f"estimated by the ageing model ({len(aged.months) - 1} months of the reference profile)"
    provenance = {
        "batteryTechicalProperties": "computed from the pack's model (model/data/components.yaml)",
        **{f"batteryTechicalProperties/{key}": "declared by the module's maker (module_declarations.yaml)" for key in (
            "expectedNumberOfCycles", "initialSelfDischarge", "expectedLifetime", "capacityThresholdForExhaustion",
            "lifetimeReferenceTest", "cRateLifeCycleTest", "temperatureRangeIdleState")},
        "batteryCondition": window,
        **{f"batteryCondition/{key}": health_window if measured_soh else estimated for key in (
            "stateOfCertifiedEnergy", "capacityFade", "remainingEnergy", "remainingCapacity")},
        **{f"batteryCondition/{key}": health_window if measured_r else estimated for key in (
            "internalResistanceIncrease", "powerFade", "remainingPowerCapability", "roundTripEfficiencyFade",
            "remainingRoundTripEnergyEfficiency")},
        "batteryCondition/evolutionOfSelfDischarge": "not measured: the platform has no estimate of self-discharge yet (0)",
        "batteryCondition/currentSelfDischargingRate": "declared initial value; not measured",
        "batteryCondition/roundTripEfficiencyat50PerCentCycleLife": "declared by the module's maker",
    }  # fmt: skip
    return aspect, {f"{PERFORMANCE}/{key}": value for key, value in provenance.items()}


def section_access(aspect: str, section: str) -> AccessGroup:
    """Who may read ``section`` of ``aspect`` (a part the table does not name: legitimate interest)."""
    rules = ACCESS[aspect]
    return rules.get(section, rules.get("*", "legitimate-interest"))


def readable_by(group: AccessGroup, aspects: dict[str, dict[str, Any]], provenance: dict[str, str]) -> dict[str, Any]:
    """What ``group`` may read of each aspect, the provenance of that, and which parts are withheld
    (``Aspect/section``); ``provenance`` is keyed ``Aspect/section[/field]``."""
    rank = ACCESS_GROUPS.index(group)
    shown: dict[str, dict[str, Any]] = {}
    withheld: list[str] = []
    for name, document in aspects.items():
        shown[name] = {}
        for section, value in document.items():
            if ACCESS_GROUPS.index(section_access(name, section)) <= rank:
                shown[name][section] = value
            else:
                withheld.append(f"{name}/{section}")
    visible = {f"{name}/{section}" for name, doc in shown.items() for section in doc} | set(shown)
    return {
        "access_group": group,
        "aspects": shown,
        "provenance": {k: v for k, v in provenance.items() if k in visible or "/".join(k.split("/")[:2]) in visible},
        "withheld": sorted(withheld),
    }


def maker_records(directory: Path, module_id: str) -> dict[str, dict[str, Any]]:
    """The maker's records for a module type: ``<directory>/<module id>/<Aspect>.json`` for each
    aspect it supplied, each validated against the consortium's schema (``PassportError`` naming
    the file and the fields); an aspect without a file is simply absent."""
    records = {}
    for aspect in MAKER_ASPECTS:
        file = directory / module_id / f"{aspect}.json"
        if not file.is_file():
            continue
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8-sig")
            document = json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PassportError(f"{file}: not JSON ({exc})") from None
        if not isinstance(document, dict):
            raise PassportError(f"{file}: an aspect is a JSON object")
        try:
            validate_aspect(aspect, document)
        except PassportError as exc:
            raise PassportError(f"{file}: {exc}") from None
        records[aspect] = document
    return records


def general_product_information(
    record: dict[str, Any], vehicle: Vehicle, vin: str, registered_at: datetime
) -> tuple[dict[str, Any], dict[str, str]]:
    """The maker's general product information with what the platform knows of this battery: its
    identifiers, category, mass (the pack model's modules) and when the car went into service."""
    known = {
        "productIdentifier": f"{vin}-PACK", "batteryPassportIdentifier": passport_identifier(vin),
        "batteryCategory": "ev", "batteryMass": round(vehicle.pack.modules_mass_kg, 1),
        "puttingIntoService": registered_at.astimezone(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    document = record | known
    validate_aspect("GeneralProductInformation", document)
    provenance = {"GeneralProductInformation": "the maker's record (passport records directory)"}
    provenance |= {f"GeneralProductInformation/{key}": "the platform's registry and pack model" for key in known}
    return document, provenance


def passport_identifier(vin: str) -> str:
    """The passport's identifier as the data model's pattern allows (``urn:<namespace>:<id>``)."""
    return f"urn:opensdv:{vin.lower()}"


@cache
def _schema(aspect: str) -> dict[str, Any]:
    folder = resources.files("opensdv.cloud.energy.battery") / "data" / "batterypass-1.2.0"
    schema: dict[str, Any] = json.loads((folder / f"{aspect}-schema.json").read_text(encoding="utf-8"))
    return schema


def validate_aspect(aspect: str, document: dict[str, Any], schema: dict[str, Any] | None = None) -> None:
    """Against the Battery Pass v1.2.0 schema of ``aspect``; ``PassportError`` names the fields."""
    validator = Draft4Validator(schema or _schema(aspect))
    problems = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if problems:
        listed = "; ".join(f"{'/'.join(str(p) for p in e.absolute_path) or '(aspect)'}: {e.message}" for e in problems[:10])
        raise PassportError(f"{aspect} does not validate ({len(problems)} problem(s)): {listed}")


def validate_performance(aspect: dict[str, Any], schema: dict[str, Any] | None = None) -> None:
    """Against the Battery Pass v1.2.0 Performance and Durability schema."""
    validate_aspect(PERFORMANCE, aspect, schema)


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
