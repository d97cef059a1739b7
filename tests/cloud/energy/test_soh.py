"""State-of-health estimation against the twin's ground truth, with sensor noise."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.cloud.energy.battery.soh import (
    estimate_capacity_ah,
    estimate_resistance_ohm,
    evaluate_fleet,
    evaluate_modules,
    health_from_telemetry,
)
from opensdv.model import load_catalog


def test_estimators_recover_exact_values() -> None:
    current = np.full(3600, 50.0)  # 50 A for an hour
    soc = 0.9 - np.cumsum(current) / 3600 / 100  # a 100 Ah pack
    assert estimate_capacity_ah(current, soc, 1.0) == pytest.approx(100, rel=1e-9)
    steps = np.tile([0.0, 100.0], 10)
    assert estimate_resistance_ohm(steps, 350 - 0.05 * steps) == pytest.approx(0.05)


def test_estimators_refuse_too_little_information() -> None:
    with pytest.raises(ValueError, match="too little to estimate capacity"):
        estimate_capacity_ah(np.ones(10), np.full(10, 0.5), 1.0)
    with pytest.raises(ValueError, match="too few to estimate resistance"):
        estimate_resistance_ohm(np.ones(10), np.ones(10))


@pytest.mark.parametrize("vehicle", ["nissan-leaf-40", "mitsubishi-ek-x-ev"])
def test_fleet_estimates_are_close_to_the_truth(vehicle: str) -> None:
    result = evaluate_fleet(load_catalog().vehicle(vehicle), 30, cycle="wltc_class3b")
    print(
        f"{vehicle}: SoH RMSE {result.soh_rmse_points:.2f} points, resistance RMSE {result.resistance_rmse:.3f}"
    )
    assert result.soh_rmse_points < 2.0
    assert result.resistance_rmse < 0.06


def test_soh_command() -> None:
    result = CliRunner().invoke(
        app, ["energy", "soh", "honda-e-advance", "--cars", "10"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "RMSE" in result.output


@pytest.mark.parametrize("vehicle_id", ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev"])
def test_each_standard_module_is_estimated_from_its_own_telemetry(vehicle_id: str) -> None:
    vehicle = load_catalog().vehicle(vehicle_id)
    result = evaluate_modules(vehicle)
    assert len(result.estimated_soh) == vehicle.pack.modules_series
    assert result.soh_rmse_points < 1.5 and result.resistance_rmse < 0.05
    # the estimates rank the modules as the truth does: the weakest is found
    assert int(np.argmin(result.estimated_soh)) == int(np.argmin(result.true_soh))


def test_health_from_telemetry_counts_charge_only_while_it_was_measured() -> None:
    """Two stretches with a gap between them (the car was offline): the longer one is used, and
    a pack whose state of charge did not move gets no capacity estimate, with the reason."""
    leaf = load_catalog().vehicle("nissan-leaf-40")
    time_s = np.concatenate([np.arange(100.0), 1000 + np.arange(300.0)])
    current = np.where(np.arange(400) % 10 < 5, -40.0, 0.0)  # current steps, idling battery
    voltage = 360 + 0.1 * current
    measured = health_from_telemetry(leaf, time_s, current, voltage, np.full(400, 0.8))
    assert measured.samples == 300 and measured.window_s == 299
    assert measured.capacity_ah is None and measured.notes[0].startswith(
        "capacity: state of charge moved only"
    )
    assert measured.resistance_ohm == pytest.approx(0.1)
    empty = health_from_telemetry(leaf, np.array([1.0]), np.zeros(1), np.zeros(1), np.zeros(1))
    assert empty.samples == 1 and empty.soh is None and empty.notes == ("no battery telemetry in the window",)
