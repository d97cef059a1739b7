"""DBC loading: opendbc's real definitions through the documented fixes, and our own contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensdv.vehicle.can import FIXES, CanDatabaseError, apply_fixes, load_dbc, opendbc_names


def test_each_fix_does_what_it_says() -> None:
    fixes = {fix.name: fix for fix in FIXES}
    text = 'CM_ SG_ 304 "Seems to be platform-agnostic";\nCM_ SG_ 304 GAS "kept";\n'
    assert fixes["nameless-signal-comment"].apply(text) == '\nCM_ SG_ 304 GAS "kept";\n'
    text = "BO_ 13274 LKAS_HUD_A: 5 ADAS\nBO_ 228 STEERING_CONTROL: 5 EON\nBO_ 2147483904 EXT: 8 X\n"
    fixed = fixes["wide-standard-id"].apply(text)
    assert f"BO_ {13274 | 0x80000000} LKAS_HUD_A" in fixed
    assert "BO_ 228 STEERING_CONTROL" in fixed and "BO_ 2147483904 EXT" in fixed
    assert all(fix.why for fix in FIXES)


@pytest.mark.parametrize(
    ("name", "messages", "expected"),
    [
        ("opendbc:nissan_leaf_2018", 19, "WHEEL_SPEEDS_FRONT"),
        ("opendbc:honda_e_advance_2020_can", 50, "CAR_SPEED"),
        ("opensdv_components", 9, "BMS_PACK_STATUS"),
    ],
)
def test_real_and_own_databases_load(name: str, messages: int, expected: str) -> None:
    database = load_dbc(name)
    assert len(database.messages) == messages
    assert database.get_message_by_name(expected)


def test_honda_needs_both_fixes() -> None:
    import cantools
    from opendbc.dbc.generator.generator import generate_all

    raw = generate_all()["honda_e_advance_2020_can_generated"]
    with pytest.raises(Exception):  # noqa: B017, PT011 - cantools raises its own format error
        cantools.database.load_string(raw, "dbc", strict=True)
    assert (
        cantools.database.load_string(apply_fixes(raw), "dbc", strict=True)
        .get_message_by_name("LKAS_HUD_A")
        .is_extended_frame
    )


def test_unknown_and_broken_sources(tmp_path: Path) -> None:
    assert "nissan_leaf_2018" in opendbc_names()
    with pytest.raises(CanDatabaseError, match="opendbc has no DBC named 'nissan_leaf_2099'"):
        load_dbc("opendbc:nissan_leaf_2099")
    broken = tmp_path / "broken.dbc"
    broken.write_text('VERSION ""\nBO_ 1 X: 8 Y\n SG_ A : 0|8@1+ (1,0) [0|1 "" Y\n')
    with pytest.raises(CanDatabaseError, match="broken.dbc: cannot parse DBC"):
        load_dbc(str(broken))
    with pytest.raises(CanDatabaseError, match="missing.dbc: file not found"):
        load_dbc(str(tmp_path / "missing.dbc"))
