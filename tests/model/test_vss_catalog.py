"""Loading VSS catalogs: the three official exports, the shipped catalog, overlays, bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opensdv.model import CatalogError, EntryType, load_vss
from opensdv.model.vss import default_catalog_path, load_default_vss


def count_leaves_independently(node: dict[str, Any]) -> int:
    """Count non-branch nodes by walking the raw JSON, sharing no code with the loader."""
    total = 0
    stack = list(node.values())
    while stack:
        current = stack.pop()
        if current["type"] == "branch":
            stack.extend(current.get("children", {}).values())
        else:
            total += 1
    return total


@pytest.mark.parametrize("release", ["4.0", "5.1", "6.0"])
def test_official_catalog_loads_every_leaf(shared: Path, release: str) -> None:
    path = shared / "vss" / f"vss_{release}.json"
    catalog = load_vss(path)
    expected = count_leaves_independently(json.loads(path.read_text()))
    print(
        f"VSS {release}: {len(catalog)} leaves (independent count {expected}), {len(catalog.branches)} branches"
    )
    assert len(catalog) == expected
    assert {leaf.entry_type for leaf in catalog} == set(EntryType)
    assert sorted(leaf.id for leaf in catalog) == list(range(1, len(catalog) + 1))


def test_official_leaf_fields_are_kept(shared: Path) -> None:
    catalog = load_vss(shared / "vss" / "vss_6.0.json")
    soc = catalog.leaf("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")
    assert (soc.entry_type, str(soc.datatype), soc.unit, soc.min, soc.max) == (
        EntryType.SENSOR,
        "float",
        "percent",
        0,
        100.0,
    )
    inlets = catalog.leaf(
        "Vehicle.Powertrain.TractionBattery.Charging.ChargingPort.AnyPosition.SupportedInletTypes"
    )
    assert inlets.datatype.is_array and inlets.allowed is not None and "IEC_TYPE_2_CCS_DC" in inlets.allowed
    assert "uuid" not in inlets.extra or isinstance(inlets.extra["uuid"], str)


def test_shipped_catalog_follows_vss_6_exactly(shared: Path) -> None:
    ours = load_default_vss()
    official = load_vss(shared / "vss" / "vss_6.0.json")
    assert len(ours) >= 150
    for leaf in ours:
        reference = official.get(leaf.path)
        assert reference is not None, f"{leaf.path} is not a VSS 6.0 path"
        for field in ("entry_type", "datatype", "unit", "min", "max", "allowed"):
            assert getattr(leaf, field) == getattr(reference, field), f"{leaf.path}.{field}"
        assert leaf.description, f"{leaf.path} has no description"
        assert not leaf.extra, f"{leaf.path} has unexpected keys {sorted(leaf.extra)}"


def test_shipped_catalog_covers_the_platform_areas() -> None:
    catalog = load_default_vss()
    for branch, at_least in {
        "Vehicle.Powertrain.TractionBattery": 60,
        "Vehicle.Powertrain.TractionBattery.Charging": 25,
        "Vehicle.Powertrain.ElectricMotor": 10,
        "Vehicle.Chassis": 10,
        "Vehicle.Cabin": 10,
        "Vehicle.Acceleration": 3,
    }.items():
        assert len(catalog.matching(branch)) >= at_least, branch
    assert "Vehicle.Speed" in catalog


def test_patterns_follow_kuksa_wildcards() -> None:
    catalog = load_default_vss()
    assert [leaf.path for leaf in catalog.matching("Vehicle.Speed")] == ["Vehicle.Speed"]
    doors = catalog.matching("Vehicle.Cabin.Door.*.*.IsOpen")
    assert len(doors) == 4
    assert {leaf.path for leaf in catalog.matching("Vehicle.**.Speed")} >= {
        "Vehicle.Chassis.Axle.Row1.Wheel.Left.Speed",
        "Vehicle.Powertrain.ElectricMotor.Speed",
    }
    assert catalog.matching("Vehicle.Spe") == []  # a prefix of a name is not a branch


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_overlay_adds_and_overrides(tmp_path: Path) -> None:
    overlay = write(
        tmp_path,
        "oem.yaml",
        """
Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit: {max: 90}
Vehicle.OEM.Nissan:
  type: branch
  description: Nissan-only signals
  children:
    EcoPedal.IsActive: {type: actuator, datatype: boolean, description: e-Pedal one-pedal driving}
