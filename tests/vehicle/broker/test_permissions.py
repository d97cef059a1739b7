"""KUKSA scope strings -> permissions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.vehicle.broker import ALLOW_ALL, Action, InvalidArgument, Permissions


def test_actions_imply_read() -> None:
    p = Permissions.from_scope("actuate:Vehicle.Body provide:data:Vehicle.Speed")
    assert p.allows(Action.READ, "Vehicle.Body.Trunk.Rear.IsOpen")
    assert p.allows(Action.ACTUATE, "Vehicle.Body.Trunk.Rear.IsOpen")
    assert not p.allows(Action.ACTUATE, "Vehicle.Cabin.DoorCount")
    assert p.allows(Action.PROVIDE_DATA, "Vehicle.Speed") and p.allows(Action.READ, "Vehicle.Speed")
    assert not p.allows(Action.PROVIDE_ACTUATION, "Vehicle.Speed")


def test_provide_covers_both_sub_actions() -> None:
    p = Permissions.from_scope("provide:Vehicle.Powertrain")
    assert p.allows(Action.PROVIDE_DATA, "Vehicle.Powertrain.Range")
    assert p.allows(Action.PROVIDE_ACTUATION, "Vehicle.Powertrain.Range")
    assert not p.allows(Action.PROVIDE_DATA, "Vehicle.Speed")


def test_bare_action_covers_everything_and_wildcards_one_level() -> None:
    assert Permissions.from_scope("read").allows(Action.READ, "Vehicle.Anything.At.All")
    p = Permissions.from_scope("read:Vehicle.*.IsOpen")
    assert not p.allows(Action.READ, "Vehicle.Body.Trunk.Rear.IsOpen")
    assert Permissions.from_scope("read:Vehicle.*.*.*.IsOpen").allows(
        Action.READ, "Vehicle.Body.Trunk.Rear.IsOpen"
    )
    assert not Permissions.from_scope("read:Vehicle.Spe").allows(Action.READ, "Vehicle.Speed")


@pytest.mark.parametrize(
    ("scope", "problem"),
    [("write:Vehicle", "unknown scope action 'write'"), ("read:Vehicle..Speed", "malformed path")],
)
def test_bad_scopes(scope: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        Permissions.from_scope(scope)


def test_allow_all() -> None:
    assert all(ALLOW_ALL.allows(action, "Vehicle.Speed") for action in Action)


@given(st.text(max_size=40))
def test_any_scope_string_parses_or_fails_cleanly(scope: str) -> None:
    try:
        permissions = Permissions.from_scope(scope)
    except InvalidArgument:
        return
    permissions.allows(Action.READ, "Vehicle.Speed")
