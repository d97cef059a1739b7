"""Mapping files: shipped ones check, overlays resolve, mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensdv.model import CatalogError
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.can import Adapter, CanMappingError, load_mapping, shipped_mappings


@pytest.mark.parametrize("mapping_id", shipped_mappings())
def test_every_shipped_mapping_compiles(mapping_id: str) -> None:
    adapter = Adapter(load_mapping(mapping_id), load_default_vss())
    assert adapter.signal_paths


def test_complementation_is_one_platform_plus_overlays() -> None:
    leaf = load_mapping("nissan-leaf-2018")
    kei = load_mapping("nmkv-kei-ev")
    sakura, ek = load_mapping("nissan-sakura-2022"), load_mapping("mitsubishi-ek-x-ev-2022")
    driver = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
    assert leaf.signals[driver].signal == "DOOR_OPEN_FL" and kei.signals[driver].signal == "DOOR_OPEN_FR"
    assert sakura.signals == kei.signals  # the Nissan brand adds nothing to the platform
    assert (
        ek.signals["Vehicle.Speed"].min_interval_ms == 25 != sakura.signals["Vehicle.Speed"].min_interval_ms
    )
    assert {p for p in ek.signals if ek.signals[p] != sakura.signals[p]} == {"Vehicle.Speed"}
    assert (
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current" in ek.signals
    )  # standard components included


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("signals: [{vss: Vehicle.Nope, message: CAR_SPEED, signal: CAR_SPEED}]", "Vehicle.Nope: not a path in the VSS catalog"),
        ("signals: [{vss: Vehicle.Speed, message: NOPE, signal: CAR_SPEED}]", "Vehicle.Speed: message 'NOPE' is not in"),
        ("signals: [{vss: Vehicle.Speed, message: CAR_SPEED, signal: NOPE}]", "signal 'NOPE' is not in message CAR_SPEED"),
        ("signals: [{vss: Vehicle.Speed, message: CAR_SPEED, signal: CAR_SPEED, unit: kg}]", "cannot convert 'kg' to 'km/h'"),
        ("signals: [{vss: Vehicle.Speed, message: WHEEL_SPEEDS, signal: [WHEEL_SPEED_FL, WHEEL_SPEED_FR]}]", "several signals need 'combine'"),
        ("signals: [{vss: Vehicle.Powertrain.Transmission.SelectedGear, message: GEARBOX_AUTO, signal: GEAR_SHIFTER, values: {P: 500}}]",
         "values['P']: outside the int8 range"),
        ("signals: [{vss: Vehicle.Powertrain.Transmission.SelectedGear, message: GEARBOX_AUTO, signal: GEAR_SHIFTER, values: {Q: 1}}]",
         "has no choice 'Q'"),
        ("actuators: [{vss: Vehicle.Speed, message: CAR_SPEED, signal: CAR_SPEED}]", "Vehicle.Speed: is a sensor, not an actuator"),
    ],
)  # fmt: skip
def test_bad_mappings_name_every_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = write(tmp_path, f'id: mine\ndbc: ["opendbc:honda_e_advance_2020_can"]\n{body}\n')
    with pytest.raises(CanMappingError) as caught:
        Adapter(load_mapping(path), load_default_vss())
    assert problem in str(caught.value), str(caught.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("id: Mine\n", "id: String should match pattern"),
        ("id: mine\nsignals: [{vss: Vehicle.Speed}]\n", "signals.0.message: Field required"),
        ("id: mine\nextends: no-such-mapping\n", "no mapping named 'no-such-mapping'"),
        ("id: mine\nextends: nissan-leaf-2018\nremove: [Vehicle.Nope]\n", "'Vehicle.Nope' is not mapped"),
        ("id: mine\ncolour: red\n", "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_mapping_files(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_mapping(write(tmp_path, text))
    assert problem in str(caught.value), str(caught.value)


def test_extends_cycle_is_found(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("id: a\nextends: b\n")
    (tmp_path / "b.yaml").write_text("id: b\nextends: a\n")
    with pytest.raises(CatalogError, match="cycle: a -> b -> a"):
        load_mapping(tmp_path / "a.yaml")
