"""The optimiser (its network-simplex and HiGHS solvers) and the baselines: small cases with known
answers, the two solvers against each other, and the real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.energy import (
    BASELINES,
    PlanError,
    Schedule,
    Session,
    load_sessions,
    plan,
    schedule_greedy,
    time_of_use,
)
from opensdv.cloud.energy.planning import Method
from opensdv.cloud.energy.planning.network_planner import NetworkPlanner
from opensdv.cloud.energy.planning.optimiser import ENERGY_VALUE, RollingPlanner
from opensdv.cloud.energy.planning.tariff import Tariff

SLOT_H = 1.0
METHODS = pytest.mark.parametrize("method", ["network", "lp"])


def flat(slots: int, price: list[float] | None = None, export: float = 0.0, demand: float = 0.0) -> Tariff:
    energy = np.array(price if price else [0.1] * slots, dtype=float)
    return Tariff(energy, np.full(slots, export), demand)


@METHODS
def test_charges_in_the_cheap_hours(method: Method) -> None:
    sessions = [Session("a", "S1", 0, 4, 10.0, 10.0)]
    tariff = flat(4, [0.5, 0.1, 0.5, 0.1])
    schedule = plan(sessions, slots=4, slot_h=SLOT_H, site_cap_kw=50, tariff=tariff, method=method)
    assert schedule.power_kw[0, [0, 2]].tolist() == [0.0, 0.0]  # nothing in the expensive hours
    assert schedule.delivered_kwh[0] == pytest.approx(10)
    assert schedule.energy_cost == pytest.approx(1.0)


@METHODS
def test_cap_windows_and_limits_are_respected(method: Method) -> None:
    sessions = [
        Session("a", "S1", 0, 3, 20.0, 7.0),
        Session("b", "S2", 1, 4, 20.0, 7.0),
        Session("c", "S3", 2, 4, 1.0, 7.0),
    ]
    schedule = plan(sessions, slots=4, slot_h=SLOT_H, site_cap_kw=10, tariff=flat(4), method=method)
    assert (schedule.site_kw <= 10 + 1e-7).all()
    assert (schedule.power_kw <= 7 + 1e-7).all() and (schedule.power_kw >= -1e-9).all()
    assert (
        schedule.power_kw[0, 3] == 0 and schedule.power_kw[1, 0] == 0 and schedule.power_kw[2, :2].sum() == 0
    )
    # slot 0: only a (7 kW); slots 1-2: the 10 kW cap; slot 3: b at 7 kW and c's 1 kWh
    assert schedule.delivered_kwh.sum() == pytest.approx(7 + 10 + 10 + 8)


@METHODS
def test_v2g_sells_when_it_pays_and_keeps_the_minimum_charge(method: Method) -> None:
    car = Session(
        "v", "S1", 0, 3, 10.0, 10.0, max_discharge_kw=10.0, capacity_kwh=50.0, arrival_soc=0.5, min_soc=0.3
    )
    tariff = Tariff(
        np.array([1.0, 0.1, 0.1]), np.array([0.9, 0.08, 0.08]), 0.0
    )  # sell at peak, buy back cheap
    profitable = plan(
        [car], slots=3, slot_h=SLOT_H, site_cap_kw=50, tariff=tariff, wear_cost_per_kwh=0.05, method=method
    )
    assert profitable.exported_kwh > 0
    energy = 25.0 + np.cumsum(profitable.power_kw[0])
    assert (energy >= 15.0 - 1e-6).all() and energy[-1] == pytest.approx(35.0)  # min 30 %, delivered 10 kWh
    worn = plan(
        [car], slots=3, slot_h=SLOT_H, site_cap_kw=50, tariff=tariff, wear_cost_per_kwh=1.0, method=method
    )
    assert worn.exported_kwh == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("planner_type", [NetworkPlanner, RollingPlanner])
def test_rolling_replan_freezes_the_past_and_fits_the_newcomer(
    planner_type: type[NetworkPlanner] | type[RollingPlanner],
) -> None:
    tariff = flat(6, [0.1, 0.1, 0.3, 0.5, 0.5, 0.5])
    planner = planner_type(
        [Session("a", "S1", 0, 6, 12.0, 6.0)], slots=6, slot_h=SLOT_H, site_cap_kw=8, tariff=tariff
    )
    before = planner.solve()
    assert before.power_kw[0, :2].tolist() == pytest.approx([6, 6])  # all in the cheap hours
    planner.add_arrival(Session("b", "S2", 2, 6, 10.0, 8.0), now=2)
    after = planner.solve()
    assert after.power_kw[0, :2].tolist() == pytest.approx([6, 6])  # what happened stays
    assert after.power_kw[1, 2] == pytest.approx(8)  # the newcomer takes the last cheap slot, up to the cap
    assert after.delivered_kwh.tolist() == pytest.approx([12, 10])
    assert (after.site_kw <= 8 + 1e-7).all()
    with pytest.raises(PlanError, match="arrives at 1, before now"):
        planner.add_arrival(Session("c", "S3", 1, 6, 1.0, 1.0), now=3)


@pytest.mark.parametrize("group_pairs", [NetworkPlanner.GROUP_PAIRS, 4])
def test_network_replans_keep_the_past_through_more_arrivals_than_spare_chains(
    group_pairs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(NetworkPlanner, "GROUP_PAIRS", group_pairs)  # 4: chains in groups with hubs
    monkeypatch.setattr(NetworkPlanner, "GROUP_CHAINS", 0.01)
    tariff = Tariff(np.linspace(0.4, 0.1, 16), np.linspace(0.3, 0.05, 16), 1.0)
    car = {"capacity_kwh": 40.0, "arrival_soc": 0.5, "min_soc": 0.2}
    planner = NetworkPlanner(
        [Session("a", "S0", 0, 16, 8.0, 7.0)], slots=16, slot_h=0.25, site_cap_kw=22, tariff=tariff
    )
    assert (planner._network.groups > 1) == (group_pairs == 4)
    before = planner.solve()
    arrivals = NetworkPlanner.SPARE_CHAINS + 4  # the last ones need a network built anew
    for now in range(1, arrivals + 1):
        v2g = now % 2 == 0
        newcomer = Session(
            f"n{now}", f"S{now}", now, 16, 3.0, 7.0, max_discharge_kw=7.0 if v2g else 0.0, **car
        )
        planner.add_arrival(newcomer, now=now)
        after = planner.solve()
        assert after.power_kw[: len(before.sessions), :now] == pytest.approx(before.power_kw[:, :now])
        assert (np.abs(after.site_kw) <= 22 + 1e-9).all()
        stored = 20.0 + np.cumsum(after.power_kw[now:], axis=1) * 0.25  # every newcomer's battery
        assert (stored >= 8.0 - 1e-9).all()
        before = after
    assert before.delivered_kwh.tolist() == pytest.approx([8.0] + [3.0] * arrivals)  # room for all


def random_site(seed: int) -> tuple[list[Session], Tariff, float]:
    """A small site with prices, limits and energies on round numbers (so whole Wh lose nothing)."""
    rng = np.random.default_rng(seed)
    sessions = []
    for i in range(int(rng.integers(2, 8))):
        arrival = int(rng.integers(0, 7))
        departure = int(rng.integers(arrival + 1, 9))
        v2g = bool(rng.random() < 0.5)
        sessions.append(Session(f"s{i}", f"S{i}", arrival, departure, float(rng.integers(0, 60)) / 2,
                                float(rng.integers(1, 12)), max_discharge_kw=float(rng.integers(1, 12)) if v2g else 0.0,
                                capacity_kwh=60.0, arrival_soc=0.5, min_soc=float(rng.integers(0, 5)) / 10))  # fmt: skip
    price = rng.integers(5, 50, 8) / 100
    tariff = Tariff(price, price * rng.integers(0, 10, 8) / 10, float(rng.integers(0, 3)) * 5.0)
    return sessions, tariff, float(rng.integers(5, 40))


@pytest.mark.parametrize("seed", range(25))
def test_the_network_simplex_reaches_the_lp_optimum(seed: int) -> None:
    sessions, tariff, cap = random_site(seed)
    network, lp = (
        plan(sessions, slots=8, slot_h=0.25, site_cap_kw=cap, tariff=tariff, wear_cost_per_kwh=0.03, method=m)
        for m in ("network", "lp")
    )
    for schedule in (network, lp):
        assert (schedule.site_kw <= cap + 1e-6).all() and (schedule.site_kw >= -cap - 1e-6).all()
    objective = [s.cost - ENERGY_VALUE * s.delivered_kwh.sum() for s in (network, lp)]
    # the network works in whole Wh: a peak on a 4 W grid (1 Wh per quarter-hour) costs at most
    # 4 W x the demand charge more, and every energy is rounded down to a Wh
    assert objective[0] == pytest.approx(objective[1], abs=0.004 * tariff.demand_charge + 0.01)


@pytest.mark.parametrize("seed", range(4))
def test_a_large_site_in_groups_from_a_sampled_peak_reaches_the_lp_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large sites solve with their chains in groups and start the peak search from samples; both
    are forced here on 60 sessions, whose optimum the LP knows."""
    rng = np.random.default_rng(seed)
    sessions = []
    for i in range(60):
        arrival = int(rng.integers(0, 12))
        sessions.append(Session(f"s{i}", f"S{i}", arrival, int(rng.integers(arrival + 2, 17)),
                                float(rng.integers(2, 40)) / 2, 7.0, max_discharge_kw=7.0 if i % 2 else 0.0,
                                capacity_kwh=40.0, arrival_soc=0.4, min_soc=0.2))  # fmt: skip
    price = np.where(np.arange(16) % 8 < 3, 0.4, 0.1)
    tariff = Tariff(price, 0.8 * price, 15.0)
    lp = plan(
        sessions, slots=16, slot_h=0.25, site_cap_kw=150, tariff=tariff, wear_cost_per_kwh=0.02, method="lp"
    )
    monkeypatch.setattr(NetworkPlanner, "GROUP_PAIRS", 100)
    monkeypatch.setattr(NetworkPlanner, "GROUP_CHAINS", 1.0)
    monkeypatch.setattr(NetworkPlanner, "SAMPLE_SESSIONS", 15)
    planner = NetworkPlanner(
        sessions, slots=16, slot_h=0.25, site_cap_kw=150, tariff=tariff, wear_cost_per_kwh=0.02
    )
    network = planner.solve()
    assert planner._network.groups >= 2 and planner._sampled_peak() is not None
    assert (np.abs(network.site_kw) <= 150 + 1e-6).all()
    objective = [s.cost - ENERGY_VALUE * s.delivered_kwh.sum() for s in (network, lp)]
    assert objective[0] == pytest.approx(objective[1], abs=0.004 * 15.0 + 0.01)


