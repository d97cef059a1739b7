"""Standard components: records validate themselves; compatibility rules show their numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from opensdv.model import BatteryModule, EAxle, Pack, VoltageClass, check_compatibility, load_catalog
from opensdv.model._files import describe_validation_error
from opensdv.model.components import EquivalentCircuit, voltage_class_for


def problem_of(model: Any, record: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(record)
    return describe_validation_error(caught.value)


@pytest.fixture(scope="module")
def module_record() -> dict[str, Any]:
    return load_catalog().modules["nmc-pouch-8s2p-56ah"].model_dump(mode="json")


@pytest.fixture(scope="module")
def eaxle_record() -> dict[str, Any]:
    return load_catalog().eaxles["ea-front-110kw-400v"].model_dump(mode="json")


def test_shipped_components_cover_the_issue() -> None:
    catalog = load_catalog()
    assert len(catalog.modules) >= 4 and len(catalog.eaxles) >= 3
    assert len({m.chemistry for m in catalog.modules.values()}) >= 2
    assert len({m.supplier for m in catalog.modules.values()}) >= 2
    assert {a.position for a in catalog.eaxles.values()} == {"front", "rear"}
    assert {a.inverter.voltage_class for a in catalog.eaxles.values()} == {
        VoltageClass.V400,
        VoltageClass.V800,
    }


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"energy_kwh": 5.0}, "energy_kwh 5 does not match nominal_voltage_v x capacity_ah = 3.29 kWh"),
        ({"min_voltage_v": 30.0}, "expected min_voltage_v < nominal_voltage_v < max_voltage_v"),
        (
            {"max_voltage_v": 40.0},
            "max_voltage_v 40 does not match cells_series x OCV at full charge = 33.6 V",
        ),
        ({"peak_discharge_a": 100}, "peak_discharge_a 100 is below max_continuous_discharge_a 225"),
        ({"peak_charge_a": 50}, "peak_charge_a 50 is below max_continuous_charge_a 112"),
        ({"chemistry": "NiMH"}, "chemistry: Input should be"),
        ({"cells_series": 0}, "cells_series: Input should be greater than or equal to 1 (got 0)"),
        ({"id": "Bad Id"}, "id: String should match pattern"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        (
            {
                "thermal": {
                    "min_operating_c": -30,
                    "max_operating_c": 55,
                    "min_charge_c": 50,
                    "max_charge_c": 45,
                }
            },
            "thermal",
        ),
    ],
)
def test_module_rules(module_record: dict[str, Any], change: dict[str, Any], problem: str) -> None:
    assert problem in problem_of(BatteryModule, {**module_record, **change})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"ocv_soc": [0.0, 0.5, 0.4, 1.0], "ocv_v": [3.0, 3.5, 3.6, 4.2]},
            "ocv_soc must increase, but point 2 is 0.4 after 0.5",
        ),
        ({"ocv_soc": [0.0, 0.5, 1.0], "ocv_v": [3.0, 3.9, 3.8]}, "ocv_v must not decrease"),
        ({"ocv_soc": [0.1, 1.0], "ocv_v": [3.0, 4.2]}, "ocv_soc must run from 0 to 1"),
        ({"ocv_soc": [0.0, 0.5, 1.0], "ocv_v": [3.0, 4.2]}, "ocv_soc has 3 points but ocv_v has 2"),
        ({"ocv_soc": [0.0, 1.0], "ocv_v": [3.0, 7.0]}, "cell OCV must lie within 1..5 V"),
        ({"r2_ohm": 0.001, "c2_f": None}, "needs both r2_ohm and c2_f"),
    ],
)
def test_cell_model_rules(module_record: dict[str, Any], change: dict[str, Any], problem: str) -> None:
    assert problem in problem_of(EquivalentCircuit, {**module_record["cell_model"], **change})


def test_ocv_interpolates_and_clamps() -> None:
    cell = EquivalentCircuit(
        ocv_soc=[0, 0.5, 1], ocv_v=[3.0, 3.6, 4.2], r0_ohm=0.001, r1_ohm=0.001, c1_f=1000
    )
    assert cell.ocv(0.25) == pytest.approx(3.3)
    assert cell.ocv(-1) == 3.0 and cell.ocv(2) == 4.2


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"continuous_power_kw": 200}, "continuous_power_kw 200 exceeds peak_power_kw 110"),
        ({"max_speed_rpm": 12000}, "efficiency_map stops at 10400 rpm, below max_speed_rpm 12000"),
        ({"position": "middle"}, "position: String should match pattern"),
        (
            {"inverter": {"semiconductor": "SiC", "voltage_class": "400V", "min_dc_voltage_v": 500,
                          "max_dc_voltage_v": 900, "max_dc_current_a": 400, "hardware_id": "X"}},
            "voltage_class 400V but max_dc_voltage_v 900 makes it 800V",
        ),
    ],
)  # fmt: skip
def test_eaxle_rules(eaxle_record: dict[str, Any], change: dict[str, Any], problem: str) -> None:
    assert problem in problem_of(EAxle, {**eaxle_record, **change})


def test_efficiency_map_shape_and_range(eaxle_record: dict[str, Any]) -> None:
    grid = eaxle_record["efficiency_map"]
    with pytest.raises(ValidationError, match="efficiency row 0 has 2 values but there are 7 speeds"):
        EAxle.model_validate({**eaxle_record, "efficiency_map": {**grid, "efficiency": [[0.9, 0.9]] * 6}})
    bad = [row[:] for row in grid["efficiency"]]
    bad[2][3] = 1.2
    with pytest.raises(ValidationError, match=r"efficiency\[2\]\[3\] = 1.2 is outside \(0, 1\]"):
        EAxle.model_validate({**eaxle_record, "efficiency_map": {**grid, "efficiency": bad}})


CURVE = {"power_fraction": [0, 0.05, 0.2, 0.6, 1.0], "efficiency": [0.80, 0.88, 0.94, 0.95, 0.93], "gear_efficiency": 0.98}


def test_an_efficiency_curve_stands_in_for_the_map(eaxle_record: dict[str, Any]) -> None:
    """Efficiency by fraction of peak power becomes a torque x speed map: at each grid point the
    curve at torque x speed / peak power, times the gear's, up to the peak torque and top speed."""
    axle = EAxle.model_validate({**eaxle_record, "efficiency_map": None, "efficiency_curve": CURVE})
    grid = axle.efficiency
    assert grid.torques_nm[-1] == axle.peak_torque_nm and grid.speeds_rpm[-1] == axle.max_speed_rpm
    for i, torque in enumerate(grid.torques_nm[::7]):
        for j, speed in enumerate(grid.speeds_rpm[::7]):
            fraction = min(torque * speed * 2 * math.pi / 60 / (axle.peak_power_kw * 1000), 1.0)
            expected = float(np.interp(fraction, CURVE["power_fraction"], CURVE["efficiency"])) * 0.98
            assert grid.efficiency[7 * i][7 * j] == pytest.approx(expected)
    assert axle.peak_electrical_power_kw == pytest.approx(110 / (0.95 * 0.98), rel=1e-3)  # the grid nears the peak


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"efficiency_curve": CURVE}, "give efficiency_map (torque x speed) or efficiency_curve"),
        ({"efficiency_map": None}, "give efficiency_map (torque x speed) or efficiency_curve"),
        ({"efficiency_map": None, "efficiency_curve": CURVE | {"power_fraction": [0.1, 0.2, 0.5, 0.8, 1]}},
         "power_fraction must rise strictly from 0 to 1"),
        ({"efficiency_map": None, "efficiency_curve": CURVE | {"efficiency": [0.9, 0.9]}},
         "efficiency has 2 values but there are 5 power fractions"),
        ({"efficiency_map": None, "efficiency_curve": CURVE | {"efficiency": [0.8, 0.9, 1.3, 0.9, 0.9]}},
         "efficiency[2] = 1.3 is outside (0, 1]"),
    ],
)  # fmt: skip
def test_efficiency_curve_rules(eaxle_record: dict[str, Any], change: dict[str, Any], problem: str) -> None:
    assert problem in problem_of(EAxle, {**eaxle_record, **change})


