"""Standard components shared by every brand: battery cell modules, packs built from them, e-axles.

Records validate themselves (pydantic), so a twin or an OTA campaign can trust what it reads.
Units are in field names (``capacity_ah``, ``peak_power_kw``) so nobody has to guess.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BatteryModule",
    "CellFormat",
    "CheckResult",
    "Chemistry",
    "Dimensions",
    "EAxle",
    "EfficiencyCurve",
    "EfficiencyMap",
    "EquivalentCircuit",
    "Inverter",
    "MotorType",
    "Pack",
    "Semiconductor",
    "ThermalLimits",
    "VoltageClass",
    "check_compatibility",
    "voltage_class_for",
]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Chemistry(StrEnum):
    NMC = "NMC"
    NCA = "NCA"
    LFP = "LFP"
    LMFP = "LMFP"
    LMO = "LMO"
    SIB = "SIB"  # sodium-ion


class CellFormat(StrEnum):
    POUCH = "pouch"
    PRISMATIC = "prismatic"
    CYLINDRICAL = "cylindrical"


class MotorType(StrEnum):
    PMSM = "PMSM"
    INDUCTION = "induction"
    EESM = "EESM"


class Semiconductor(StrEnum):
    SIC = "SiC"
    IGBT = "IGBT"
    GAN = "GaN"


class VoltageClass(StrEnum):
    V400 = "400V"
    V800 = "800V"


def voltage_class_for(max_voltage_v: float) -> VoltageClass:
    """400 V-class systems stay at or below 500 V, 800 V-class at or below 1,000 V (IEC's LV limit)."""
    if max_voltage_v <= 500:
        return VoltageClass.V400
    if max_voltage_v <= 1000:
        return VoltageClass.V800
    raise ValueError(f"a maximum of {max_voltage_v:.0f} V is above the 1,000 V low-voltage limit")


class Dimensions(_Record):
    length_mm: float = Field(gt=0)
    width_mm: float = Field(gt=0)
    height_mm: float = Field(gt=0)

    @property
    def volume_l(self) -> float:
        return self.length_mm * self.width_mm * self.height_mm / 1e6


class ThermalLimits(_Record):
    min_operating_c: float = Field(ge=-60, le=0)
    max_operating_c: float = Field(ge=30, le=80)
    min_charge_c: float = Field(ge=-40, le=25)
    max_charge_c: float = Field(ge=30, le=70)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min_operating_c <= self.min_charge_c < self.max_charge_c <= self.max_operating_c:
            raise ValueError(
                "expected min_operating_c <= min_charge_c < max_charge_c <= max_operating_c, got "
                f"{self.min_operating_c}, {self.min_charge_c}, {self.max_charge_c}, {self.max_operating_c}"
            )
        return self


class EquivalentCircuit(_Record):
    """Per-cell Thevenin parameters at 25 degC: OCV(SoC), series resistance and one or two RC pairs."""

    ocv_soc: list[float] = Field(min_length=2, description="state of charge, 0..1, increasing")
    ocv_v: list[float] = Field(min_length=2, description="open-circuit voltage at each ocv_soc")
    r0_ohm: float = Field(gt=0, lt=1)
    r1_ohm: float = Field(gt=0, lt=1)
    c1_f: float = Field(gt=0)
    r2_ohm: float | None = Field(default=None, gt=0, lt=1)
    c2_f: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _curve(self) -> Self:
        if len(self.ocv_soc) != len(self.ocv_v):
            raise ValueError(f"ocv_soc has {len(self.ocv_soc)} points but ocv_v has {len(self.ocv_v)}")
        if self.ocv_soc[0] != 0 or self.ocv_soc[-1] != 1:
            raise ValueError(f"ocv_soc must run from 0 to 1, got {self.ocv_soc[0]}..{self.ocv_soc[-1]}")
        for i in range(1, len(self.ocv_soc)):
            if self.ocv_soc[i] <= self.ocv_soc[i - 1]:
                raise ValueError(
                    f"ocv_soc must increase, but point {i} is {self.ocv_soc[i]} after {self.ocv_soc[i - 1]}"
                )
            if self.ocv_v[i] < self.ocv_v[i - 1]:
                raise ValueError(
                    f"ocv_v must not decrease, but point {i} is {self.ocv_v[i]} after {self.ocv_v[i - 1]}"
                )
        if not (self.ocv_v[0] >= 1.0 and self.ocv_v[-1] <= 5.0):
            raise ValueError(f"cell OCV must lie within 1..5 V, got {self.ocv_v[0]}..{self.ocv_v[-1]}")
        if (self.r2_ohm is None) != (self.c2_f is None):
            raise ValueError("the second RC pair needs both r2_ohm and c2_f")
        return self

    def ocv(self, soc: float) -> float:
        """Open-circuit voltage of one cell at ``soc`` (0..1, clamped), linearly interpolated."""
        soc = min(max(soc, 0.0), 1.0)
        i = min(bisect.bisect_right(self.ocv_soc, soc), len(self.ocv_soc) - 1)
        s0, s1, v0, v1 = self.ocv_soc[i - 1], self.ocv_soc[i], self.ocv_v[i - 1], self.ocv_v[i]
        return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)


