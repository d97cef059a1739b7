"""Circuits (kW or A per phase), a grid operator's power cap and flexibility windows: read from a
site file, held by both solvers (which still agree) and by the baselines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.energy import BASELINES, PlanError, Session, plan, schedule_greedy
from opensdv.cloud.energy.planning import Method
from opensdv.cloud.energy.planning.network_planner import NetworkPlanner
from opensdv.cloud.energy.planning.optimiser import ENERGY_VALUE, RollingPlanner
from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.site_limits import Circuit, load_site, phase_kw
from opensdv.cloud.energy.planning.tariff import Tariff
from opensdv.model import CatalogError

SLOTS, SLOT_H = 8, 0.25
METHODS = pytest.mark.parametrize("method", ["network", "lp"])


def circuit_kw(schedule: Schedule, circuit: Circuit) -> np.ndarray:
    rows = [i for i, s in enumerate(schedule.sessions) if s.station in circuit.stations]
    return schedule.power_kw[rows].sum(axis=0)


def random_site(seed: int) -> tuple[list[Session], Tariff, np.ndarray, list[Circuit]]:
    """Whole-Wh numbers, V2G cars (some with their own wear cost), a per-slot cap and two circuits
    that bind."""
    rng = np.random.default_rng(seed)
    sessions = []
    for i in range(int(rng.integers(4, 10))):
        arrival = int(rng.integers(0, 6))
        v2g = bool(rng.random() < 0.5)
        own_wear = float(rng.integers(0, 8)) / 100 if rng.random() < 0.5 else None  # else the plan's
        sessions.append(Session(f"s{i}", f"S{i % 6}", arrival, int(rng.integers(arrival + 1, 9)),
                                float(rng.integers(0, 40)) / 2, float(rng.integers(2, 12)),
                                max_discharge_kw=float(rng.integers(1, 12)) if v2g else 0.0,
                                capacity_kwh=60.0, arrival_soc=0.5, min_soc=0.2, wear_cost_per_kwh=own_wear))  # fmt: skip
    price = rng.integers(5, 50, SLOTS) / 100
    tariff = Tariff(price, price * rng.integers(0, 10, SLOTS) / 10, float(rng.integers(0, 3)) * 5.0)
    cap = rng.integers(10, 40, SLOTS).astype(float)
    circuits = [Circuit("A", frozenset({"S0", "S1", "S2"}), float(rng.integers(3, 12))),
                Circuit("B", frozenset({"S3"}), float(rng.integers(2, 8)))]  # fmt: skip
    return sessions, tariff, cap, circuits


@pytest.mark.parametrize("seed", range(15))
def test_both_solvers_hold_the_circuits_and_a_cap_signal_and_agree(seed: int) -> None:
    sessions, tariff, cap, circuits = random_site(seed)
    network, lp = (
        plan(sessions, slots=SLOTS, slot_h=SLOT_H, site_cap_kw=cap, tariff=tariff, wear_cost_per_kwh=0.03,
             circuits=circuits, method=m)
        for m in ("network", "lp")
    )  # fmt: skip
    for schedule in (network, lp):
        assert (np.abs(schedule.site_kw) <= cap + 1e-6).all()
        for circuit in circuits:
            assert (np.abs(circuit_kw(schedule, circuit)) <= circuit.max_kw + 1e-6).all()
    objective = [s.cost - ENERGY_VALUE * s.delivered_kwh.sum() for s in (network, lp)]
    assert objective[0] == pytest.approx(objective[1], abs=0.004 * tariff.demand_charge + 0.01)


@METHODS
def test_a_circuit_limits_its_stations_together(method: Method) -> None:
    sessions = [Session(f"c{i}", f"S{i}", 0, 4, 40.0, 11.0) for i in range(3)]
    row = Circuit("row-1", frozenset({"S0", "S1"}), phase_kw(16, phases=1))  # 16 A on one phase: 3.68 kW
    flat = Tariff(np.full(4, 0.1), np.zeros(4), 0.0)
    schedule = plan(sessions, slots=4, slot_h=1.0, site_cap_kw=50, tariff=flat, circuits=[row], method=method)
    assert circuit_kw(schedule, row) == pytest.approx(np.full(4, 3.68), abs=1e-3)
    assert schedule.delivered_kwh[2] == pytest.approx(40.0, abs=1e-3)  # the car off the circuit: all it asked


@METHODS
def test_a_flexibility_window_makes_the_site_take_power(method: Method) -> None:
    """The grid has surplus in slots 0-1 and asks the site to take 20 kW; the price says wait."""
    sessions = [Session(f"f{i}", f"S{i}", 0, 4, 20.0, 11.0) for i in range(2)]
    tariff = Tariff(np.array([0.4, 0.4, 0.1, 0.1]), np.zeros(4), 0.0)
    free = plan(sessions, slots=4, slot_h=1.0, site_cap_kw=30, tariff=tariff, method=method)
    assert free.site_kw[:2] == pytest.approx([0, 0], abs=1e-6)
    window = np.array([20.0, 20.0, 0.0, 0.0])
    asked = plan(
        sessions, slots=4, slot_h=1.0, site_cap_kw=30, tariff=tariff, min_import_kw=window, method=method
    )
    assert (asked.site_kw[:2] >= 20 - 1e-3).all() and asked.delivered_kwh.sum() == pytest.approx(40, abs=1e-3)
    with pytest.raises(PlanError, match="cannot take the minimum import"):
        plan(sessions, slots=4, slot_h=1.0, site_cap_kw=30, tariff=tariff, min_import_kw=25.0, method=method)
    with pytest.raises(PlanError, match="within the site cap"):
        plan(sessions, slots=4, slot_h=1.0, site_cap_kw=30, tariff=tariff, min_import_kw=31.0, method=method)


@pytest.mark.parametrize("planner_type", [NetworkPlanner, RollingPlanner])
def test_a_newcomer_behind_a_circuit_is_replanned_within_it(
    planner_type: type[NetworkPlanner] | type[RollingPlanner],
) -> None:
    row = Circuit("row-1", frozenset({"S0", "S1"}), 7.0)
    flat = Tariff(np.full(6, 0.1), np.zeros(6), 0.0)
    planner = planner_type([Session("a", "S0", 0, 6, 30.0, 7.0)], slots=6, slot_h=1.0, site_cap_kw=20,
                           tariff=flat, circuits=[row])  # fmt: skip
    before = planner.solve()
    planner.add_arrival(Session("b", "S1", 2, 6, 10.0, 7.0), now=2)
    after = planner.solve()
    assert after.power_kw[0, :2] == pytest.approx(before.power_kw[0, :2])  # what happened stays
    assert (after.power_kw.sum(axis=0) <= 7 + 1e-6).all() and after.delivered_kwh.sum() == pytest.approx(35.0)


@pytest.mark.parametrize("algorithm", BASELINES[1:])
def test_controlled_baselines_keep_within_circuits(algorithm: str) -> None:
    sessions = [Session(str(i), f"S{i}", 0, 4, 20.0, 7.0) for i in range(4)]
    row = Circuit("row", frozenset({"S0", "S1", "S2"}), 9.0)
    schedule = schedule_greedy(sessions, algorithm, slots=4, slot_h=1.0, site_cap_kw=np.array([30, 30, 10, 30.0]),
                               tariff=Tariff(np.full(4, 0.1), np.zeros(4), 0.0), circuits=[row])  # fmt: skip
    assert (circuit_kw(schedule, row) <= 9 + 1e-9).all() and schedule.site_kw[2] <= 10 + 1e-9
    assert schedule.power_kw[3].sum() > 0  # the car off the circuit still charges


SITE = """\
name: Depot A
cap_a_per_phase: 100
circuits:
  - {id: row-1, stations: [S0, S1], max_a_per_phase: 16, phases: 1}
  - {id: row-2, stations: [S2], max_kw: 7.4}
