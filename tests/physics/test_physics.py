"""The twin's physics: energy is conserved, both modes agree, limits are recorded, not NaN."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from opensdv.model import load_catalog
from opensdv.physics import SHIPPED_CYCLES, VehicleParams, load_cycle, simulate
from opensdv.physics.mechanics import AIR_DENSITY, GRAVITY
from opensdv.physics.simulate import ShortfallWarning
from opensdv.vehicle.twin import TwinRuntime

VEHICLES = load_catalog().all_vehicles()


@pytest.mark.parametrize("cycle", SHIPPED_CYCLES)
def test_energy_is_conserved_on_every_cycle(cycle: str) -> None:
    result = simulate(VEHICLES, cycle, keep_traces=True)
    # pack terminals = wheels + e-axle losses + auxiliaries (the 0.1 %)
    assert (result.balance_error < 1e-3).all()
    # wheels: what the road load needs = kinetic energy change + drag + rolling resistance
    drive = load_cycle(cycle)
    params = VehicleParams.from_vehicles(VEHICLES)
    v0, v1 = drive.speed_mps[:-1], drive.speed_mps[1:]
    mean = (v0 + v1) / 2
    for i in range(len(VEHICLES)):
        m = params.mass_kg[i]
        kinetic = m * (1 + params.rotating_mass_factor[i]) * (v1**2 - v0**2).sum() / 2
        drag = (0.5 * AIR_DENSITY * params.cda_m2[i] * mean**3).sum()
        rolling = ((m * GRAVITY * params.crr[i] + params.linear_n_per_mps[i] * mean) * mean * (mean > 0.01)).sum()
        wheel = result.traces["wheel_power_w"][i].sum()
        assert wheel == pytest.approx(kinetic + drag + rolling, rel=1e-9)
        # pack: chemical energy = terminal energy + heat in the internal resistance
        assert result.pack_heat_kwh[i] > 0
        assert np.isfinite(result.traces["soc"][i]).all()


def test_one_vehicle_and_many_agree() -> None:
    alone = simulate(VEHICLES[:1], "udds")
    together = simulate(VEHICLES, "udds")
    assert alone.terminal_kwh[0] == pytest.approx(together.terminal_kwh[0], rel=1e-12)
    assert alone.soc_final[0] == pytest.approx(together.soc_final[0], rel=1e-12)


def test_real_time_steps_reproduce_the_batch_run() -> None:
    batch = simulate(VEHICLES[:1], "udds", soc_start=0.9)
    twin = TwinRuntime(VEHICLES[0], "udds", soc_start=0.9)
    for _ in range(int(load_cycle("udds").duration_s)):
        twin.step(1.0)
    assert twin.state["soc"] == pytest.approx(batch.soc_final[0], abs=1e-9)
    values = twin.vss_values()
    assert set(values) >= {"Vehicle.Speed", "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"}


def test_an_undersized_e_axle_records_the_shortfall_and_keeps_going() -> None:
    params = VehicleParams.from_vehicles(VEHICLES[:1]).with_changes(
        peak_power_w=np.array([[15_000.0, 15_000.0]])
    )
    with pytest.warns(
        ShortfallWarning, match=r"nissan-leaf-40: could not deliver the hwfet trace at t=\d+ s"
    ):
        result = simulate(params, "hwfet")
    assert result.shortfall_kwh[0] > 0 and result.first_shortfall_s[0] > 0
    assert np.isfinite(result.terminal_kwh).all() and np.isfinite(result.traces["soc"]).all()


def test_a_pack_current_limit_is_a_shortfall_not_nan() -> None:
    params = VehicleParams.from_vehicles(VEHICLES[:1]).with_changes(max_discharge_a=20.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        result = simulate(params, "udds")
    assert result.shortfall_kwh[0] > 0
    assert result.traces["current_a"][0].max() <= 20.0 + 1e-9
    assert np.isfinite(result.traces["voltage_v"]).all()


def test_heavier_variants_use_more_energy() -> None:
    params = VehicleParams.from_vehicles(VEHICLES[:1]).repeat(5)
    params = params.with_changes(mass_kg=np.linspace(1400, 2200, 5))
    result = simulate(params, "udds", keep_traces=False)
    assert (np.diff(result.wh_per_km) > 0).all()


def test_e_axles_derate_with_pack_voltage() -> None:
    base = VehicleParams.from_vehicles(VEHICLES[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ShortfallWarning)
        normal = simulate(base, "hwfet")
        # a tenth of the limit at nominal voltage, then a pack below the inverter's window
        sagging = simulate(base.with_changes(nominal_voltage_v=base.nominal_voltage_v * 10), "hwfet")
        dead = simulate(base.with_changes(inverter_min_voltage_v=1000.0), "hwfet")
    assert normal.shortfall_kwh[0] < 1e-9
    assert 0 < sagging.shortfall_kwh[0] < dead.shortfall_kwh[0]
    assert dead.terminal_kwh[0] < 0.1 * normal.terminal_kwh[0]  # only auxiliaries drew power
    assert np.isfinite(dead.traces["voltage_v"]).all()
