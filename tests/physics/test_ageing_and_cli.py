"""Ageing projections and the twin commands."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from opensdv.cli import app
from opensdv.model import load_catalog
from opensdv.model.components import Chemistry
from opensdv.physics import AgeingProfile, age, wear_cost_per_kwh

CATALOG = load_catalog()


def test_state_of_health_falls_and_heat_ages_faster() -> None:
    leaf = CATALOG.vehicle("nissan-leaf-40")
    mild = age(leaf, 8, AgeingProfile(ambient_c=15), 170)
    hot = age(leaf, 8, AgeingProfile(ambient_c=35), 170)
    assert (np.diff(mild.state_of_health) <= 0).all()
    assert mild.state_of_health[0] == 1.0
    assert 0.70 < mild.state_of_health[-1] < 0.95
    assert hot.state_of_health[-1] < mild.state_of_health[-1]
    assert (mild.resistance_factor >= 1).all()


def test_lfp_outlasts_nmc_for_the_same_use() -> None:
    profile = AgeingProfile(daily_km=60, ambient_c=25)
    nmc = age(CATALOG.vehicle("honda-e-advance"), 10, profile, 170)
    lfp = age(CATALOG.vehicle("mitsubishi-ek-x-ev"), 10, profile, 150)
    assert lfp.state_of_health[-1] > nmc.state_of_health[-1]


def test_bad_profiles() -> None:
    with pytest.raises(ValueError, match="charge_target_soc"):
        AgeingProfile(charge_target_soc=1.5)
    with pytest.raises(ValueError, match="daily_km"):
        AgeingProfile(daily_km=-1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["twin", "run", "honda-e-advance", "--cycle", "wltc_class3b", "--plot", "run.png"], "consumption"),
        (["twin", "range", "mitsubishi-ek-x-ev"], "Japan WLTC"),
        (["twin", "compare", "nissan-sakura", "mitsubishi-ek-x-ev", "--cycle", "wltc_japan"], "Wh/km"),
        (["twin", "age", "nissan-leaf-40", "--years", "3", "--plot", "age.png"], "state of health"),
    ],
)
def test_twin_commands(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert expected in result.output
    for name in ("run.png", "age.png"):
        if name in args:
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_twin_range_covers_every_allowed_combination() -> None:
    result = CliRunner().invoke(app, ["twin", "range"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert result.output.count("with") >= 3  # standard packs and e-axles offered to other models


def test_the_wear_cost_of_throughput_follows_the_ageing_models_cycle_fade() -> None:
    """NMC wears faster per cycle than LFP; the cost scales with the pack price and with how much
    fade the pack may take; one full shallow cycle of an NMC pack priced at USD 115/kWh."""
    nmc, lfp = wear_cost_per_kwh(Chemistry.NMC), wear_cost_per_kwh(Chemistry.LFP)
    # 1.3e-4 fade per full cycle x (0.7 + 0.6 x 0.3) depth stress, over 30 % fade, shared by 2 kWh
    assert nmc == pytest.approx(115 * 1.3e-4 * 0.88 / 0.3 / 2)
    assert lfp < nmc / 2
    assert wear_cost_per_kwh(Chemistry.NMC, pack_price_per_kwh=230) == pytest.approx(2 * nmc)
    assert wear_cost_per_kwh(Chemistry.NMC, end_of_life_soh=0.85) == pytest.approx(2 * nmc)
    assert wear_cost_per_kwh(Chemistry.NMC, ambient_c=40) > nmc  # warm packs wear faster
    with pytest.raises(ValueError, match="end_of_life_soh"):
        wear_cost_per_kwh(Chemistry.NMC, end_of_life_soh=1.0)