""",
    )
    catalog = load_vss(default_catalog_path(), overlay)
    limit = catalog.leaf("Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit")
    assert (limit.min, limit.max, limit.unit) == (0, 90, "percent")
    added = catalog.leaf("Vehicle.OEM.Nissan.EcoPedal.IsActive")
    assert added.entry_type is EntryType.ACTUATOR
    assert "Vehicle.OEM.Nissan.EcoPedal" in catalog.branches
    assert len(catalog) == len(load_default_vss()) + 1


def test_default_values_are_validated_and_kept(tmp_path: Path) -> None:
    path = write(tmp_path, "c.json", json.dumps({"Vehicle": {"type": "branch", "children": {
        "DoorCount": {"type": "attribute", "datatype": "uint8", "default": 5},
        "Tags": {"type": "attribute", "datatype": "string[]", "default": ["a", "b"]},
    }}}))  # fmt: skip
    catalog = load_vss(path)
    assert catalog.leaf("Vehicle.DoorCount").default == 5
    assert catalog.leaf("Vehicle.Tags").default == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("Vehicle.Speed: {type: sensr, datatype: float}", "Vehicle.Speed.type", "unknown node type 'sensr'"),
        (
            "Vehicle.Speed: {type: sensor, datatype: float32}",
            "Vehicle.Speed.datatype",
            "unknown datatype 'float32'",
        ),
        ("Vehicle.Speed: {type: sensor}", "Vehicle.Speed", "needs a 'datatype'"),
        (
            "Vehicle.Speed: {type: sensor, datatype: uint8, min: 10, max: 5}",
            "Vehicle.Speed",
            "min 10 is greater than max 5",
        ),
        ("Vehicle.Speed: {type: sensor, datatype: uint8, max: 300}", "Vehicle.Speed.max", "300"),
        (
            "Vehicle.Speed: {type: sensor, datatype: string, min: 1}",
            "Vehicle.Speed.min",
            "only allowed on numeric",
        ),
        (
            "Vehicle.Speed: {type: sensor, datatype: float, min: fast}",
            "Vehicle.Speed.min",
            "expected a number, got 'fast'",
        ),
        (
            "Vehicle.Mode: {type: actuator, datatype: string, allowed: [A, 3]}",
            "Vehicle.Mode.allowed",
            "expected a string (got 3)",
        ),
        (
            "Vehicle.Mode: {type: actuator, datatype: string, allowed: []}",
            "Vehicle.Mode.allowed",
            "non-empty list",
        ),
        ("Vehicle.Count: {type: attribute, datatype: uint8, default: -1}", "Vehicle.Count.default", "got -1"),
        (
            "Vehicle.Speed: {type: sensor, datatype: float, unit: 3}",
            "Vehicle.Speed.unit",
            "expected a string, got 3",
        ),
        ("Vehicle.Speed: {datatype: float}", "Vehicle.Speed", "needs a 'type'"),
        ("Vehicle.Speed: 12", "Vehicle.Speed", "expected a mapping"),
        ("Vehicle..Speed: {type: sensor, datatype: float}", "(top)", "invalid node name"),
        ("- just a list", "", "expected a mapping of VSS nodes"),
        (
            "Vehicle.Speed: {type: sensor, datatype: float}\nVehicle.Speed.Unit: {type: attribute, datatype: string}",
            "Vehicle.Speed.Unit",
            "parent 'Vehicle.Speed' is a sensor",
        ),
    ],
)
def test_bad_catalog_names_file_path_and_value(tmp_path: Path, text: str, where: str, problem: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(CatalogError) as caught:
        load_vss(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    assert where in message and problem in message, message


def test_overlay_cannot_turn_a_leaf_into_a_branch(tmp_path: Path) -> None:
    overlay = write(tmp_path, "o.yaml", "Vehicle.Speed: {type: branch}")
    with pytest.raises(
        CatalogError, match=r"o\.yaml: Vehicle\.Speed: cannot change node type from 'sensor' to 'branch'"
    ):
        load_vss(default_catalog_path(), overlay)


def test_syntax_errors_name_the_line(tmp_path: Path) -> None:
    bad_json = write(tmp_path, "bad.json", '{\n "Vehicle": {\n "type": "branch",,\n}}')
    with pytest.raises(CatalogError, match=r"bad\.json: line 3: invalid JSON"):
        load_vss(bad_json)
    bad_yaml = write(tmp_path, "bad.yaml", "Vehicle:\n  type: branch\n   children: {")
    with pytest.raises(CatalogError, match=r"bad\.yaml: line \d+: invalid YAML"):
        load_vss(bad_yaml)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="file not found"):
        load_vss(tmp_path / "nope.json")
    with pytest.raises(CatalogError, match=r"unsupported file type '\.vspec'"):
        load_vss(write(tmp_path, "x.vspec", "Vehicle:\n  type: branch\n"))
