"""Drive cycles: speed traces at 1 Hz, shipped (UDDS, HWFET, WLTC) or read from a CSV file.

A CSV has a ``time_s`` column and one speed column whose name gives the unit (``speed_kmh``,
``speed_mps`` or ``speed_mph``), optionally ``grade_percent``; lines starting with ``#`` are comments.
Gaps in time are interpolated with a warning naming them; negative speeds, unknown units,
non-numeric cells and time running backwards are errors naming the line and the value.
"""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from opensdv.errors import OpenSDVError
from opensdv.files import FileFormatError, read_text

__all__ = ["SHIPPED_CYCLES", "CycleError", "CycleGapWarning", "DriveCycle", "load_cycle"]

SHIPPED_CYCLES = ("udds", "hwfet", "wltc_class1", "wltc_class2", "wltc_class3b", "wltc_japan")
_UNITS = {"speed_kmh": 1 / 3.6, "speed_mps": 1.0, "speed_mph": 0.44704}
MAX_GAP_S = 1.0


class CycleError(OpenSDVError):
    """A cycle file cannot be used; the message names the line and the value."""


class CycleGapWarning(UserWarning):
    """A cycle file skips time; the missing seconds were interpolated."""


@dataclass(frozen=True)
class DriveCycle:
    name: str
    source: str
    time_s: NDArray[np.float64]
    speed_mps: NDArray[np.float64]
    grade: NDArray[np.float64]  # rise over run

    @property
    def duration_s(self) -> float:
        return float(self.time_s[-1] - self.time_s[0])

    @property
    def distance_km(self) -> float:
        return float(np.sum((self.speed_mps[1:] + self.speed_mps[:-1]) / 2 * np.diff(self.time_s)) / 1000)

    def speed_at(self, t: float) -> float:
        """Speed (m/s) at ``t`` seconds from the start, linearly interpolated; 0 after the end."""
        if t >= self.time_s[-1]:
            return 0.0
        return float(np.interp(t, self.time_s, self.speed_mps))

    def grade_at(self, t: float) -> float:
        return float(np.interp(t, self.time_s, self.grade)) if t < self.time_s[-1] else 0.0


def _shipped(name: str) -> Path:
    return Path(str(resources.files("opensdv.physics") / "data" / "cycles" / f"{name}.csv"))


def parked(duration_s: float = 60.0) -> DriveCycle:
    """A car standing still: what a twin on a bench or at a depot drives."""
    zeros = np.zeros(2)
    return DriveCycle("parked", "standing still", np.array([0.0, duration_s]), zeros, zeros.copy())


def load_cycle(name_or_path: str | Path) -> DriveCycle:
    """A shipped cycle by name (see ``SHIPPED_CYCLES``), ``parked``, or a CSV file."""
    if str(name_or_path) == "parked":
        return parked()
    if str(name_or_path) in SHIPPED_CYCLES:
        return _load_shipped(str(name_or_path))
    return _load_file(Path(name_or_path))


@cache
def _load_shipped(name: str) -> DriveCycle:
    return _load_file(_shipped(name))


def _load_file(path: Path) -> DriveCycle:
    if not path.exists():
        raise CycleError(f"{path}: not a shipped cycle ({', '.join(SHIPPED_CYCLES)}) and no such file")
    try:
        lines = read_text(path).splitlines()
    except FileFormatError as exc:
        raise CycleError(str(exc)) from None
    source = next((line[1:].strip() for line in lines if line.startswith("#")), str(path))
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")]
    if not numbered:
        raise CycleError(f"{path}: no data")
    reader = csv.reader([line for _, line in numbered])
    header = [h.strip() for h in next(reader)]
    if "time_s" not in header:
        raise CycleError(f"{path}: line {numbered[0][0]}: needs a 'time_s' column, got {header}")
    speed_columns = [h for h in header if h.startswith("speed")]
    if len(speed_columns) != 1 or speed_columns[0] not in _UNITS:
        raise CycleError(
            f"{path}: line {numbered[0][0]}: one speed column with a known unit is needed ({', '.join(_UNITS)}), got {speed_columns or header}"
        )
    t_col, v_col = header.index("time_s"), header.index(speed_columns[0])
    g_col = header.index("grade_percent") if "grade_percent" in header else None
    times: list[float] = []
    speeds: list[float] = []
    grades: list[float] = []
    for (number, _), row in zip(numbered[1:], reader, strict=False):
        try:
            t, v = float(row[t_col]), float(row[v_col])
            g = float(row[g_col]) / 100 if g_col is not None else 0.0
        except (ValueError, IndexError):
            raise CycleError(f"{path}: line {number}: not a number in {row}") from None
        if not (math.isfinite(t) and math.isfinite(v) and math.isfinite(g)):
            raise CycleError(f"{path}: line {number}: non-finite value in {row}")
        if v < 0:
            raise CycleError(f"{path}: line {number}: negative speed {v} at t={t} s")
        if times and t <= times[-1]:
            raise CycleError(f"{path}: line {number}: time {t} s does not increase (previous {times[-1]} s)")
        times.append(t)
        speeds.append(v * _UNITS[speed_columns[0]])
        grades.append(g)
    if len(times) < 2:
        raise CycleError(f"{path}: a cycle needs at least two points")
    raw_t = np.array(times)
    gaps = np.flatnonzero(np.diff(raw_t) > MAX_GAP_S)
    if gaps.size:
        where = ", ".join(f"{raw_t[i]:g}-{raw_t[i + 1]:g} s" for i in gaps[:5])
        warnings.warn(
            f"{path}: {gaps.size} gap(s) in time interpolated: {where}", CycleGapWarning, stacklevel=2
        )
    grid = np.arange(raw_t[0], raw_t[-1] + 1e-9, 1.0)
    return DriveCycle(
        name=path.stem,
        source=source,
        time_s=grid - grid[0],
        speed_mps=np.interp(grid, raw_t, np.array(speeds)),
        grade=np.interp(grid, raw_t, np.array(grades)),
    )
