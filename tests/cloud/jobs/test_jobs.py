"""Fleet jobs give the same results in this process and on a local Ray: the director's signed
targets for a campaign stage (which the cars then verify and install), the fleet's state of
health measured from stored telemetry, twin sweeps over every allowed pack and e-axle, and the
plans of many charging sites."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.tariff import time_of_use
from opensdv.cloud.jobs.fleet_health import CURRENT, SOC, VOLTAGE, HealthJob, fleet_health
from opensdv.cloud.jobs.runner import InProcess, RayRunner, chunks, runner_for
from opensdv.cloud.jobs.sweeps import SitePlanJob, SweepJob, plan_sites, twin_sweep
from opensdv.cloud.ota.campaigns import CampaignSpec, Targeting
from opensdv.cloud.telemetry.store import TelemetryStore, TelemetryStoreError
from opensdv.link.fleet import Sample, TelemetryBatch
from opensdv.model.vehicles import load_catalog
from opensdv.physics import VehicleParams, load_cycle, simulate
from opensdv.physics.combinations import allowed_combinations
from tests.ota_world import INVERTERS, make_world

DEFINITIONS = ["nissan-leaf-40", "honda-e-advance", "mitsubishi-ek-x-ev", "nissan-sakura"]


@pytest.fixture(scope="module")
def ray_runner() -> Iterator[RayRunner]:
    pytest.importorskip("ray")
    runner = RayRunner(workers=2)
    yield runner
    runner.shutdown()


@given(st.lists(st.integers(), max_size=60), st.integers(min_value=1, max_value=20))
def test_chunks_keep_every_item_in_order_and_none_is_empty(items: list[int], count: int) -> None:
    pieces = chunks(items, count)
    assert [i for piece in pieces for i in piece] == items
    assert all(pieces) and len(pieces) <= count
    assert not pieces or max(map(len, pieces)) - min(map(len, pieces)) <= 1
    assert runner_for(None).map(sum, pieces) == [sum(piece) for piece in pieces]  # no address: in process


def test_the_director_signs_a_stage_on_ray_as_it_does_here(tmp_path: Path, ray_runner: RayRunner) -> None:
    worlds = [make_world(tmp_path / "here"), make_world(tmp_path / "ray")]
    worlds[1].backend.campaigns.runner = ray_runner
    spec = CampaignSpec(id="inverters-24", image="eaxle/inverter-2.4.0.bin", stages=[50, 100], mode="forced",
                        target=Targeting(brands=["Nissan", "Honda"]))  # fmt: skip
    for world in worlds:
        for serial in range(1, 9):
            world.add_vehicle(DEFINITIONS[serial % 4], serial)
        world.add_image("eaxle/inverter-2.4.0.bin", "2.4.0", 24, INVERTERS)
        world.backend.campaigns.create(spec)
    here, ray = (w.backend for w in worlds)
    assert here.campaigns.vehicles(spec.id) == ray.campaigns.vehicles(spec.id)
    statuses = [status for _vin, _stage, status, _ in ray.campaigns.vehicles(spec.id)]
    assert sorted(statuses) == ["assigned"] * 3 + ["excluded"] * 2 + ["pending"] * 3  # 6 eligible, half first
    for backend in (here, ray):
        backend.campaigns.advance(spec.id)
    assert here.campaigns.vehicles(spec.id) == ray.campaigns.vehicles(spec.id)
    assigned = [vin for vin, _stage, status, _ in ray.campaigns.vehicles(spec.id) if status == "assigned"]
    assert len(assigned) == 6
    for vin in worlds[0].vehicles:
        assert here.director.instructions(vin) == ray.director.instructions(vin)
    for vin in assigned:  # what Ray signed, each car verifies (its own Uptane checks) and installs
        outcome = worlds[1].vehicles[vin].update()
        assert outcome.status == "installed", outcome


def _telemetry(store: TelemetryStore, vin: str, definition: str, soh: float) -> None:
    """A drive of the car's twin with its pack at ``soh``, stored as the car's batches would be."""
    vehicle = load_catalog().vehicle(definition)
    base = VehicleParams.from_vehicles([vehicle])
    params = base.with_changes(capacity_ah=base.capacity_ah * soh)
    traces = simulate(params, load_cycle("udds"), soc_start=0.9, keep_traces=True).traces
    start = time.time() - 3 * 3600
    batches = [
        TelemetryBatch(vin=vin, seq=n, samples=[
            Sample(path=CURRENT, value=-float(traces["current_a"][0][n]), ts=start + n),  # VSS: + charges
            Sample(path=VOLTAGE, value=float(traces["voltage_v"][0][n]), ts=start + n),
            Sample(path=SOC, value=float(traces["soc"][0][n]) * 100, ts=start + n),
        ])
        for n in range(traces["soc"].shape[1])
    ]  # fmt: skip
    store.add_many(batches, start)


def test_fleet_health_on_ray_equals_in_process(tmp_path: Path, ray_runner: RayRunner) -> None:
    store = TelemetryStore(tmp_path / "t.duckdb")
    cars = [(f"JN1NSSAN0DD{n:06d}", DEFINITIONS[n % 4]) for n in range(1, 9)]
    for (vin, definition), soh in zip(cars, np.linspace(0.75, 0.98, len(cars)), strict=True):
        _telemetry(store, vin, definition, float(soh))
    store.close()  # the pieces open the file themselves
    job = HealthJob(tmp_path / "t.duckdb", cars, time.time() - 4 * 3600, time.time())
    here = fleet_health(InProcess(), job, pieces=3)
    ray = fleet_health(ray_runner, job, pieces=3)
    assert here == ray and set(here) == {vin for vin, _ in cars}
    measured = [here[vin].soh for vin, _ in cars]
    assert all(s is not None for s in measured)
    assert np.allclose(measured, np.linspace(0.75, 0.98, len(cars)), atol=0.03)  # the packs as aged


def test_twin_sweeps_and_site_plans_on_ray_equal_in_process(ray_runner: RayRunner) -> None:
    cars = [(f"JN1NSSAN0DD{n:06d}", DEFINITIONS[n % 4]) for n in range(1, 13)]
    job = SweepJob(cars)
    here, ray = twin_sweep(InProcess(), job, pieces=3), twin_sweep(ray_runner, job, pieces=3)
    assert here == ray and set(here) == {vin for vin, _ in cars}
    catalog = load_catalog()
    for vin, model in cars:  # every allowed standard choice, each with a range the twin drove
        assert len(here[vin]) == len(allowed_combinations(catalog.vehicle(model), catalog)) > 0
        assert all(0 < choice.range_km < 1000 for choice in here[vin])

    rng = np.random.default_rng(3)
    sites = [
        SitePlanJob(f"site-{k}", [
            Session(f"car-{k}-{n}", f"CS-{n}", arrival=int(a), departure=int(a) + 40, kwh_requested=20.0, max_kw=11.0)
            for n, a in enumerate(rng.integers(0, 50, 8))
        ], slots=96, slot_h=0.25, cap_kw=30.0, tariff=time_of_use(96, 15.0, start_hour=18.0))
        for k in range(6)
    ]  # fmt: skip
    planned_here, planned_ray = plan_sites(InProcess(), sites, pieces=3), plan_sites(ray_runner, sites, pieces=3)
    assert sorted(planned_here) == sorted(planned_ray) == [f"site-{k}" for k in range(6)]
    for site in planned_here:
        assert np.allclose(planned_here[site].power_kw, planned_ray[site].power_kw)
        assert planned_here[site].site_kw.max() <= 30.0 + 1e-6  # each site under its own cap


def test_the_jobs_run_from_the_command_line_on_ray_as_here(tmp_path: Path, ray_runner: RayRunner) -> None:
    """``opensdv cloud job health|sweep`` over the cloud's own registry and telemetry store: the same
    answers in this process and on Ray (``--ray-address auto`` joins the Ray already running); the
    DuckDB file held by a writer is refused with the way out, not a traceback."""
    import json

    from typer.testing import CliRunner

    from opensdv.cli import app
    from opensdv.cloud.fleet.registry import VehicleRegistry
    from opensdv.storage import Database

    config, url = tmp_path / "cloud.toml", f"sqlite:///{tmp_path / 'opensdv.db'}"
    config.write_text(f'database_url = "{url}"\n[cloud]\ntelemetry_file = "{tmp_path / "telemetry.duckdb"}"\n')
    database = Database(url)
    database.migrate()
    registry, catalog = VehicleRegistry(database), load_catalog()
    store = TelemetryStore(tmp_path / "telemetry.duckdb")
    cars = [(f"JN1NSSAN0DD{n:06d}", DEFINITIONS[n % 4]) for n in range(1, 5)]
    for (vin, definition), soh in zip(cars, (0.8, 0.85, 0.9, 0.95), strict=True):
        registry.register(vin, catalog.vehicle(definition), catalog.vehicle(definition).definition.markets[0])
        _telemetry(store, vin, definition, soh)
    cli = CliRunner()
    held = cli.invoke(app, ["cloud", "job", "health", "--config", str(config)])  # the writer still has it
    assert isinstance(held.exception, TelemetryStoreError), held.output  # the entry point: one line, status 2
    assert "cannot open the telemetry file" in str(held.exception) and "PostgreSQL" in str(held.exception)
    store.close()
    answers = {}
    for where in ([], ["--ray-address", "auto"]):
        out = tmp_path / f"health{len(where)}.json"
        result = cli.invoke(app, ["cloud", "job", "health", "--config", str(config), "--out", str(out), *where])
        assert result.exit_code == 0, result.output
        answers[len(where)] = json.loads(out.read_text())
    assert answers[0] == answers[2] and set(answers[0]) == {vin for vin, _ in cars}
    assert [round(answers[0][vin]["soh"], 2) for vin, _ in cars] == pytest.approx([0.8, 0.85, 0.9, 0.95], abs=0.03)
    assert "on Ray" in result.output

    out = tmp_path / "choices.json"
    result = cli.invoke(app, ["cloud", "job", "sweep", "--config", str(config), "--brand", "Nissan", "--out", str(out)])
    assert result.exit_code == 0, result.output
    choices = json.loads(out.read_text())
    assert set(choices) == {vin for vin, model in cars if model.startswith("nissan")}
    assert all(c["range_km"] > 0 for found in choices.values() for c in found)