@pytest.mark.parametrize("algorithm", BASELINES)
def test_baselines_respect_the_cap_except_uncontrolled(algorithm: str) -> None:
    sessions = [Session(str(i), "S", 0, 4, 20.0, 7.0) for i in range(4)]
    schedule = schedule_greedy(sessions, algorithm, slots=4, slot_h=SLOT_H, site_cap_kw=14, tariff=flat(4))
    if algorithm == "uncontrolled":
        assert schedule.peak_kw == pytest.approx(28)
    else:
        assert schedule.peak_kw <= 14 + 1e-9
        assert schedule.delivered_kwh.sum() == pytest.approx(56)


def test_optimal_beats_every_baseline_on_caltech(shared: Path) -> None:
    """The month's first week of real sessions (the whole month is bench.energy's). The plan
    delivers first, then spends least: by its objective it beats every baseline, and it never
    delivers less."""
    week = 7 * 24 * 12  # 5-minute slots
    csv = shared / "data" / "acn" / "caltech_2019-03_sessions.csv"
    sessions = [s for s in load_sessions(csv) if s.departure < week]
    assert len(sessions) > 150
    slots = max(s.departure for s in sessions) + 1
    tariff = time_of_use(slots, 5)
    best = plan(sessions, slots=slots, slot_h=5 / 60, site_cap_kw=30, tariff=tariff)

    def objective(schedule: Schedule) -> float:
        return schedule.cost - ENERGY_VALUE * float(schedule.delivered_kwh.sum())

    for algorithm in BASELINES[1:]:
        other = schedule_greedy(
            sessions, algorithm, slots=slots, slot_h=5 / 60, site_cap_kw=30, tariff=tariff
        )
        assert best.delivered_share >= other.delivered_share - 1e-6
        assert objective(best) <= objective(other) + 1e-3
    assert best.peak_kw <= 30 + 1e-6


def test_energy_plan_command(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions.csv"
    sessions.write_text(
        "id,station,arrival,departure,kwh_requested,max_kw\n"
        + "".join(f"s{i},S{i},{i * 12},{i * 12 + 60},{5 + i},6.6\n" for i in range(20))
    )
    result = CliRunner().invoke(
        app,
        ["energy", "plan", str(sessions), "--site-cap", "15", "--v2g-share", "0.5", "--plot", "p.png"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "optimal (network)" in result.output and "round robin" in result.output
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
