"""Smart charging against Caltech's ACN-Sim (acnportal) on the same real sessions, and planning speed.

    python -m bench.energy [--caps 20,50,125] [--skip-acnportal] [--speed-only] [--repeats 3] [--plot PNG]

1. The 954 sessions of March 2019 at Caltech (``../shared/data/acn``), 5-minute slots, 6.6 kW
   chargers, under each site cap: energy delivered, peak, cost under a time-of-use tariff (USD
   0.12/0.40 per kWh off-peak/16-21 h, USD 15/kW demand charge). acnportal's own algorithms
   (uncontrolled, earliest deadline first, least laxity first, round robin) run in its simulator on
   its serialized event queue, with one site constraint (the cap, at 208 V); ours is the optimal LP
   (HiGHS), and again with half the cars V2G-capable (wear USD 0.02/kWh of throughput).
2. Speed: 1,000 and 10,000 V2G cars x 96 slots (a day in 15 minutes), each with its own battery
   window; re-planning 1,000 cars after one arrival. The network simplex (the default) against the
   same programme as an LP in HiGHS, the baseline. Each in a fresh process, for its peak memory;
   1,000 cars ``--repeats`` times, 10,000 cars ``--large-repeats`` times (medians).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import resource
import subprocess
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from opensdv.cloud.energy import Session, load_sessions, plan, time_of_use, with_v2g
from opensdv.cloud.energy.planning.network_planner import NetworkPlanner
from opensdv.cloud.energy.planning.optimiser import RollingPlanner
from opensdv.cloud.energy.planning.tariff import Tariff

console = Console()
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "acn"
SLOT_MINUTES = 5
VOLTAGE = 208


def acnportal_run(algorithm: str, cap_kw: float) -> np.ndarray:
    """acnportal's simulator on its own event queue; returns the site power (kW) per slot."""
    warnings.simplefilter("ignore")
    from acnportal import acnsim, algorithms

    with gzip.open(DATA / "caltech_2019-03_events_acnportal.json.gz") as handle:
        text = json.loads(handle.read().decode())  # acnportal serialized its queue as a JSON string
    events = acnsim.EventQueue.from_json(text)
    stations = sorted({event.ev.station_id for _, event in events._queue if hasattr(event, "ev")})
    network = acnsim.ChargingNetwork()
    for station in stations:
        network.register_evse(acnsim.EVSE(station, max_rate=32), VOLTAGE, 0)
    network.add_constraint(acnsim.Current(stations), cap_kw * 1000 / VOLTAGE, name="site")
    scheduler = {
        "uncontrolled": lambda: algorithms.UncontrolledCharging(),
        "earliest deadline first": lambda: algorithms.SortedSchedulingAlgo(
            algorithms.earliest_deadline_first
        ),
        "least laxity first": lambda: algorithms.SortedSchedulingAlgo(algorithms.least_laxity_first),
        "round robin": lambda: algorithms.RoundRobin(algorithms.earliest_deadline_first),
    }[algorithm]()
    simulator = acnsim.Simulator(
        network, scheduler, events, datetime(2019, 3, 1, tzinfo=UTC), period=SLOT_MINUTES, verbose=False
    )
    simulator.run()
    return np.asarray(acnsim.aggregate_power(simulator), dtype=np.float64)


def comparison(caps: list[float], with_acnportal: bool) -> list[dict[str, Any]]:
    sessions = load_sessions(DATA / "caltech_2019-03_sessions.csv")
    requested = sum(s.kwh_requested for s in sessions)
    slots = max(s.departure for s in sessions) + 1
    tariff = time_of_use(slots, SLOT_MINUTES)
    slot_h = SLOT_MINUTES / 60
    rows: list[dict[str, Any]] = []
    names = ["earliest deadline first", "least laxity first", "round robin"] if with_acnportal else []
    ours = (("OpenSDV optimal", sessions), ("OpenSDV optimal, 50 % V2G", with_v2g(sessions, 0.5)))
    uncontrolled = None
    for cap in caps:
        for label, chosen in ours:
            s = plan(
                chosen, slots=slots, slot_h=slot_h, site_cap_kw=cap, tariff=tariff, wear_cost_per_kwh=0.02
            )
            row = {
                "cap": cap,
                "schedule": label,
                "delivered": s.delivered_share,
                "peak": s.peak_kw,
                "cost": s.cost,
                "exported": s.exported_kwh,
            }
            rows.append(_report({**row, "seconds": s.solve_s}))
        for name in names:
            started = time.perf_counter()
            power = acnportal_run(name, cap)
            rows.append(
                _report(
                    _acn_row(
                        cap,
                        f"acnportal {name}",
                        power,
                        tariff,
                        slot_h,
                        requested,
                        time.perf_counter() - started,
                    )
                )
            )
        if with_acnportal and uncontrolled is None:
            started = time.perf_counter()
            uncontrolled = (acnportal_run("uncontrolled", cap), time.perf_counter() - started)
        if uncontrolled is not None:
            label = "acnportal uncontrolled (ignores the cap)"
            rows.append(
                _report(_acn_row(cap, label, uncontrolled[0], tariff, slot_h, requested, uncontrolled[1]))
            )
    return rows


