"""The managed site's controller run online on the Caltech month, against acnportal's online
algorithms and the offline optimum.

    python -m bench.energy_online [--caps 20,30,50] [--skip-acnportal] [--horizon-hours 12] [--plot PNG]

What each side knows: a car becomes known when it plugs in, with its departure and energy request
(acnportal's algorithms get the same from its event queue; our controller gets them as ISO 15118
charging needs over OCPP would carry them). Nobody sees future arrivals. The offline optimum sees
the whole month in advance: a bound, not a controller.

Ours is ``SiteController`` itself, unchanged: the cars are open transactions in a CSMS's state,
the clock is moved slot by slot, every slot it re-plans (``plan()``) and the power of the plan's
first slot is what each car gets for five minutes (the meter advances by it). acnportal's
algorithms do not see prices; ours are run with the time-of-use tariff and demand charge, and
again energy-only (one price, no demand charge).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from bench.energy import DATA, SLOT_MINUTES, acnportal_run, plot_comparison
from opensdv.clock import FakeClock
from opensdv.cloud.energy import load_sessions, plan, time_of_use
from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.csms_state import Transaction
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.site_controller import SiteController
from opensdv.cloud.energy.site_file import ManagedSite

console = Console()
EPOCH = datetime(2019, 3, 1, tzinfo=UTC).timestamp()  # slot 0 is hour 0 of the tariff, as in bench.energy
SLOT_S = SLOT_MINUTES * 60
ENERGY_ONLY = {"off_peak_price": 0.2, "peak_price": 0.2, "demand_charge": 0.0}


def _iso(slot: float) -> str:
    return datetime.fromtimestamp(EPOCH + slot * SLOT_S, UTC).isoformat(timespec="seconds")


@dataclass
class OnlineRun:
    site_kw: np.ndarray
    delivered_kwh: float
    replan_s: list[float]


def run_online(sessions: list[Session], cap_kw: float, tariff: dict[str, float] | None, horizon_hours: float,
               progress: Progress | None = None) -> OnlineRun:  # fmt: skip
    """The controller on the month, slot by slot, knowing each car from its arrival only."""
    stations = sorted({s.station for s in sessions})
    site = ManagedSite.model_validate({
        "name": "Caltech", "cap_kw": cap_kw, "slot_minutes": SLOT_MINUTES, "horizon_hours": horizon_hours,
        "stations": [{"id": sid, "max_kw": max(s.max_kw for s in sessions if s.station == sid)} for sid in stations],
        **({"tariff": tariff} if tariff is not None else {}),
    })  # fmt: skip
    csms = Csms(stations)
    clock = FakeClock(EPOCH)
    controller = SiteController(site, csms, clock=clock)
    slots = max(s.departure for s in sessions) + 1
    arriving: dict[int, list[Session]] = {}
    for session in sessions:
        arriving.setdefault(session.arrival, []).append(session)
    open_: dict[str, tuple[Session, Transaction]] = {}
    site_kw, replans = np.zeros(slots), []
    task = progress.add_task(f"cap {cap_kw:g} kW", total=slots) if progress else None
    for slot in range(slots):
        clock._elapsed_s = slot * SLOT_S + 1  # a second into the slot: the clock only moves forward here
        for session_id in [sid for sid, (s, _) in open_.items() if s.departure <= slot]:
            _, transaction = open_.pop(session_id)
            transaction.ended = _iso(slot)
        for session in arriving.get(slot, []):
            state = csms.stations[session.station]
            transaction = Transaction(session.id, 1, _iso(slot), session.id, meter_start_wh=0.0)
            state.transactions[session.id] = transaction
            state.ev_needs[1] = {"departure_time": _iso(session.departure), "energy_wh": session.kwh_requested * 1000}
            open_[session.id] = (session, transaction)
        started = time.perf_counter()
        schedule = controller.plan()
        replans.append(time.perf_counter() - started)
        for i, car in enumerate(controller.cars):
            kw = float(schedule.power_kw[i, 0])
            _, transaction = open_[car.transaction_id]
            transaction.energy_wh += kw * 1000 * SLOT_S / 3600
            transaction.power_w = kw * 1000
            site_kw[slot] += kw
        if progress is not None and task is not None:
            progress.advance(task)
    return OnlineRun(site_kw, float(site_kw.sum() * SLOT_S / 3600), replans)


def comparison(caps: list[float], with_acnportal: bool, horizon_hours: float) -> list[dict[str, Any]]:
    sessions = load_sessions(DATA / "caltech_2019-03_sessions.csv")
    requested = sum(s.kwh_requested for s in sessions)
    slots = max(s.departure for s in sessions) + 1
    tariff = time_of_use(slots, SLOT_MINUTES)
    slot_h = SLOT_MINUTES / 60
    rows: list[dict[str, Any]] = []

    def row(cap: float, name: str, power: np.ndarray, seconds: float, **extra: Any) -> None:
        padded = np.zeros(slots)
        padded[: min(len(power), slots)] = power[:slots]
        rows.append({"cap": cap, "schedule": name, "delivered": float(padded.sum() * slot_h / requested),
                     "peak": float(padded.max()), "cost": tariff.cost(padded, slot_h), "seconds": seconds, **extra})  # fmt: skip
        r = rows[-1]
        console.log(f"cap {cap:g} kW  {name}: delivered {r['delivered'] * 100:.2f} %, peak {r['peak']:.1f} kW, "
                    f"cost {r['cost']:,.0f}, {seconds:.0f} s")  # fmt: skip

    with Progress(console=console, transient=True) as progress:
        for cap in caps:
            for label, prices in (("OpenSDV site controller (online)", None),
                                  ("OpenSDV site controller (online, energy only)", ENERGY_ONLY)):  # fmt: skip
                started = time.perf_counter()
                run = run_online(sessions, cap, prices, horizon_hours, progress)
                times = np.asarray(run.replan_s) * 1000
                row(cap, label, run.site_kw, time.perf_counter() - started,
                    replan_ms_median=float(np.median(times)), replan_ms_max=float(times.max()))  # fmt: skip
            started = time.perf_counter()
            bound = plan(sessions, slots=slots, slot_h=slot_h, site_cap_kw=cap, tariff=tariff)
            row(cap, "offline optimum (knows the month: a bound)", bound.site_kw, time.perf_counter() - started)
            if with_acnportal:
                for name in ("earliest deadline first", "least laxity first", "round robin"):
                    started = time.perf_counter()
                    row(cap, f"acnportal {name} (online)", acnportal_run(name, cap), time.perf_counter() - started)
    return rows


def table(rows: list[dict[str, Any]]) -> Table:
    shown = Table("cap kW", "schedule", "delivered %", "peak kW", "cost USD", "re-plan ms (median / max)")
    for r in rows:
        replan = f"{r['replan_ms_median']:.0f} / {r['replan_ms_max']:.0f}" if "replan_ms_median" in r else ""
        shown.add_row(f"{r['cap']:g}", r["schedule"], f"{r['delivered'] * 100:.2f}", f"{r['peak']:.1f}",
                      f"{r['cost']:,.0f}", replan)  # fmt: skip
    return shown


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--caps", default="20,30,50", help="site caps, kW, comma-separated")
    parser.add_argument("--skip-acnportal", action="store_true")
    parser.add_argument("--horizon-hours", type=float, default=12.0)
    parser.add_argument("--plot", type=Path, default=None, help="a PNG of delivered energy and cost per cap")
    args = parser.parse_args()
    rows = comparison([float(c) for c in args.caps.split(",")], not args.skip_acnportal, args.horizon_hours)
    console.print(table(rows))
    if args.plot is not None:
        title = "Caltech ACN, March 2019, online (each car known from its arrival): OpenSDV's site controller against acnportal"
        console.print(f"plot: {plot_comparison(rows, args.plot, title)}")


if __name__ == "__main__":
    main()