@given(
    st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=2, max_size=8),
    st.lists(st.floats(-0.5, 1.5, allow_nan=False), min_size=2, max_size=8),
)
def test_any_curve_is_refused_clearly_or_gives_a_map_in_range(fractions: list[float], efficiency: list[float]) -> None:
    from opensdv.model.components import EfficiencyCurve

    try:
        curve = EfficiencyCurve(power_fraction=fractions, efficiency=efficiency)
    except ValidationError as exc:
        assert describe_validation_error(exc)
        return
    grid = np.asarray(curve.as_map(90, 260, 11500, steps=8).efficiency)
    assert np.all((grid > 0) & (grid <= 1))


def test_a_400v_pack_fails_an_800v_eaxle_with_numbers() -> None:
    catalog = load_catalog()
    pack = Pack(catalog.modules["nmc-pouch-8s2p-56ah"], 12)
    results = {r.rule: r for r in check_compatibility(pack, [catalog.eaxles["ea-rear-160kw-800v"]])}
    assert not results["voltage-window"].passed
    assert results["voltage-window"].message == "pack 240-403 V outside ea-rear-160kw-800v inverter 500-920 V"
    assert not results["voltage-class"].passed
    assert results["voltage-class"].message == "pack is 400V, ea-rear-160kw-800v is 800V"


