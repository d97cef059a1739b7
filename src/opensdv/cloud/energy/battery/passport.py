"""Battery passports (EU Regulation 2023/1542, Annex XIII; Battery Pass data model) for a pack and
its standard modules, exported as JSON that validates against ``data/battery_passport.schema.json``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from opensdv.cloud.energy.errors import EnergyError
from opensdv.model.components import Chemistry
from opensdv.model.vehicles import Vehicle
from opensdv.physics.ageing import AgeingResult

__all__ = ["PassportError", "build_passport", "passport_schema", "validate_passport"]

_MATERIALS = {
    Chemistry.NMC: (
        "lithium nickel manganese cobalt oxide",
        "graphite",
        ["lithium", "nickel", "cobalt", "manganese", "natural graphite"],
    ),
    Chemistry.NCA: (
        "lithium nickel cobalt aluminium oxide",
        "graphite",
        ["lithium", "nickel", "cobalt", "natural graphite"],
    ),
    Chemistry.LFP: ("lithium iron phosphate", "graphite", ["lithium", "phosphate rock", "natural graphite"]),
    Chemistry.LMFP: (
        "lithium manganese iron phosphate",
        "graphite",
        ["lithium", "manganese", "phosphate rock", "natural graphite"],
    ),
    Chemistry.LMO: ("lithium manganese oxide", "graphite", ["lithium", "manganese", "natural graphite"]),
    Chemistry.SIB: ("sodium layered oxide", "hard carbon", ["manganese"]),
}
_LIFETIME_CYCLES = {Chemistry.LFP: 4000, Chemistry.LMFP: 3500}  # others: 1,500 full cycles to 80 %


class PassportError(EnergyError):
    """A passport does not validate; the message lists every problem with its JSON path."""


@cache
def passport_schema() -> dict[str, Any]:
    text = (resources.files("opensdv.cloud.energy.battery") / "data" / "battery_passport.schema.json").read_text(
        encoding="utf-8"
    )
    schema: dict[str, Any] = json.loads(text)
    return schema


def validate_passport(document: dict[str, Any]) -> None:
    """Check a passport against its JSON Schema; ``PassportError`` names the first field that breaks it."""
    validator = Draft202012Validator(passport_schema(), format_checker=FormatChecker())
    problems = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if problems:
        listed = "; ".join(
            f"{'/'.join(str(p) for p in e.absolute_path) or '(passport)'}: {e.message}" for e in problems[:10]
        )
        raise PassportError(f"battery passport does not validate ({len(problems)} problem(s)): {listed}")


def build_passport(
    vehicle: Vehicle,
    *,
    vin: str,
    pack_serial: str,
    ageing: AgeingResult,
    modules: list[dict[str, Any]],
    status: str = "original",
    manufactured: date | None = None,
    negative_events: dict[str, int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The passport of ``vehicle``'s pack after ``ageing``; ``modules`` are graded module entries."""
    pack, module = vehicle.pack, vehicle.pack.module
    cathode, anode, critical = _MATERIALS[module.chemistry]
    soh = float(ageing.state_of_health[-1])
    resistance = float(ageing.resistance_factor[-1])
    document = {
        "passport_id": f"opensdv:{vin}:{pack_serial}",
        "schema_version": "1.0",
        "identity": {
            "battery_id": pack_serial,
            "category": "electric vehicle battery",
            "model": pack.label,
            "manufacturer": {"name": module.supplier, "identifier": module.bms_hardware_id},
            "manufacturing_date": (manufactured or date(vehicle.definition.model_year, 1, 1)).isoformat(),
            "mass_kg": round(pack.modules_mass_kg, 1),
            "vehicle": {"brand": vehicle.definition.brand, "model": vehicle.definition.model, "vin": vin},
        },
        "materials": {
            "chemistry": str(module.chemistry),
            "cathode": cathode,
            "anode": anode,
            "critical_raw_materials": critical,
            "hazardous_substances": ["electrolyte (LiPF6 in organic carbonates)"],
        },
        "performance": {
            "rated_capacity_ah": round(pack.capacity_ah, 2),
            "rated_energy_kwh": round(pack.energy_kwh, 2),
            "nominal_voltage_v": round(pack.nominal_voltage_v, 1),
            "min_voltage_v": round(pack.min_voltage_v, 1),
            "max_voltage_v": round(pack.max_voltage_v, 1),
            "original_power_w": round(pack.peak_discharge_a * pack.nominal_voltage_v, 0),
            "temperature_range_c": [module.thermal.min_operating_c, module.thermal.max_operating_c],
            "expected_lifetime_cycles": _LIFETIME_CYCLES.get(module.chemistry, 1500),
        },
        "state_of_health": {
            "soh_percent": round(soh * 100, 2),
            "capacity_fade_percent": round((1 - soh) * 100, 2),
            "power_fade_percent": round((1 - 1 / resistance) * 100, 2),
            "remaining_capacity_ah": round(pack.capacity_ah * soh, 2),
            "remaining_energy_kwh": round(pack.energy_kwh * soh, 2),
            "internal_resistance_increase_percent": round((resistance - 1) * 100, 2),
        },
        "history": {
            "full_cycles": round(float(ageing.full_cycles[-1]), 1),
            "energy_throughput_kwh": round(float(ageing.throughput_kwh[-1]), 1),
            "negative_events": {
                "deep_discharge": 0,
                "overtemperature": 0,
                "overcharge": 0,
                "accident": 0,
                **(negative_events or {}),
            },
        },
        "status": status,
        "modules": modules,
        "last_updated": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
    }
    validate_passport(document)
    return document
