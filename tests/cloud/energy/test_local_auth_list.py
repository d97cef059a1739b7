"""A station's local authorisation list against any sequence of SendLocalList updates."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from opensdv.cloud.energy.ocpp.stations import LocalAuthList

tokens = st.sampled_from(["04A1B2C3", "0BADCAFE", "11112222", "DEADBEEF"])
updates = st.lists(
    st.tuples(
        st.integers(0, 6),
        st.booleans(),
        st.dictionaries(tokens, st.sampled_from(["Accepted", "Blocked", None]), max_size=4),
    ),
    max_size=12,
)


@given(updates)
def test_full_updates_replace_differential_ones_must_be_newer(steps: list[tuple[int, bool, dict]]) -> None:
    listed = LocalAuthList()
    for version, full, entries in steps:
        before = (listed.version, dict(listed.status))
        applied = listed.update(version, full, entries)
        if not applied:
            assert not full and version <= before[0] and (listed.version, listed.status) == before
            continue
        assert listed.version == version
        expected = {} if full else dict(before[1])
        for token, status in entries.items():
            if status is None:
                expected.pop(token, None)
            else:
                expected[token] = status
        assert listed.status == expected
        assert all(listed.decide(t) == s for t, s in expected.items())
    assert listed.decide("NOT-ON-IT") == "Unknown"
