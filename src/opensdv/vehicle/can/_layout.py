"""The compiled form of a mapped signal: bit positions and the transform into VSS, shared by the
generic decoder (``_adapter``) and the generated ones (``_codegen``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cantools.database.can import Signal

__all__ = ["Extract", "Target", "compile_extract"]


@dataclass(frozen=True, slots=True)
class Extract:
    """One DBC signal as (shift, mask) over the frame read as one integer."""

    name: str
    little: bool
    shift: int
    mask: int
    sign_bit: int  # 0 for unsigned
    scale: float
    offset: float
    low: float | None
    high: float | None


def compile_extract(signal: Signal, length: int) -> Extract:
    """One signal's (shift, mask) over the frame read as an integer, from its DBC start bit and length."""
    if signal.is_float:
        raise ValueError(f"{signal.name}: IEEE float signals are not supported")
    if signal.byte_order == "little_endian":
        shift, little = signal.start, True
    else:  # Motorola: start is the MSB in DBC's sawtooth numbering
        msb_from_top = (signal.start // 8) * 8 + (7 - signal.start % 8)
        shift, little = length * 8 - (msb_from_top + signal.length), False
    if shift < 0 or shift + signal.length > length * 8:
        raise ValueError(f"{signal.name}: does not fit in a {length}-byte frame")
    tolerance = abs(signal.scale) / 2
    low, high = signal.minimum, signal.maximum
    named = [raw * signal.scale + signal.offset for raw in (signal.choices or {})]
    if named:  # a value the DBC's own value table names is in range, whatever [min|max] says
        low = min([*named, *([low] if low is not None else [])])
        high = max([*named, *([high] if high is not None else [])])
    return Extract(
        name=signal.name,
        little=little,
        shift=shift,
        mask=(1 << signal.length) - 1,
        sign_bit=(1 << (signal.length - 1)) if signal.is_signed else 0,
        scale=float(signal.scale),
        offset=float(signal.offset),
        low=None if low is None else float(low) - tolerance,
        high=None if high is None else float(high) + tolerance,
    )


@dataclass(slots=True)
class Target:
    path: str
    extracts: tuple[Extract, ...]
    combine: str | None
    factor: float
    offset: float
    values: dict[float, Any] | None
    integer: bool
    boolean: bool
    check: Any
    bounds: tuple[int | float, int | float] | None
    min_interval_s: float
    on_change: bool
    unavailable: frozenset[float] = frozenset()  # DBC values that mean "no value"
