"""Fleet jobs in one process against a local Ray with 1 and 2 workers, on this machine's cores.

    python -m bench.jobs [--vehicles 1000] [--cars 10000] [--runs 3]

- director: a campaign stage to ``--vehicles`` enrolled cars (each its own director repository:
  targets, snapshot and timestamp signed per car). Vehicle targets per second from the campaign's
  creation to its last car's metadata, median of ``--runs`` (each on a fresh copy of one enrolled
  fleet, synced to disk before the clock starts). In-process and Ray runs take turns, and each Ray
  figure's ratio is to the in-process runs beside it.
- fleet state of health: ``--cars`` cars' packs measured from ten minutes of their own stored
  telemetry (current, voltage, state of charge each second, 18 million samples for 10,000 cars
  in a DuckDB file), the same job in-process and as Ray tasks; the answers are compared too.

Ray's own start (a few seconds) is not counted; its task dispatch and result transfer are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.jobs.fleet_health import CURRENT, SOC, VOLTAGE, HealthJob, fleet_health
from opensdv.cloud.jobs.runner import InProcess, JobRunner, RayRunner
from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.campaigns import CampaignSpec
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.model.vehicles import load_catalog
from opensdv.physics import VehicleParams, load_cycle, simulate
from opensdv.storage import Database
from opensdv.vehicle.ota.setup import ecu_key

console = Console()
INVERTER = "KDS-INV-110-400-B"
WINDOW_S = 600


def _vin(n: int) -> str:
    return f"JN1JBS000AA{n:06d}"


def _director_world(path: Path, vehicles: int) -> None:
    """``vehicles`` Nissan Leafs enrolled for OTA (each with its director repository) and an image."""
    database = Database(f"sqlite:///{path / 'ota.db'}")
    database.migrate()
    backend = OtaBackend(path / "cloud", database)
    backend.initialise()
    leaf = load_catalog().vehicle("nissan-leaf-40")
    registry = VehicleRegistry(database)
    for n in range(vehicles):
        vin = _vin(n)
        registry.register(vin, leaf, leaf.definition.markets[0])
        keys = {name: ecu_key(path / "keys" / f"{vin}-{name}").public_key for name in leaf.ecus}
        backend.enrol(vin, keys, "TCU")
    backend.images.add_image("eaxle/inverter-2.4.0.bin", b"x" * 4096, [INVERTER], "2.4.0", 24)
    database.close()


def _director_rate(world: Path, vehicles: int, runner: JobRunner | None) -> float:
    """One campaign stage on a fresh copy of ``world``, timed from a clean disk (nothing left to
    write back from making the copy)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(world, Path(tmp), dirs_exist_ok=True)
        database = Database(f"sqlite:///{Path(tmp) / 'ota.db'}")
        backend = OtaBackend(Path(tmp) / "cloud", database)
        backend.campaigns.runner = runner
        os.sync()
        started = time.perf_counter()
        progress = backend.campaigns.create(
            CampaignSpec(id="inverters", image="eaxle/inverter-2.4.0.bin", stages=[100], mode="forced")
        )
        elapsed = time.perf_counter() - started
        assert progress.counts == {"assigned": vehicles}, progress
        database.close()
        return vehicles / elapsed