grid_signals:
  - {kind: cap, from_slot: 2, to_slot: 4, kw: 30}
  - {kind: flexibility, from_slot: 6, to_slot: 99, min_import_kw: 5}
"""


def test_a_site_file_becomes_per_slot_limits(tmp_path: Path) -> None:
    path = tmp_path / "depot.yaml"
    path.write_text(SITE)
    name, limits = load_site(path, slots=8)
    assert name == "Depot A" and limits.cap_kw.tolist() == [69.0, 69.0, 30.0, 30.0, 69.0, 69.0, 69.0, 69.0]
    assert limits.min_import_kw.tolist() == [0, 0, 0, 0, 0, 0, 5, 5]  # cut at the last slot
    assert [(c.id, c.max_kw) for c in limits.circuits] == [("row-1", pytest.approx(3.68)), ("row-2", 7.4)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("cap_a_per_phase: 100", "cap_a_per_phase: 100\ncap_kw: 50"), "exactly one of cap_kw and cap_a_per_phase"),
        (("stations: [S2]", "stations: [S1]"), "stations on more than one circuit: ['S1']"),
        (("id: row-2", "id: row-1"), "circuit ids repeat: ['row-1']"),
        (("max_kw: 7.4", "max_kw: -1"), "circuits.1.max_kw: Input should be greater than 0"),
        (("to_slot: 4, kw: 30", "to_slot: 2, kw: 30"), "to_slot 2 must be after from_slot 2"),
        (("kind: cap, from_slot: 2, to_slot: 4, kw: 30", "kind: cap, from_slot: 2, to_slot: 4, min_import_kw: 30"),
         "a cap signal takes kw (and not min_import_kw)"),
        (("min_import_kw: 5", "min_import_kw: 500"), "grid_signals.1: asks for more import than the site's cap allows"),
        (("kind: flexibility", "kind: surplus"), "grid_signals.1.kind: Input should be 'cap' or 'flexibility'"),
    ],
)  # fmt: skip
def test_bad_site_files_name_the_file_and_the_field(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SITE.replace(*change))
    with pytest.raises(CatalogError) as caught:
        load_site(path, slots=8)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)


def test_energy_plan_command_with_a_site_file(tmp_path: Path) -> None:
    (tmp_path / "depot.yaml").write_text(SITE.replace("to_slot: 99", "to_slot: 8"))  # while cars are in
    sessions = tmp_path / "sessions.csv"
    sessions.write_text(
        "id,station,arrival,departure,kwh_requested,max_kw\n"
        + "".join(f"s{i},S{i},{i},{i + 6},{4 + i},6.6\n" for i in range(4))
    )
    runner = CliRunner()
    result = runner.invoke(
        app, ["energy", "plan", str(sessions), "--site", str(tmp_path / "depot.yaml"), "--slot-minutes", "15",
              "--plot", str(tmp_path / "p.png")], env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Depot A: 4 sessions" in result.output and "2 circuits" in result.output
    assert "wear cost 0.0219 per kWh" in result.output  # the ageing model's, for NMC packs
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    neither = runner.invoke(app, ["energy", "plan", str(sessions)])
    assert neither.exit_code != 0 and "--site-cap or --site" in neither.output


@pytest.mark.parametrize("seed", range(6))
def test_replans_when_a_car_leaves_early_and_when_the_grid_signals(seed: int) -> None:
    """Model-predictive control: the plan is kept up to now each time, a car that left gets nothing
    more, a cap signal holds from its slot on."""
    sessions, tariff, cap, circuits = random_site(seed)
    sessions.append(Session("all-day", "S5", 0, SLOTS, 40.0, 11.0))  # room for the window at slot 7
    planners = [
        kind(sessions, slots=SLOTS, slot_h=SLOT_H, site_cap_kw=cap, tariff=tariff, wear_cost_per_kwh=0.03,
             circuits=circuits)
        for kind in (NetworkPlanner, RollingPlanner)
    ]  # fmt: skip
    first = [p.solve() for p in planners]
    leaving = next(s for s in sessions if s.departure > 3)
    signal = np.minimum(cap, 6.0)
    for planner in planners:
        planner.depart(leaving.id, now=3)
    second = [p.solve() for p in planners]
    for planner in planners:
        planner.set_limits(5, signal, min_import_kw=np.where(np.arange(SLOTS) == 7, 0.5, 0.0))
    third = [p.solve() for p in planners]
    index = sessions.index(leaving)
    for before, after, last in zip(first, second, third, strict=True):
        assert after.power_kw[:, :3] == pytest.approx(before.power_kw[:, :3], abs=1e-6)
        assert last.power_kw[:, :5] == pytest.approx(after.power_kw[:, :5], abs=1e-6)
        assert np.abs(last.power_kw[index, 3:]).max(initial=0) <= 1e-9
        assert (np.abs(last.site_kw[5:]) <= 6 + 1e-6).all() and (np.abs(last.site_kw) <= cap + 1e-6).all()
    # (the two solvers' pasts may differ, as optima are not unique: their re-plans are compared
    # where they share a past, below)
    with pytest.raises(PlanError, match="before the last re-plan|between the last re-plan"):
        planners[0].depart(sessions[0].id, now=2)
    with pytest.raises(PlanError, match="no session 'nobody'"):
        planners[1].depart("nobody", now=6)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("planner_type", [NetworkPlanner, RollingPlanner])
def test_a_replan_reaches_the_optimum_of_the_changed_site(
    seed: int, planner_type: type[NetworkPlanner] | type[RollingPlanner]
) -> None:
    """With no past yet (now = 0), a car leaving and a new cap and window must give exactly the
    plan of the site as changed: the same optimum as planning it afresh."""
    sessions, tariff, cap, circuits = random_site(seed)
    sessions.append(Session("all-day", "S5", 0, SLOTS, 40.0, 11.0))
    signal, window = np.minimum(cap, 8.0), np.where(np.arange(SLOTS) >= 6, 0.5, 0.0)
    planner = planner_type(sessions, slots=SLOTS, slot_h=SLOT_H, site_cap_kw=cap, tariff=tariff,
                           wear_cost_per_kwh=0.03, circuits=circuits)  # fmt: skip
    planner.solve()
    planner.depart(sessions[0].id, now=0)
    planner.set_limits(0, signal, min_import_kw=window)
    replanned = planner.solve()
    fresh = plan(sessions[1:], slots=SLOTS, slot_h=SLOT_H, site_cap_kw=signal, tariff=tariff, wear_cost_per_kwh=0.03,
                 circuits=circuits, min_import_kw=window, method="lp")  # fmt: skip
    objective = [s.cost - ENERGY_VALUE * s.delivered_kwh.sum() for s in (replanned, fresh)]
    assert objective[0] == pytest.approx(objective[1], abs=0.004 * tariff.demand_charge + 0.01)
    assert np.abs(replanned.power_kw[0]).max() == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 200) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
site_keys = st.sampled_from(
    ["name", "cap_kw", "cap_a_per_phase", "phases", "volts", "circuits", "grid_signals"]
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(site_keys, json_values, max_size=6) | json_values)
def test_any_site_document_loads_or_is_refused_with_the_file_named(tmp_path: Path, document: object) -> None:
    path = tmp_path / "fuzzed.json"
    path.write_text(json.dumps(document))
    try:
        _, limits = load_site(path, slots=8)
    except CatalogError as error:
        assert str(error).startswith(f"{path}: ")
    else:
        assert (
            limits.cap_kw.shape == (8,)
            and (limits.cap_kw > 0).all()
            and (limits.min_import_kw <= limits.cap_kw).all()
        )


@pytest.mark.parametrize("planner_type", [NetworkPlanner, RollingPlanner])
def test_each_battery_wears_at_its_own_cost(
    planner_type: type[NetworkPlanner] | type[RollingPlanner],
) -> None:
    """Two V2G cars could sell in the expensive hour; only the one whose wear is cheap does, and a
    newcomer with its own wear is planned at it too (the network builds anew for it)."""
    tariff = Tariff(np.array([1.0, 0.1, 0.1]), np.array([0.9, 0.08, 0.08]), 0.0)
    battery = {"max_discharge_kw": 10.0, "capacity_kwh": 50.0, "arrival_soc": 0.5, "min_soc": 0.3}
    cheap = Session("lfp", "S1", 0, 3, 10.0, 10.0, wear_cost_per_kwh=0.01, **battery)
    dear = Session("worn", "S2", 0, 3, 10.0, 10.0, wear_cost_per_kwh=1.0, **battery)
    planner = planner_type(
        [cheap, dear], slots=3, slot_h=1.0, site_cap_kw=50, tariff=tariff, wear_cost_per_kwh=0.02
    )
    schedule = planner.solve()
    sold = np.maximum(-schedule.power_kw, 0).sum(axis=1)
    assert sold[0] > 0 and sold[1] == pytest.approx(0, abs=1e-6)
    assert schedule.wear_cost == pytest.approx(2 * sold[0] * 0.01)
    planner.add_arrival(Session("nmc", "S3", 0, 3, 10.0, 10.0, wear_cost_per_kwh=0.5, **battery), now=0)
    replanned = planner.solve()
    assert np.maximum(-replanned.power_kw[2], 0).sum() == pytest.approx(0, abs=1e-6)  # 0.5 > the spread
