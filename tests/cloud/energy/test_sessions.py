"""Session files: the ACN-Data export loads; mistakes name file, row and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensdv.cloud.energy import Session, SessionError, load_sessions, with_v2g


def test_caltech_sessions_load(shared: Path) -> None:
    sessions = load_sessions(shared / "data" / "acn" / "caltech_2019-03_sessions.csv")
    assert len(sessions) == 954
    assert all(s.max_kw == 6.6 and s.departure > s.arrival for s in sessions)
    v2g = with_v2g(sessions, 0.5)
    assert sum(s.v2g for s in v2g) == 477
    for s in v2g:
        if s.v2g:
            assert s.capacity_kwh is not None and s.arrival_soc is not None
            assert s.arrival_soc * s.capacity_kwh + s.kwh_requested <= 0.9 * s.capacity_kwh + 1e-9


def test_json_and_v2g_fields(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"id": "a", "station": "S1", "arrival": 0, "departure": 4, "kwh_requested": 5, "max_kw": 7,
                                 "max_discharge_kw": 7, "capacity_kwh": 60, "arrival_soc": 0.5, "min_soc": 0.3,
                                 "wear_cost_per_kwh": 0.009}]))  # fmt: skip
    (session,) = load_sessions(path)
    assert session.v2g and session.slots == 4 and session.wear_cost_per_kwh == 0.009
    path.write_text(path.read_text().replace("0.009", "-1"))
    with pytest.raises(SessionError, match="wear_cost_per_kwh must be a finite number >= 0, got -1"):
        load_sessions(path)


HEADER = "id,station,arrival,departure,kwh_requested,max_kw,max_discharge_kw,capacity_kwh,arrival_soc\n"


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ("a,S,5,5,1,7,,,\n", "line 2 (session a): departure 5 must be after arrival 5"),
        ("a,S,0,5,-1,7,,,\n", "kwh_requested must be a finite number >= 0, got -1.0"),
        ("a,S,0,5,lots,7,,,\n", "line 2: kwh_requested is not a number: 'lots'"),
        ("a,S,0.5,5,1,7,,,\n", "arrival must be a whole slot number"),
        ("a,S,0,5,1,7,,,\na,S,0,5,1,7,,,\n", "line 3: session id 'a' appears twice"),
        ("a,S,0,5,1,7,7,,\n", "needs capacity_kwh and arrival_soc"),
        ("", "no sessions"),
    ],
)
def test_bad_session_files(tmp_path: Path, rows: str, problem: str) -> None:
    path = tmp_path / "s.csv"
    path.write_text(HEADER + rows)
    with pytest.raises(SessionError) as caught:
        load_sessions(path)
    assert str(caught.value).startswith(str(path)) and problem in str(caught.value), str(caught.value)


def test_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id,station\na,S\n")
    with pytest.raises(SessionError, match=r"line 2: missing field\(s\) \['arrival'"):
        load_sessions(path)


@settings(max_examples=80, deadline=None)
@given(
    cells=st.lists(
        st.lists(st.text(alphabet="0123456789.-ab", max_size=5), min_size=6, max_size=6),
        min_size=1,
        max_size=5,
    )
)
def test_any_rows_load_or_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, cells: list[list[str]]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "s.csv"
    path.write_text(
        "id,station,arrival,departure,kwh_requested,max_kw\n" + "".join(",".join(row) + "\n" for row in cells)
    )
    try:
        sessions = load_sessions(path)
    except SessionError:
        return
    assert all(isinstance(s, Session) for s in sessions)
