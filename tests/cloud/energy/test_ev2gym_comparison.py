"""The managed site's controller in EV2Gym's own simulator (its V2GProfitMax scenario, charging
only): every car gets what it asked for, as with charging at full power, at a lower cost and
without overloading the transformer (bench.energy_ev2gym has the full comparison)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("ev2gym")
pytestmark = pytest.mark.bench

from bench.energy_ev2gym import run_heuristic, run_site, scenario_file  # noqa: E402


def test_the_site_controller_in_ev2gym_serves_every_car_for_less(tmp_path: Path) -> None:
    config = scenario_file(tmp_path)
    ours = run_site(config, seed=0)
    fastest = run_heuristic("ChargeAsFastAsPossible", config, seed=0)
    assert ours.served == fastest.served > 0  # the same cars
    assert ours.satisfaction >= fastest.satisfaction - 0.01
    assert ours.energy_kwh >= 0.99 * fastest.energy_kwh
    assert ours.cost_eur < fastest.cost_eur and ours.overload_kw == 0