class BatteryModule(_Record):
    """A standard battery cell module: the unit packs are built from and second life reuses."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    supplier: str = Field(min_length=1)
    chemistry: Chemistry
    cell_format: CellFormat
    cells_series: int = Field(ge=1, le=64)
    cells_parallel: int = Field(ge=1, le=64)
    nominal_voltage_v: float = Field(gt=0)
    min_voltage_v: float = Field(gt=0)
    max_voltage_v: float = Field(gt=0)
    capacity_ah: float = Field(gt=0)
    energy_kwh: float = Field(gt=0)
    mass_kg: float = Field(gt=0)
    dimensions: Dimensions
    max_continuous_charge_a: float = Field(gt=0)
    peak_charge_a: float = Field(gt=0)
    max_continuous_discharge_a: float = Field(gt=0)
    peak_discharge_a: float = Field(gt=0)
    thermal: ThermalLimits
    cell_model: EquivalentCircuit
    bms_hardware_id: str = Field(min_length=1, description="hardware id of the module's BMS slave board")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.min_voltage_v < self.nominal_voltage_v < self.max_voltage_v:
            raise ValueError(
                f"expected min_voltage_v < nominal_voltage_v < max_voltage_v, got "
                f"{self.min_voltage_v:g} / {self.nominal_voltage_v:g} / {self.max_voltage_v:g}"
            )
        expected_kwh = self.nominal_voltage_v * self.capacity_ah / 1000
        if abs(self.energy_kwh - expected_kwh) > 0.05 * expected_kwh:
            raise ValueError(
                f"energy_kwh {self.energy_kwh:g} does not match nominal_voltage_v x capacity_ah = {expected_kwh:.2f} kWh (5 % tolerance)"
            )
        full_ocv = self.cells_series * self.cell_model.ocv(1.0)
        if abs(full_ocv - self.max_voltage_v) > 0.05 * self.max_voltage_v:
            raise ValueError(
                f"max_voltage_v {self.max_voltage_v:g} does not match cells_series x OCV at full charge = {full_ocv:.1f} V (5 % tolerance)"
            )
        empty_ocv = self.cells_series * self.cell_model.ocv(0.0)
        if self.min_voltage_v > empty_ocv:
            raise ValueError(
                f"min_voltage_v {self.min_voltage_v:g} is above cells_series x OCV when empty = {empty_ocv:.1f} V"
            )
        if self.peak_charge_a < self.max_continuous_charge_a:
            raise ValueError(
                f"peak_charge_a {self.peak_charge_a:g} is below max_continuous_charge_a {self.max_continuous_charge_a:g}"
            )
        if self.peak_discharge_a < self.max_continuous_discharge_a:
            raise ValueError(
                f"peak_discharge_a {self.peak_discharge_a:g} is below max_continuous_discharge_a {self.max_continuous_discharge_a:g}"
            )
        return self

    @property
    def cells(self) -> int:
        return self.cells_series * self.cells_parallel


class Inverter(_Record):
    semiconductor: Semiconductor
    voltage_class: VoltageClass
    min_dc_voltage_v: float = Field(gt=0)
    max_dc_voltage_v: float = Field(gt=0)
    max_dc_current_a: float = Field(gt=0)
    hardware_id: str = Field(min_length=1)

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.min_dc_voltage_v >= self.max_dc_voltage_v:
            raise ValueError(
                f"min_dc_voltage_v {self.min_dc_voltage_v:g} must be below max_dc_voltage_v {self.max_dc_voltage_v:g}"
            )
        actual = voltage_class_for(self.max_dc_voltage_v)
        if actual != self.voltage_class:
            raise ValueError(
                f"voltage_class {self.voltage_class} but max_dc_voltage_v {self.max_dc_voltage_v:g} makes it {actual}"
            )
        return self


class EfficiencyMap(_Record):
    """Motor + inverter + gear efficiency over a torque x speed grid (motor side), for driving;
    the twin uses the same map for regeneration."""

    speeds_rpm: list[float] = Field(min_length=2)
    torques_nm: list[float] = Field(min_length=2)
    efficiency: list[list[float]] = Field(
        description="one row per torque, one column per speed, values in (0, 1]"
    )

    @model_validator(mode="after")
    def _grid(self) -> Self:
        for name, axis in (("speeds_rpm", self.speeds_rpm), ("torques_nm", self.torques_nm)):
            if any(b <= a for a, b in itertools.pairwise(axis)) or axis[0] < 0:
                raise ValueError(f"{name} must be non-negative and strictly increasing, got {axis}")
        if len(self.efficiency) != len(self.torques_nm):
            raise ValueError(
                f"efficiency has {len(self.efficiency)} rows but there are {len(self.torques_nm)} torques"
            )
        for i, row in enumerate(self.efficiency):
            if len(row) != len(self.speeds_rpm):
                raise ValueError(
                    f"efficiency row {i} has {len(row)} values but there are {len(self.speeds_rpm)} speeds"
                )
            for j, value in enumerate(row):
                if not 0 < value <= 1:
                    raise ValueError(f"efficiency[{i}][{j}] = {value} is outside (0, 1]")
        return self

    @property
    def peak(self) -> float:
        return max(max(row) for row in self.efficiency)


class EfficiencyCurve(_Record):
    """Efficiency by the fraction of peak power, as many datasheets and FASTSim give a motor: for
    an e-axle without a torque x speed map. It becomes one (efficiency at torque x speed / peak)."""

    power_fraction: list[float] = Field(min_length=2, description="of peak power, from 0 to 1, increasing")
    efficiency: list[float] = Field(min_length=2, description="motor + inverter at each fraction, in (0, 1]")
    gear_efficiency: float = Field(default=1.0, gt=0.5, le=1.0, description="multiplies the curve (1: it includes the gear)")

    @model_validator(mode="after")
    def _curve(self) -> Self:
        fractions = self.power_fraction
        if fractions[0] != 0 or fractions[-1] != 1 or any(b <= a for a, b in itertools.pairwise(fractions)):
            raise ValueError(f"power_fraction must rise strictly from 0 to 1, got {fractions}")
        if len(self.efficiency) != len(fractions):
            raise ValueError(f"efficiency has {len(self.efficiency)} values but there are {len(fractions)} power fractions")
        for i, value in enumerate(self.efficiency):
            if not 0 < value <= 1:
                raise ValueError(f"efficiency[{i}] = {value} is outside (0, 1]")
        return self

    def as_map(self, peak_power_kw: float, peak_torque_nm: float, max_speed_rpm: float, steps: int = 48) -> EfficiencyMap:
        """The curve over a torque x speed grid fine enough for bilinear interpolation between points."""
        import numpy as np  # the twin's dependency; reading a catalog does not need it

        speeds = np.linspace(0.0, max_speed_rpm, steps + 1)
        torques = np.linspace(0.0, peak_torque_nm, steps + 1)
        fraction = np.clip(np.outer(torques, speeds * 2 * math.pi / 60) / (peak_power_kw * 1000), 0.0, 1.0)
        values = np.interp(fraction, self.power_fraction, self.efficiency) * self.gear_efficiency
        return EfficiencyMap(speeds_rpm=speeds.tolist(), torques_nm=torques.tolist(), efficiency=values.tolist())


class EAxle(_Record):
    """A standard e-axle: motor, inverter and reduction gear in one unit."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    supplier: str = Field(min_length=1)
    position: str = Field(pattern=r"^(front|rear)$")
    motor_type: MotorType
    peak_power_kw: float = Field(gt=0, le=1000)
    continuous_power_kw: float = Field(gt=0, le=1000)
    peak_torque_nm: float = Field(gt=0, le=10000)
    continuous_torque_nm: float = Field(gt=0, le=10000)
    max_speed_rpm: float = Field(gt=0, le=40000)
    gear_ratio: float = Field(gt=1, le=20)
    mass_kg: float = Field(gt=0)
    inverter: Inverter
    efficiency_map: EfficiencyMap | None = Field(default=None, description="motor + inverter + gear over torque x speed")
    efficiency_curve: EfficiencyCurve | None = Field(default=None, description="instead of a map: by fraction of peak power")

    @cached_property
    def efficiency(self) -> EfficiencyMap:
        """The map the twin interpolates: the given one, or the curve's."""
        if self.efficiency_map is not None:
            return self.efficiency_map
        assert self.efficiency_curve is not None
        return self.efficiency_curve.as_map(self.peak_power_kw, self.peak_torque_nm, self.max_speed_rpm)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.efficiency_map is None) == (self.efficiency_curve is None):
            raise ValueError("give efficiency_map (torque x speed) or efficiency_curve (by fraction of peak power): one")
        if self.continuous_power_kw > self.peak_power_kw:
            raise ValueError(
                f"continuous_power_kw {self.continuous_power_kw:g} exceeds peak_power_kw {self.peak_power_kw:g}"
            )
        if self.continuous_torque_nm > self.peak_torque_nm:
            raise ValueError(
                f"continuous_torque_nm {self.continuous_torque_nm:g} exceeds peak_torque_nm {self.peak_torque_nm:g}"
            )
        grid = self.efficiency_map
        if grid is not None and grid.speeds_rpm[-1] < self.max_speed_rpm:
            raise ValueError(
                f"efficiency_map stops at {grid.speeds_rpm[-1]:g} rpm, below max_speed_rpm {self.max_speed_rpm:g}"
            )
        if grid is not None and grid.torques_nm[-1] < self.peak_torque_nm:
            raise ValueError(
                f"efficiency_map stops at {grid.torques_nm[-1]:g} Nm, below peak_torque_nm {self.peak_torque_nm:g}"
            )
        return self

    @property
    def base_speed_rpm(self) -> float:
        """Where peak torque meets peak power: above it the motor is power-limited."""
        return self.peak_power_kw * 1000 / (self.peak_torque_nm * 2 * 3.141592653589793 / 60)

    @property
    def peak_electrical_power_kw(self) -> float:
        """DC power drawn at peak mechanical power, at the map's best efficiency (optimistic)."""
        return self.peak_power_kw / self.efficiency.peak


