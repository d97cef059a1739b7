"""Unit names as DBC files write them, and conversions to the units VSS uses."""

from __future__ import annotations

from opensdv.vehicle.can._errors import CanError

__all__ = ["UnitError", "conversion", "normalise"]

_ALIASES = {
    "kph": "km/h", "km/h": "km/h", "kmh": "km/h", "mph": "mph", "m/s": "m/s",
    "m/s2": "m/s^2", "m/s^2": "m/s^2", "m/s²": "m/s^2",
    "deg": "degrees", "degree": "degrees", "degrees": "degrees", "°": "degrees",
    "deg/s": "degrees/s", "degrees/s": "degrees/s", "°/s": "degrees/s",
    "degc": "Celsius", "°c": "Celsius", "c": "Celsius", "celsius": "Celsius",
    "%": "percent", "percent": "percent",
    "v": "V", "mv": "mV", "a": "A", "ma": "mA", "w": "W", "kw": "kW", "wh": "Wh", "kwh": "kWh", "ah": "Ah",
    "rpm": "rpm", "nm": "Nm", "s": "s", "ms": "ms", "min": "min", "h": "h",
    "m": "m", "km": "km", "mm": "mm", "kpa": "kPa", "bar": "bar", "l": "l",
}  # fmt: skip

# (from, to) -> (factor, offset): to = from * factor + offset
_FACTORS: dict[tuple[str, str], tuple[float, float]] = {
    ("mph", "km/h"): (1.609344, 0.0),
    ("m/s", "km/h"): (3.6, 0.0),
    ("mV", "V"): (0.001, 0.0),
    ("mA", "A"): (0.001, 0.0),
    ("W", "kW"): (0.001, 0.0),
    ("kW", "W"): (1000.0, 0.0),
    ("Wh", "kWh"): (0.001, 0.0),
    ("ms", "s"): (0.001, 0.0),
    ("min", "s"): (60.0, 0.0),
    ("h", "s"): (3600.0, 0.0),
    ("mm", "m"): (0.001, 0.0),
    ("km", "m"): (1000.0, 0.0),
    ("m", "km"): (0.001, 0.0),
    ("bar", "kPa"): (100.0, 0.0),
}


class UnitError(CanError):
    """A unit the mapping names cannot be converted to the signal's."""


def normalise(unit: str | None) -> str | None:
    """A unit spelled the canonical way (``km/h``, ``degC``), or None for none."""
    if unit is None or not unit.strip():
        return None
    return _ALIASES.get(unit.strip().lower(), unit.strip())


def conversion(source: str | None, target: str | None) -> tuple[float, float]:
    """(factor, offset) turning a value in ``source`` units into ``target`` units.

    A missing unit on either side means "already in the other unit" (many OEM DBCs carry none).
    """
    a, b = normalise(source), normalise(target)
    if a is None or b is None or a == b:
        return 1.0, 0.0
    if (a, b) in _FACTORS:
        return _FACTORS[(a, b)]
    if (b, a) in _FACTORS:
        factor, offset = _FACTORS[(b, a)]
        return 1.0 / factor, -offset / factor
    raise UnitError(f"cannot convert {source!r} to {target!r}")