def _report(row: dict[str, Any]) -> dict[str, Any]:
    """Print a row as soon as it is measured (a long run loses nothing if it is stopped)."""
    console.log(f"cap {row['cap']:g} kW  {row['schedule']}: delivered {row['delivered'] * 100:.2f} %, peak {row['peak']:.1f} kW, "
                f"cost {row['cost']:,.0f}, V2G {row['exported']:,.0f} kWh, {row['seconds']:.1f} s")  # fmt: skip
    return row


def _acn_row(
    cap: float, name: str, power: np.ndarray, tariff: Tariff, slot_h: float, requested: float, seconds: float
) -> dict[str, Any]:
    padded = np.zeros(len(tariff.energy_price))
    padded[: min(len(power), len(padded))] = power[: len(padded)]
    return {"cap": cap, "schedule": name, "delivered": power.sum() * slot_h / requested, "peak": float(power.max()),
            "cost": tariff.cost(padded, slot_h), "exported": 0.0, "seconds": seconds}  # fmt: skip


def plot_comparison(
    rows: list[dict[str, Any]],
    path: Path,
    title: str = "Caltech ACN, March 2019 (954 sessions): OpenSDV's optimum against acnportal's algorithms",
) -> Path:
    """Delivered energy and cost per cap, every schedule side by side (the table as a picture)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    caps = sorted({r["cap"] for r in rows})
    names = list(dict.fromkeys(r["schedule"] for r in rows))
    width = 0.8 / len(names)
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for k, name in enumerate(names):
        by_cap = {r["cap"]: r for r in rows if r["schedule"] == name}
        x = np.arange(len(caps)) + (k - (len(names) - 1) / 2) * width
        for axis, key, scale in ((axes[0], "delivered", 100), (axes[1], "cost", 1)):
            values = [by_cap[c][key] * scale if c in by_cap else np.nan for c in caps]
            axis.bar(x, values, width, label=name)
    for axis, label in ((axes[0], "energy delivered [%]"), (axes[1], "cost [USD], time-of-use + demand charge")):
        axis.set_xticks(np.arange(len(caps)), [f"{c:g} kW" for c in caps])
        axis.set_xlabel("site cap")
        axis.set_ylabel(label)
    axes[0].set_ylim(80, 101)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, fontsize=8, loc="lower center", ncol=3, frameon=False)
    figure.suptitle(title)
    figure.tight_layout(rect=(0, 0.08 + 0.035 * ((len(names) - 1) // 3), 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def synthetic(cars: int, seed: int = 1) -> tuple[list[Session], Tariff]:
    """A day of 96 quarter-hours; every car V2G-capable with its own battery window."""
    rng = np.random.default_rng(seed)
    arrival = rng.integers(0, 60, cars)
    stay = rng.integers(8, 40, cars)
    sessions = [
        Session(f"ev{i}", f"st{i}", int(a), int(min(a + s, 96)), float(rng.uniform(5, 40)), 11.0,
                max_discharge_kw=11.0, capacity_kwh=75.0, arrival_soc=float(rng.uniform(0.2, 0.4)), min_soc=0.2)
        for i, (a, s) in enumerate(zip(arrival, stay, strict=True))
    ]  # fmt: skip
    return sessions, time_of_use(96, 15, start_hour=6)


def _peak_rss_mb() -> float:
    """This process's peak resident memory. Linux's ru_maxrss also counts the parent's before the
    exec (a big parent, such as one that ran acnportal, shows in every child), so VmHWM first."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speed(cars: int, method: str) -> dict[str, Any]:
    sessions, tariff = synthetic(cars)
    cap = cars * 4.0  # kW: a constrained site
    started = time.perf_counter()
    planner = (NetworkPlanner if method == "network" else RollingPlanner)(
        sessions, slots=96, slot_h=0.25, site_cap_kw=cap, tariff=tariff, wear_cost_per_kwh=0.02
    )
    first = planner.solve()
    result: dict[str, Any] = {"cars": cars, "method": method, "plan_s": time.perf_counter() - started,
                              "cost": first.cost, "delivered_kwh": float(first.delivered_kwh.sum())}  # fmt: skip
    if cars <= 1000:  # model-predictive re-planning after one arrival at slot 30 (warm start)
        late = Session(
            "late",
            "st-late",
            30,
            70,
            20.0,
            11.0,
            max_discharge_kw=11.0,
            capacity_kwh=75.0,
            arrival_soc=0.3,
            min_soc=0.2,
        )
        started = time.perf_counter()
        planner.add_arrival(late, now=30)
        replanned = planner.solve()
        result["replan_s"] = time.perf_counter() - started
        result["replan_cost"] = replanned.cost
    result["peak_rss_mb"] = _peak_rss_mb()
    return result