@dataclass(frozen=True)
class Pack:
    """``modules_series`` x ``modules_parallel`` identical standard modules."""

    module: BatteryModule
    modules_series: int
    modules_parallel: int = 1

    def __post_init__(self) -> None:
        if self.modules_series < 1 or self.modules_parallel < 1:
            raise ValueError(
                f"a pack needs at least one module in series and in parallel, got {self.modules_series}s{self.modules_parallel}p"
            )
        voltage_class_for(self.max_voltage_v)  # raises above 1,000 V

    @property
    def module_count(self) -> int:
        return self.modules_series * self.modules_parallel

    @property
    def nominal_voltage_v(self) -> float:
        return self.module.nominal_voltage_v * self.modules_series

    @property
    def min_voltage_v(self) -> float:
        return self.module.min_voltage_v * self.modules_series

    @property
    def max_voltage_v(self) -> float:
        return self.module.max_voltage_v * self.modules_series

    @property
    def capacity_ah(self) -> float:
        return self.module.capacity_ah * self.modules_parallel

    @property
    def energy_kwh(self) -> float:
        return self.module.energy_kwh * self.module_count

    @property
    def modules_mass_kg(self) -> float:
        return self.module.mass_kg * self.module_count

    @property
    def peak_discharge_a(self) -> float:
        return self.module.peak_discharge_a * self.modules_parallel

    @property
    def voltage_class(self) -> VoltageClass:
        return voltage_class_for(self.max_voltage_v)

    @property
    def cells_series(self) -> int:
        return self.module.cells_series * self.modules_series

    @property
    def label(self) -> str:
        return f"{self.module_count} x {self.module.id} ({self.modules_series}s{self.modules_parallel}p)"


