"""Validating signal values against their leaves, with property tests for every datatype."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.model import DataType, EntryType, VssLeaf, VssValueError
from opensdv.model.vss import _INTEGER_RANGES, load_default_vss

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def leaf(datatype: str, **rules: object) -> VssLeaf:
    return VssLeaf("Vehicle.Test", EntryType.SENSOR, DataType.parse(datatype), **rules)  # type: ignore[arg-type]


@pytest.mark.parametrize("base", sorted(_INTEGER_RANGES))
@given(value=st.integers(min_value=-(2**65), max_value=2**65))
def test_integer_types_accept_exactly_their_range(base: str, value: int) -> None:
    low, high = _INTEGER_RANGES[base]
    if low <= value <= high:
        assert leaf(base).validate(value) == value
    else:
        with pytest.raises(VssValueError, match=f"outside the {base} range"):
            leaf(base).validate(value)


@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_float_accepts_finite_float32_values_only(value: float) -> None:
    ok = not math.isnan(value) and abs(value) <= 3.4028234663852886e38
    if ok:
        assert leaf("float").validate(value) == value
    else:
        with pytest.raises(VssValueError):
            leaf("float").validate(value)


@given(
    value=JSON_VALUES,
    datatype=st.sampled_from(
        ["boolean", "string", "uint8", "int16", "float", "double", "uint8[]", "string[]"]
    ),
)
def test_validator_only_ever_raises_vss_value_error(value: object, datatype: str) -> None:
    try:
        leaf(datatype, min=None).validate(value)
    except VssValueError as exc:
        assert exc.path == "Vehicle.Test" and exc.reason


@given(value=st.integers(min_value=-50, max_value=150))
def test_min_max_are_inclusive(value: int) -> None:
    percent = leaf("uint8", min=0, max=100)
    if 0 <= value <= 100:
        assert percent.validate(value) == value
    else:
        with pytest.raises(VssValueError):
            percent.validate(value)


def test_booleans_are_not_numbers_and_numbers_are_not_booleans() -> None:
    with pytest.raises(VssValueError, match="expected a number"):
        leaf("uint8").validate(True)
    with pytest.raises(VssValueError, match="expected a boolean"):
        leaf("boolean").validate(1)


def test_whole_floats_become_integers_fractions_do_not() -> None:
    assert leaf("uint8").validate(80.0) == 80
    with pytest.raises(VssValueError, match="expected an integer"):
        leaf("uint8").validate(80.5)


def test_allowed_values_and_arrays() -> None:
    catalog = load_default_vss()
    path = "Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging"
    assert catalog.validate(path, "START") == "START"
    with pytest.raises(VssValueError, match=r"not one of the allowed values \['START', 'STOP'\]") as caught:
        catalog.validate(path, "GO")
    assert str(caught.value) == f"{path}: not one of the allowed values ['START', 'STOP'] (got 'GO')"
    cells = "Vehicle.Powertrain.TractionBattery.CellVoltage.CellVoltages"
    assert catalog.validate(cells, (3.7, 3.71)) == [3.7, 3.71]
    with pytest.raises(VssValueError, match="element 1: expected a number"):
        catalog.validate(cells, [3.7, "x"])
    with pytest.raises(VssValueError, match="expected an array"):
        catalog.validate(cells, 3.7)


def test_unknown_path_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown VSS path 'Vehicle.Nope'"):
        load_default_vss().validate("Vehicle.Nope", 1)


@pytest.mark.parametrize("text", ["float[]", "uint64", "boolean", "string[]"])
def test_datatype_round_trips(text: str) -> None:
    assert str(DataType.parse(text)) == text


@given(st.text(max_size=12))
def test_datatype_parse_rejects_unknown_text(text: str) -> None:
    try:
        parsed = DataType.parse(text)
    except ValueError as exc:
        assert "unknown datatype" in str(exc)
    else:
        assert str(parsed) == text


@given(
    datatype=st.sampled_from(["boolean", "string", "int8", "uint8", "int32", "uint64", "float", "double"]),
    bounds=st.tuples(st.none() | st.integers(-300, 300), st.none() | st.integers(-300, 300)),
    value=JSON_VALUES,
)
def test_fast_checker_agrees_with_validate(
    datatype: str, bounds: tuple[int | None, int | None], value: object
) -> None:
    low, high = bounds
    numeric = datatype not in ("boolean", "string")
    if not numeric or (low is not None and high is not None and low > high):
        low = high = None
    subject = leaf(datatype, min=low, max=high)
    try:
        expected: object = ("ok", subject.validate(value))
    except VssValueError as exc:
        expected = ("error", str(exc))
    try:
        got: object = ("ok", subject.checker()(value))
    except VssValueError as exc:
        got = ("error", str(exc))
    assert got == expected
