"""Catalogs exported by vss-tools 6.0 and 6.1 from one vspec (tests/model/data/vspec): the
expanded exports load alike; a --no-expand export is refused, naming the file, the node and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensdv.model import CatalogError
from opensdv.model.vss import load_vss

EXPORTS = Path(__file__).parent / "data" / "vspec"


@pytest.mark.parametrize("version", ["6.0", "6.1"])
def test_an_expanded_export_loads_every_instance(version: str) -> None:
    catalog = load_vss(EXPORTS / f"vss-tools-{version}-expand.json")
    paths = {leaf.path for leaf in catalog}
    assert len(paths) == 20
    assert {f"Vehicle.Cabin.Door.Row{r}.{s}.Window.Position" for r in (1, 2) for s in ("DriverSide", "PassengerSide")} <= paths
    assert {f"Vehicle.Powertrain.TractionBattery.CellVoltage.Cell.Cell{n}.Voltage" for n in range(1, 5)} <= paths
    assert "Vehicle.Cabin.Light.Spotlight.Count" in paths  # instantiate: false keeps it out of the rows
    assert not any(".Row1.Count" in path for path in paths)
    window = catalog.leaf("Vehicle.Cabin.Door.Row2.PassengerSide.Window.Position")
    assert (window.min, window.max, window.unit) == (0, 100, "percent")


def test_both_versions_export_the_same_catalog() -> None:
    old, new = (load_vss(EXPORTS / f"vss-tools-{v}-expand.json") for v in ("6.0", "6.1"))
    assert [(leaf.path, leaf.datatype.base, leaf.unit) for leaf in old] == [(leaf.path, leaf.datatype.base, leaf.unit) for leaf in new]


@pytest.mark.parametrize("version", ["6.0", "6.1"])
def test_a_no_expand_export_is_refused_with_the_reason(version: str) -> None:
    export = EXPORTS / f"vss-tools-{version}-no-expand.json"
    with pytest.raises(CatalogError) as caught:
        load_vss(export)
    message = str(caught.value)
    assert str(export) in message and "Vehicle.Body.Mirrors" in message
    assert "not expanded" in message and "instantiate: false" in message