@dataclass(frozen=True)
class CheckResult:
    """One compatibility rule applied to one combination; ``message`` carries the numbers."""

    rule: str
    passed: bool
    message: str


def check_compatibility(
    pack: Pack,
    eaxles: list[EAxle],
    envelope: Dimensions | None = None,
    max_pack_mass_kg: float | None = None,
) -> list[CheckResult]:
    """Apply every rule to a pack and the e-axles it feeds (and the vehicle's pack space, if given)."""
    results: list[CheckResult] = []
    for axle in eaxles:
        inv = axle.inverter
        fits = inv.min_dc_voltage_v <= pack.min_voltage_v and pack.max_voltage_v <= inv.max_dc_voltage_v
        results.append(
            CheckResult(
                "voltage-window",
                fits,
                f"pack {pack.min_voltage_v:.0f}-{pack.max_voltage_v:.0f} V "
                f"{'within' if fits else 'outside'} {axle.id} inverter {inv.min_dc_voltage_v:.0f}-{inv.max_dc_voltage_v:.0f} V",
            )
        )
        same = pack.voltage_class == inv.voltage_class
        results.append(
            CheckResult(
                "voltage-class",
                same,
                f"pack is {pack.voltage_class}, {axle.id} is {inv.voltage_class}",
            )
        )
    if eaxles:
        demand_kw = sum(a.peak_electrical_power_kw for a in eaxles)
        needed_a = demand_kw * 1000 / pack.min_voltage_v
        enough = needed_a <= pack.peak_discharge_a
        results.append(
            CheckResult(
                "peak-current",
                enough,
                f"{demand_kw:.0f} kW peak electrical demand needs {needed_a:.0f} A at the pack's minimum "
                f"{pack.min_voltage_v:.0f} V; pack peak discharge is {pack.peak_discharge_a:.0f} A",
            )
        )
        for axle in eaxles:
            axle_a = axle.peak_electrical_power_kw * 1000 / pack.min_voltage_v
            ok = axle_a <= axle.inverter.max_dc_current_a
            results.append(
                CheckResult(
                    "inverter-current",
                    ok,
                    f"{axle.id} draws {axle_a:.0f} A at peak power from {pack.min_voltage_v:.0f} V; "
                    f"its inverter allows {axle.inverter.max_dc_current_a:.0f} A",
                )
            )
    if envelope is not None:
        module = pack.module.dimensions
        footprint = pack.module_count * module.length_mm * module.width_mm
        area = envelope.length_mm * envelope.width_mm
        fits_area = footprint <= area and module.height_mm <= envelope.height_mm
        results.append(
            CheckResult(
                "pack-envelope",
                fits_area,
                f"{pack.module_count} modules cover {footprint / 1e6:.2f} m2 x {module.height_mm:.0f} mm high; "
                f"envelope is {area / 1e6:.2f} m2 x {envelope.height_mm:.0f} mm",
            )
        )
    if max_pack_mass_kg is not None:
        light = pack.modules_mass_kg <= max_pack_mass_kg
        results.append(
            CheckResult(
                "pack-mass",
                light,
                f"modules weigh {pack.modules_mass_kg:.0f} kg; the vehicle allows {max_pack_mass_kg:.0f} kg",
            )
        )
    return results
