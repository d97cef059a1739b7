"""The pack model against PyBaMM's Thevenin model (a development dependency), same parameters."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from bench.twin_validation import ours, profiles, pybamm_voltage

from opensdv.model import load_catalog


@pytest.mark.parametrize("module_id", ["nmc-pouch-8s2p-56ah", "lfp-prismatic-12s1p-60ah"])
@pytest.mark.parametrize("profile", ["1C discharge", "pulses 2C/-1C"])
def test_terminal_voltage_matches_pybamm(module_id: str, profile: str) -> None:
    module = load_catalog().modules[module_id]
    current = profiles(module.capacity_ah / module.cells_parallel)[profile]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyBaMM's own deprecation and extrapolation notices
        reference = pybamm_voltage(module, current, 0.95)
    rmse_mv = float(np.sqrt(np.mean((ours(module, current, 0.95) - reference) ** 2)) * 1000)
    print(f"{module_id} {profile}: RMSE {rmse_mv:.4f} mV")
    assert rmse_mv <= 10.0