def test_an_800v_pack_drives_the_800v_eaxle() -> None:
    catalog = load_catalog()
    pack = Pack(catalog.modules["nmc-prismatic-12s1p-120ah"], 18)
    assert pack.voltage_class is VoltageClass.V800
    assert all(r.passed for r in check_compatibility(pack, [catalog.eaxles["ea-rear-160kw-800v"]]))


def test_weak_pack_fails_the_current_rule() -> None:
    catalog = load_catalog()
    pack = Pack(catalog.modules["lfp-prismatic-12s1p-60ah"], 9)
    results = {r.rule: r for r in check_compatibility(pack, [catalog.eaxles["ea-front-110kw-400v"]])}
    assert not results["peak-current"].passed
    assert (
        "needs 433 A at the pack's minimum 270 V; pack peak discharge is 240 A"
        in results["peak-current"].message
    )


LFP_MODULE = load_catalog().modules["lfp-prismatic-16s1p-135ah"]


@given(series=st.integers(1, 40), parallel=st.integers(1, 4))
def test_pack_figures_scale_with_module_count(series: int, parallel: int) -> None:
    module = LFP_MODULE
    try:
        pack = Pack(module, series, parallel)
    except ValueError as exc:
        assert module.max_voltage_v * series > 1000 and "1,000 V" in str(exc)
        return
    assert pack.energy_kwh == pytest.approx(module.energy_kwh * series * parallel)
    assert pack.nominal_voltage_v == pytest.approx(module.nominal_voltage_v * series)
    assert pack.capacity_ah == pytest.approx(module.capacity_ah * parallel)
    assert pack.voltage_class is voltage_class_for(pack.max_voltage_v)


@given(volts=st.floats(min_value=1, max_value=2000))
def test_voltage_class_boundaries(volts: float) -> None:
    if volts <= 500:
        assert voltage_class_for(volts) is VoltageClass.V400
    elif volts <= 1000:
        assert voltage_class_for(volts) is VoltageClass.V800
    else:
        with pytest.raises(ValueError, match="above the 1,000 V"):
            voltage_class_for(volts)
