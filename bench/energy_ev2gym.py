"""The managed site's controller against EV2Gym's own heuristics, on EV2Gym's published
``V2GProfitMax`` scenario (25 AC chargers of 22 kW behind a 100 kW transformer, a workplace's
arrivals, 15-minute steps over 28 hours, Dutch day-ahead prices), charging only.

    python -m bench.energy_ev2gym [--seeds 5]      # needs the bench extra (ev2gym and what it imports)

What each side knows: EV2Gym's simulator decides arrivals, departures, energy wanted and each
car's limits; each algorithm sees a car once it is plugged in, with its departure and desired
energy (our controller gets them as ISO 15118 charging needs would carry them), and the day-ahead
prices (published the day before; EV2Gym's MPCs use them too, its heuristics ignore them). Ours is
``SiteController`` itself, unchanged: a CSMS's open transactions, the prices as a utility's price
signals, re-planned every step; its first step's power per car is the charger's set-point. The
scenario's V2G is turned off: the managed site does not discharge cars yet, and the heuristics do
not either. EV2Gym's own MPCs (eMPC, OCMF, the profit-maximising oracle) cannot run here: with
gurobipy 13 (the only one whose free licence is still valid) they fail in EV2Gym 2.0.0's own code
under numpy 2 ("setting an array element with a sequence"); earlier gurobipy licences expired.
Each seed is another random weekday; all algorithms get the same cars for a seed.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import math
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from opensdv.clock import FakeClock
from opensdv.cloud.energy.ocpp.csms import Csms
from opensdv.cloud.energy.ocpp.csms_state import Transaction
from opensdv.cloud.energy.site_controller import SiteController
from opensdv.cloud.energy.site_file import ManagedSite

console = Console()
SCENARIO = "V2GProfitMax.yaml"
HEURISTICS = (
    "ChargeAsFastAsPossible", "ChargeAsFastAsPossibleToDesiredCapacity", "ChargeAsFastAsPossibleWithPowerLimit",
    "ChargeAsLateAsPossible", "ChargeAsLateAsPossibleToDesiredCapacity",
)  # fmt: skip


def scenario_file(directory: Path) -> Path:
    """EV2Gym's published scenario with V2G off and its data paths made absolute (they are
    relative to EV2Gym's source folder)."""
    import ev2gym

    package = Path(ev2gym.__file__).parent
    config = yaml.safe_load((package / "example_config_files" / SCENARIO).read_text())
    config["v2g_enabled"] = False
    config["ev_specs_file"] = str(package / "data" / Path(config["ev_specs_file"]).name)
    target = directory / SCENARIO
    target.write_text(yaml.safe_dump(config))
    return target


def environment(config: Path, seed: int) -> Any:
    from ev2gym.models.ev2gym_env import EV2Gym
    from ev2gym.rl_agent.reward import profit_maximization
    from ev2gym.rl_agent.state import V2G_profit_max

    with warnings.catch_warnings():  # EV2Gym reads its configuration from a file it never closes
        warnings.simplefilter("ignore", ResourceWarning)
        env = EV2Gym(config_file=str(config), seed=seed, reward_function=profit_maximization,
                     state_function=V2G_profit_max, save_replay=False)  # fmt: skip
        gc.collect()
    env.reset(seed=seed)
    return env


@dataclass
class Result:
    cost_eur: float
    energy_kwh: float
    satisfaction: float  # EV2Gym's: each departing car's energy over what it wanted, averaged
    served: int
    overload_kw: float
    replan_ms: list[float]


def _result(stats: dict[str, Any], replan_ms: list[float] | None = None) -> Result:
    return Result(-float(stats["total_profits"]), float(stats["total_energy_charged"]),
                  float(stats["average_user_satisfaction"]), int(stats["total_ev_served"]),
                  float(stats["total_transformer_overload"]), replan_ms or [])  # fmt: skip


def run_heuristic(name: str, config: Path, seed: int) -> Result:
    from ev2gym.baselines import heuristics

    env = environment(config, seed)
    kind = getattr(heuristics, name)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its average power
        agent = kind(env=env, power_limit=float(env.transformers[0].max_power.min())) if "PowerLimit" in name else kind(env=env)
    stats: dict[str, Any] = {}
    for _ in range(env.simulation_length):
        _, _, done, _, stats = env.step(agent.get_action(env))
        if done:
            break
    return _result(stats)


