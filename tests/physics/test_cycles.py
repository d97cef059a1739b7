"""Drive cycles: the shipped ones are the standards; bad CSV files are named, line and value."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensdv.physics import SHIPPED_CYCLES, CycleError, load_cycle
from opensdv.physics.cycles import CycleGapWarning


@pytest.mark.parametrize(
    ("name", "seconds", "km"),
    [("udds", 1369, 11.99), ("hwfet", 765, 16.51), ("wltc_class1", 1022, 8.09), ("wltc_class2", 1800, 22.65),
     ("wltc_class3b", 1800, 23.27), ("wltc_japan", 1477, 15.0)],
)  # fmt: skip
def test_shipped_cycles_match_the_standards(name: str, seconds: int, km: float) -> None:
    cycle = load_cycle(name)
    assert cycle.duration_s == seconds
    assert cycle.distance_km == pytest.approx(km, rel=0.02)
    assert cycle.speed_mps.min() == 0 and cycle.source
    assert set(SHIPPED_CYCLES) >= {name}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cycle.csv"
    path.write_text(text)
    return path


def test_custom_cycle_in_mph_with_grade(tmp_path: Path) -> None:
    cycle = load_cycle(
        write(tmp_path, "# my commute\ntime_s,speed_mph,grade_percent\n0,0,0\n1,10,2\n2,20,2\n")
    )
    assert cycle.source == "my commute"
    assert cycle.speed_mps[-1] == pytest.approx(8.9408)
    assert cycle.grade[1] == pytest.approx(0.02)


def test_gaps_are_interpolated_with_a_warning_naming_them(tmp_path: Path) -> None:
    path = write(tmp_path, "time_s,speed_kmh\n0,0\n1,10\n5,50\n6,50\n")
    with pytest.warns(CycleGapWarning, match=r"1 gap\(s\) in time interpolated: 1-5 s"):
        cycle = load_cycle(path)
    assert np.allclose(cycle.speed_mps[1:6] * 3.6, [10, 20, 30, 40, 50])


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("time_s,speed_kmh\n0,0\n1,-5\n", "line 3: negative speed -5.0 at t=1.0 s"),
        ("time_s,speed_furlongs\n0,0\n1,5\n", "one speed column with a known unit is needed"),
        ("time_s,speed_kmh\n0,0\n1,fast\n", "line 3: not a number in ['1', 'fast']"),
        ("time_s,speed_kmh\n0,0\n2,5\n1,5\n", "line 4: time 1.0 s does not increase (previous 2.0 s)"),
        ("speed_kmh\n0\n", "needs a 'time_s' column"),
        ("time_s,speed_kmh\n0,0\n", "at least two points"),
        ("time_s,speed_kmh\n0,0\n1,nan\n", "line 3: non-finite value"),
    ],
)
def test_bad_cycle_files(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CycleError) as caught:
        load_cycle(path)
    assert str(caught.value).startswith(str(path)) and problem in str(caught.value), str(caught.value)


def test_unknown_cycle_name() -> None:
    with pytest.raises(CycleError, match="not a shipped cycle"):
        load_cycle("nedc_from_memory")


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.floats(-10, 1e4) | st.just(float("nan")), st.floats(-50, 300) | st.just(float("inf"))),
        min_size=0,
        max_size=30,
    )
)
def test_any_csv_loads_or_fails_cleanly(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[float, float]]
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "c.csv"
    path.write_text("time_s,speed_kmh\n" + "".join(f"{t},{v}\n" for t, v in rows))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CycleGapWarning)
        try:
            cycle = load_cycle(path)
        except CycleError:
            return
    assert np.isfinite(cycle.speed_mps).all() and (cycle.speed_mps >= 0).all()