def _fleet_telemetry(path: Path, cars: int) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Every car's ten minutes of UDDS with a pack aged to its own state of health, stored."""
    leaf = load_catalog().vehicle("nissan-leaf-40")
    soh = np.random.default_rng(1).uniform(0.75, 1.0, cars)
    base = VehicleParams.from_vehicles([leaf]).repeat(cars)
    cycle = load_cycle("udds")
    traces = simulate(base.with_changes(capacity_ah=base.capacity_ah * soh), cycle, soc_start=0.9, keep_traces=True).traces
    steps = min(WINDOW_S, traces["soc"].shape[1])
    start = time.time() - 3600
    store = TelemetryStore(path)
    vins = [_vin(n) for n in range(cars)]
    stamps = start + np.arange(steps, dtype=float)
    for block in range(0, cars, 500):
        rows = np.arange(block, min(block + 500, cars))
        for signal, values in ((CURRENT, -traces["current_a"]), (VOLTAGE, traces["voltage_v"]), (SOC, traces["soc"] * 100)):
            count = len(rows) * steps
            table = pa.table({
                "vin": pa.array(np.repeat(np.array(vins, dtype=object)[rows], steps), pa.string()),
                "seq": pa.array(np.tile(np.arange(steps), len(rows)), pa.int64()),
                "path": pa.array([signal] * count, pa.string()),
                "ts": pa.array(np.tile(stamps, len(rows)), pa.float64()),
                "num": pa.array(values[rows, :steps].ravel(), pa.float64()),
                "other": pa.nulls(count, pa.string()),
            })  # fmt: skip
            store._insert_table("INSERT INTO samples SELECT * FROM incoming", table)  # bulk, as a backfill would
    store.close()
    return [(v, leaf.id) for v in vins], soh


def _timed(run: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs")
    parser.add_argument("--vehicles", type=int, default=1000, help="cars in the director's campaign")
    parser.add_argument("--cars", type=int, default=10_000, help="cars in the fleet state-of-health job")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"director": {}, "health": {}}
    inline: dict[str, list[float]] = {}  # the in-process director runs interleaved with each Ray session
    with tempfile.TemporaryDirectory() as tmp:
        with console.status(f"{args.cars:,} cars' telemetry into DuckDB"):
            cars, soh = _fleet_telemetry(Path(tmp) / "fleet.duckdb", args.cars)
        job = HealthJob(Path(tmp) / "fleet.duckdb", cars, time.time() - 2 * 3600, time.time())
        world = Path(tmp) / "director"
        with console.status(f"{args.vehicles:,} cars enrolled for OTA"):
            _director_world(world, args.vehicles)
        with console.status("fleet state of health, in-process"):
            results["health"]["in-process"] = _timed(lambda: fleet_health(InProcess(), job, 2), args.runs)
        for name, workers in (("Ray, 1 worker", 1), ("Ray, 2 workers", 2)):
            runner = RayRunner(workers=workers)
            rates, inline[name] = [], []
            for run in range(args.runs):  # in turn, so both sides see the same state of the machine
                with console.status(f"director, in-process and {name}, run {run + 1}/{args.runs}"):
                    inline[name].append(_director_rate(world, args.vehicles, None))
                    rates.append(_director_rate(world, args.vehicles, runner))
            results["director"][name] = statistics.median(rates)
            with console.status(f"fleet state of health, {name}"):
                pieces = 4 * workers
                results["health"][name] = _timed(lambda runner=runner, pieces=pieces: fleet_health(runner, job, pieces), args.runs)
            runner.shutdown()
    results["director"] = {"in-process": statistics.median([r for runs in inline.values() for r in runs]), **results["director"]}
    ratios = {name: results["director"][name] / statistics.median(runs) for name, runs in inline.items()}
    baseline = results["health"]["in-process"][1]
    measured = np.array([baseline[vin].soh for vin, _ in cars], dtype=float)
    error = float(np.sqrt(np.nanmean((measured - soh) ** 2)) * 100)
    for name, runs in inline.items():
        console.print(f"director in-process beside {name}: {', '.join(f'{r:.0f}' for r in runs)} targets/s "
                      f"(median {statistics.median(runs):.0f}; the ratio is to it)")  # fmt: skip
    table = Table("runs on", "director targets/s", "ratio", f"fleet SoH, {args.cars:,} cars, s", "ratio", "same answers",
                  title=f"fleet jobs on {len(cars):,} cars (SoH RMSE against the simulated packs {error:.2f} points)")  # fmt: skip
    for name in results["director"]:
        seconds, health = results["health"][name]
        table.add_row(
            name, f"{results['director'][name]:.0f}", f"{ratios.get(name, 1.0):.2f}",
            f"{seconds:.1f}", f"{results['health']['in-process'][0] / seconds:.2f}", "yes" if health == baseline else "NO",
        )  # fmt: skip
    console.print(table)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
