"""Vehicle definitions: the shipped fleet, cross-references, and catalog files with mistakes."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensdv.model import CatalogError, load_catalog


def test_three_brands_share_components_and_one_platform() -> None:
    catalog = load_catalog()
    vehicles = catalog.all_vehicles()
    assert {v.definition.brand for v in vehicles} >= {"Nissan", "Honda", "Mitsubishi"}
    assert all(v.compatible for v in vehicles)
    kei = {v.definition.brand: v for v in vehicles if v.definition.platform == "nmkv-kei-ev"}
    assert set(kei) == {"Nissan", "Mitsubishi"}  # vehicle complementation: one platform, two brands
    assert kei["Nissan"].pack == kei["Mitsubishi"].pack and kei["Nissan"].eaxles == kei["Mitsubishi"].eaxles
    leaf, honda = catalog.vehicle("nissan-leaf-40"), catalog.vehicle("honda-e-advance")
    assert leaf.pack.module is honda.pack.module  # one standard module in two brands' packs


def test_public_figures_of_the_demo_vehicles() -> None:
    catalog = load_catalog()
    leaf = catalog.vehicle("nissan-leaf-40")
    assert leaf.pack.energy_kwh == pytest.approx(39.5, abs=0.5)
    assert leaf.eaxles[0].peak_power_kw == 110
    ek = catalog.vehicle("mitsubishi-ek-x-ev")
    assert ek.pack.energy_kwh == pytest.approx(20, abs=1)
    assert ek.eaxles[0].peak_power_kw == 47 and ek.eaxles[0].peak_torque_nm == 195


def test_component_ecus_are_added_with_hardware_ids() -> None:
    vehicle = load_catalog().vehicle("honda-e-advance")
    assert vehicle.ecus["BMS"].hardware_id == "KCM-BMS-8S-A1"
    assert vehicle.ecus["EAXLE_REAR"].hardware_id == "KDS-INV-113-400-R"
    assert vehicle.ecus["VCU"].hardware_id == "HON-VCU-ZC7-01"


VEHICLE = """
vehicles:
  - id: test-car
    brand: Toyota
    model: Test
    model_year: 2024
    markets: [JP]
    platform: test
    body_type: hatchback
    pack: {module: MODULE, modules_series: 12}
    eaxles: [ea-front-110kw-400v]
    curb_mass_kg: 1500
    drag_coefficient: 0.3
    frontal_area_m2: 2.2
    rolling_resistance: 0.009
    wheel_radius_m: 0.31
    auxiliary_load_w: 400
    pack_envelope: {length_mm: 1500, width_mm: 1200, height_mm: 250}
    max_pack_mass_kg: 300
"""


def test_a_new_brand_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "toyota.yaml"
    path.write_text(VEHICLE.replace("MODULE", "nmc-pouch-8s2p-56ah"))
    vehicle = load_catalog([path]).vehicle("test-car")
    assert vehicle.definition.brand == "Toyota" and vehicle.compatible


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VEHICLE.replace("MODULE", "no-such-module"), "vehicles[test-car].pack.module: unknown module 'no-such-module'"),
        (VEHICLE.replace("MODULE", "nmc-pouch-8s2p-56ah").replace("0.3\n", "0.95\n"),
         "vehicles[test-car]: drag_coefficient: Input should be less than 0.8 (got 0.95)"),
        (VEHICLE.replace("MODULE", "nmc-pouch-8s2p-56ah").replace("[JP]", "[Japan]"),
         "market 'Japan' is not an ISO 3166 alpha-2 code"),
        (VEHICLE.replace("MODULE", "nmc-pouch-8s2p-56ah").replace("[ea-front-110kw-400v]", "[ea-x]"),
         "vehicles[test-car].eaxles: unknown e-axle 'ea-x'"),
        (VEHICLE.replace("MODULE", "nmc-pouch-8s2p-56ah").replace("[ea-front-110kw-400v]",
                                                                   "[ea-front-110kw-400v, ea-front-47kw-400v]"),
         "two e-axles in one position: ['front', 'front']"),
        (VEHICLE.replace("MODULE", "nmc-pouch-8s2p-56ah").replace("test-car", "nissan-leaf-40"),
         "vehicles[nissan-leaf-40]: id already defined in"),
        ("trucks: []", "unknown section(s) ['trucks']"),
        ("vehicles: {a: 1}", "vehicles: expected a list of records, got dict"),
        ("[1, 2]", "expected a mapping with modules, eaxles, vehicles, got list"),
    ],
)  # fmt: skip
def test_bad_catalog_files_name_file_record_and_value(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog([path])
    assert str(caught.value).startswith(str(path)) and problem in str(caught.value), str(caught.value)


def test_unknown_vehicle_lists_the_known_ones() -> None:
    with pytest.raises(CatalogError, match="unknown vehicle 'tesla'.*honda-e-advance"):
        load_catalog().vehicle("tesla")
