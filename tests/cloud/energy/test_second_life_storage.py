"""Second-life modules as site storage: they move energy from cheap hours to the evening peak and
lift a tight site cap, without ever creating energy."""

from __future__ import annotations

import pytest

from opensdv.cloud.energy import plan, time_of_use
from opensdv.cloud.energy.battery.grading import ModuleGrade
from opensdv.cloud.energy.battery.second_life import second_life_storage
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.model.vehicles import load_catalog

TARIFF = time_of_use(96, 15, start_hour=6)
EVENING = [Session(f"car{i}", f"st{i}", 40 + i, 90, 25.0, 11.0) for i in range(6)]  # arrive in the peak


def _storage() -> Session:
    module = load_catalog().vehicle("nissan-leaf-40").pack.module
    graded = [(module, ModuleGrade(i, 0.78, 1.3, "second life", "")) for i in range(12)]
    graded.append((module, ModuleGrade(12, 0.60, 1.8, "recycle", "")))  # not stacked
    return second_life_storage(graded, 96)


def test_storage_is_built_only_from_second_life_modules() -> None:
    storage = _storage()
    module = load_catalog().vehicle("nissan-leaf-40").pack.module
    assert storage.capacity_kwh == pytest.approx(12 * module.energy_kwh * 0.78)
    with pytest.raises(ValueError, match="no module is graded for second life"):
        second_life_storage([(module, ModuleGrade(0, 0.9, 1.1, "stay in vehicle", ""))], 96)


def test_storage_lowers_cost_and_lifts_a_tight_cap_without_creating_energy() -> None:
    storage = _storage()
    without = plan(EVENING, slots=96, slot_h=0.25, site_cap_kw=30, tariff=TARIFF)
    stacked = plan(
        [*EVENING, storage], slots=96, slot_h=0.25, site_cap_kw=30, tariff=TARIFF, wear_cost_per_kwh=0.02
    )
    assert stacked.delivered_kwh[:6].sum() == pytest.approx(without.delivered_kwh.sum())
    assert stacked.cost < without.cost  # bought in the cheap hours, used in the peak
    assert stacked.delivered_kwh[6] >= -1e-6  # the storage ends with at least what it started with

    tight = plan(EVENING, slots=96, slot_h=0.25, site_cap_kw=8, tariff=TARIFF)
    helped = plan([*EVENING, storage], slots=96, slot_h=0.25, site_cap_kw=8, tariff=TARIFF)
    assert helped.delivered_kwh[:6].sum() > tight.delivered_kwh.sum() + 1.0
