"""Twin speed: one vehicle, 10,000 variants, real time; FASTSim and PyBaMM anchors in the same run.

    python -m bench.twin [--repeats 7]

- one vehicle on UDDS (batch mode) vs FASTSim simulating its 2016 Leaf on UDDS;
- a 1C discharge of one cell (3,000 s at 1 s) vs PyBaMM's Thevenin model;
- 10,000 vehicle variants on UDDS in one call (the four demo vehicles, masses spread +-10 %),
  time and peak traced memory (tracemalloc);
- real time: CPU time per second of simulated driving at 100 Hz, as a share of one core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
import warnings
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from opensdv.model import load_catalog
from opensdv.physics import VehicleParams, load_cycle, simulate
from opensdv.vehicle.twin import TwinRuntime

console = Console()


def _median_s(work: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> dict[str, float]:
    parser = argparse.ArgumentParser(prog="python -m bench.twin", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--variants", type=int, default=10_000)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    vehicles = load_catalog().all_vehicles()
    udds = load_cycle("udds")
    results: dict[str, float] = {}
    with console.status("measuring ..."):
        simulate(vehicles[:1], udds, keep_traces=False)
        results["one_vehicle_s"] = _median_s(
            lambda: simulate(vehicles[:1], udds, keep_traces=False), args.repeats
        )
        try:
            import fastsim

            fs_vehicle = fastsim.Vehicle.from_resource("2016 Nissan Leaf 30 kWh thrml.yaml")
            fs_cycle = fastsim.Cycle.from_resource("udds.csv")
            results["fastsim_s"] = _median_s(
                lambda: fastsim.SimDrive(fs_vehicle.copy(), fs_cycle.copy()).walk(), args.repeats
            )
        except ImportError:
            results["fastsim_s"] = float("nan")
        from bench.twin_validation import ours, profiles, pybamm_voltage

        module = load_catalog().modules["nmc-pouch-8s2p-56ah"]
        one_c = profiles(module.capacity_ah / module.cells_parallel)["1C discharge"]
        results["cell_1c_s"] = _median_s(lambda: ours(module, one_c, 0.95), args.repeats)
        try:
            results["pybamm_1c_s"] = _median_s(
                lambda: pybamm_voltage(module, one_c, 0.95), max(3, args.repeats // 2)
            )
        except ImportError:
            results["pybamm_1c_s"] = float("nan")
        base = VehicleParams.from_vehicles(vehicles)
        params = base.repeat(args.variants // len(vehicles))
        spread = np.random.default_rng(7).uniform(0.9, 1.1, len(params))
        params = params.with_changes(mass_kg=params.mass_kg * spread)
        started = time.perf_counter()
        batch = simulate(params, udds, keep_traces=False)
        results["batch_s"] = time.perf_counter() - started
        tracemalloc.start()  # a second run for memory: tracing slows allocation down
        simulate(params, udds, keep_traces=False)
        results["batch_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        results["batch_variants"] = float(len(batch.names))
        twin = TwinRuntime(vehicles[0], udds)
        twin.step(0.01)
        steps = 6000  # one minute of driving at 100 Hz
        cpu = time.process_time()
        for _ in range(steps):
            twin.step(0.01)
            twin.vss_values()
        results["realtime_core_share"] = (time.process_time() - cpu) / (steps * 0.01)
    table = Table(title=f"Twin speed (median of {args.repeats})")
    for column in ("measurement", "OpenSDV", "anchor", "target"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    table.add_row(
        "one vehicle on UDDS",
        f"{results['one_vehicle_s'] * 1000:.2f} ms",
        f"FASTSim {results['fastsim_s'] * 1000:.1f} ms",
        "<= 5 ms",
    )
    table.add_row(
        "cell 1C discharge, 3,000 s",
        f"{results['cell_1c_s'] * 1000:.2f} ms",
        f"PyBaMM {results['pybamm_1c_s'] * 1000:.0f} ms",
        "",
    )
    table.add_row(
        f"{int(results['batch_variants']):,} variants on UDDS",
        f"{results['batch_s']:.2f} s, peak {results['batch_peak_mb']:.0f} MB",
        "",
        "<= 10 s",
    )
    table.add_row(
        "real time at 100 Hz", f"{results['realtime_core_share'] * 100:.2f} % of a core", "", "< 5 %"
    )
    console.print(table)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