def speed_runs(repeats: int, large_repeats: int) -> list[dict[str, Any]]:
    """Every (cars, method) in fresh processes; medians over ``repeats`` runs at 1,000 cars and
    ``large_repeats`` at 10,000."""
    cases = [(cars, method) for cars in (1000, 10000) for method in ("network", "lp")]
    runs: list[dict[str, Any]] = []
    for cars, method in track(cases, description="planning speed", console=console):
        times = []
        for _ in range(repeats if cars <= 1000 else large_repeats):
            output = subprocess.run(
                [sys.executable, "-m", "bench.energy", "--speed", str(cars), "--method", method],
                capture_output=True,
                text=True,
                check=True,
            )
            times.append(json.loads(output.stdout.strip().splitlines()[-1]))
        row = times[0] | {
            key: float(np.median([t[key] for t in times]))
            for key in ("plan_s", "replan_s")
            if key in times[0]
        }
        runs.append(row | {"runs": len(times), "peak_rss_mb": max(t["peak_rss_mb"] for t in times)})
    return runs


def speed_table(runs: list[dict[str, Any]]) -> Table:
    table = Table(title="Planning speed: V2G cars x 96 slots, one process each (medians)")
    for column in (
        "cars",
        "solver",
        "runs",
        "plan s",
        "x vs LP",
        "re-plan s",
        "x vs LP",
        "cost",
        "peak RSS MB",
        "target",
    ):
        table.add_column(column, justify="right")
    lp = {r["cars"]: r for r in runs if r["method"] == "lp"}
    for r in runs:
        base = lp[r["cars"]]
        ratio = f"{base['plan_s'] / r['plan_s']:.1f}"
        replan = f"{r['replan_s']:.3f}" if "replan_s" in r else ""
        replan_ratio = f"{base['replan_s'] / r['replan_s']:.1f}" if "replan_s" in r else ""
        target = "<= 2 s, re-plan <= 0.2 s" if r["cars"] <= 1000 else "<= 30 s"
        table.add_row(f"{r['cars']:,}", r["method"], str(r["runs"]), f"{r['plan_s']:.2f}", ratio, replan, replan_ratio,
                      f"{r['cost']:,.2f}", f"{r['peak_rss_mb']:.0f}", target)  # fmt: skip
    return table


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.energy", description=__doc__.split("\n")[0])
    parser.add_argument("--caps", default="20,50,125")
    parser.add_argument("--skip-acnportal", action="store_true")
    parser.add_argument("--speed-only", action="store_true", help="only the planning-speed table")
    parser.add_argument("--repeats", type=int, default=3, help="runs per solver at 1,000 cars")
    parser.add_argument("--large-repeats", type=int, default=1, help="runs per solver at 10,000 cars")
    parser.add_argument("--plot", type=Path, help="save the comparison as a PNG here")
    parser.add_argument("--speed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--method", default="network", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.speed:
        print(json.dumps(speed(args.speed, args.method)))
        return {}
    rows: list[dict[str, Any]] = []
    if not args.speed_only:
        rows = comparison([float(c) for c in args.caps.split(",")], not args.skip_acnportal)
        table = Table(title="Caltech ACN, March 2019: 954 sessions, 5-minute slots")
        for column in ("cap kW", "schedule", "delivered %", "peak kW", "cost USD", "V2G kWh", "run s"):
            table.add_column(column, justify="left" if column == "schedule" else "right")
        for row in rows:
            table.add_row(f"{row['cap']:g}", row["schedule"], f"{row['delivered'] * 100:.2f}", f"{row['peak']:.1f}",
                          f"{row['cost']:,.0f}", f"{row['exported']:,.0f}", f"{row['seconds']:.1f}")  # fmt: skip
        console.print(table)
        if args.plot:
            console.print(f"plot: {plot_comparison(rows, args.plot)}")
    speeds = speed_runs(args.repeats, args.large_repeats)
    console.print(speed_table(speeds))
    return {"rows": rows, "speed": speeds}


if __name__ == "__main__":
    main(sys.argv[1:])