def run_site(config: Path, seed: int) -> Result:
    """``SiteController`` as the chargers' operator: every step, the plugged-in cars (ISO 15118
    needs), the day-ahead prices as price signals, one re-plan, the first step's power sent."""
    env = environment(config, seed)
    step_s = env.timescale * 60
    epoch = env.sim_starting_date.replace(tzinfo=UTC).timestamp()
    port_kw = {cs.id: cs.max_charge_current * cs.voltage * math.sqrt(cs.phases) / 1000 for cs in env.charging_stations}
    ids = {cs.id: f"CS-{cs.id:03d}" for cs in env.charging_stations}
    site = ManagedSite.model_validate({
        "name": "EV2Gym V2GProfitMax", "cap_kw": float(env.transformers[0].max_power.min()),
        "slot_minutes": env.timescale, "horizon_hours": 24,
        "stations": [{"id": ids[cs.id], "max_kw": round(port_kw[cs.id], 3)} for cs in env.charging_stations],
        "tariff": {"off_peak_price": 0.0, "peak_price": 0.0, "demand_charge": 0.0},  # the prices come as signals
    })  # fmt: skip
    csms = Csms(list(ids.values()))
    clock = FakeClock(epoch)
    controller = SiteController(site, csms, clock=clock)
    prices = -env.charge_prices[0]  # EV2Gym books a charge's cost as a negative profit
    controller.add_grid_event("day-ahead", [], [(epoch + t * step_s, epoch + (t + 1) * step_s, float(max(p, 0.0)))
                                                for t, p in enumerate(prices)])  # fmt: skip
    iso = lambda seconds: datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")  # noqa: E731
    plugged: dict[int, tuple[Any, float, Transaction]] = {}  # charger -> (car, its energy at plug-in, transaction)
    replans: list[float] = []
    stats: dict[str, Any] = {}
    for step in range(env.simulation_length):
        clock._elapsed_s = step * step_s + 1
        for cs in env.charging_stations:
            car, held = cs.evs_connected[0], plugged.get(cs.id)
            if held is not None and held[0] is not car:
                held[2].ended = iso(clock.time())
                del plugged[cs.id]
            if car is not None and cs.id not in plugged:
                tx = f"{seed}-{cs.id}-{step}"
                transaction = Transaction(tx, 1, iso(clock.time()), tx, meter_start_wh=0.0)
                state = csms.stations[ids[cs.id]]
                state.transactions[tx] = transaction
                state.ev_needs[1] = {
                    "departure_time": iso(epoch + car.time_of_departure * step_s),
                    "energy_wh": max(car.desired_capacity - car.current_capacity, 0.0) * 1000,
                    "max_power_w": min(car.max_ac_charge_power, port_kw[cs.id]) * 1000,
                }
                plugged[cs.id] = (car, float(car.current_capacity), transaction)
        started = time.perf_counter()
        schedule = controller.plan()
        replans.append((time.perf_counter() - started) * 1000)
        by_transaction = {car.transaction_id: float(schedule.power_kw[i, 0]) for i, car in enumerate(controller.cars)}
        actions = np.zeros(env.number_of_ports)
        for cs in env.charging_stations:
            if cs.id in plugged:
                actions[cs.id] = min(max(by_transaction.get(plugged[cs.id][2].transaction_id, 0.0) / port_kw[cs.id], 0.0), 1.0)
        _, _, done, _, stats = env.step(actions)
        for car, at_plug_in, transaction in plugged.values():  # the chargers' meter values
            transaction.energy_wh = (float(car.current_capacity) - at_plug_in) * 1000
        if done:
            break
    return _result(stats, replans)


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.energy_ev2gym", description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    runs: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory() as scratch, console.status("EV2Gym ...") as status:
        config = scenario_file(Path(scratch))
        for seed in range(args.seeds):
            status.update(f"EV2Gym {SCENARIO}, seed {seed + 1} of {args.seeds}")
            runs.setdefault("OpenSDV site controller (online)", []).append(run_site(config, seed))
            for name in HEURISTICS:
                runs.setdefault(f"EV2Gym {name}", []).append(run_heuristic(name, config, seed))
    table = Table(title=f"EV2Gym {SCENARIO}, charging only: medians of {args.seeds} seeds (random weekdays; ratios per seed)")
    reference = runs["EV2Gym ChargeAsFastAsPossible"]
    columns = ("schedule", "cost EUR", "cost vs as fast as possible", "energy kWh", "EUR/kWh", "user satisfaction %",
               "cars", "overload kW", "re-plan ms (median / max)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "schedule" else "right")
    summary: dict[str, dict[str, float]] = {}
    for name, results in runs.items():
        median = {key: statistics.median(getattr(r, key) for r in results)
                  for key in ("cost_eur", "energy_kwh", "satisfaction", "served", "overload_kw")}  # fmt: skip
        per_kwh = statistics.median(r.cost_eur / r.energy_kwh for r in results if r.energy_kwh)
        ratio = statistics.median(r.cost_eur / f.cost_eur - 1 for r, f in zip(results, reference, strict=True))
        replans = [ms for r in results for ms in r.replan_ms]
        table.add_row(name, f"{median['cost_eur']:.2f}", f"{ratio * 100:+.1f} %", f"{median['energy_kwh']:.1f}", f"{per_kwh:.4f}",
                      f"{median['satisfaction'] * 100:.1f}", f"{median['served']:.0f}", f"{median['overload_kw']:.1f}",
                      f"{np.median(replans):.1f} / {max(replans):.0f}" if replans else "")  # fmt: skip
        summary[name] = median | {"eur_per_kwh": per_kwh, "cost_vs_fastest": ratio}
    console.print(table)
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
