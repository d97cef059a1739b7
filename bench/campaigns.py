"""Edge cost of data collection campaigns on one car, reproduced by one command:

    python -m bench.campaigns [--repeats 5] [--campaigns 20] [--seconds 10]

Twenty condition campaigns (each a comparison of two signals over the car's 40 fastest-changing
signals, rising edge, 10 s before and 5 s after a trigger) evaluated against 1,000 updates a second
of simulated time, one signal per update, as the broker delivers them. Measured: CPU seconds per
second of updates (a share of one core; target under 2 %), and the samples the ring buffers hold
(memory) at the end. The engine runs in this process, single-threaded, as in the car's agent.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

from rich.console import Console
from rich.table import Table

from opensdv.model.campaigns import parse_campaign
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.agent.campaigns import CampaignEngine
from opensdv.vehicle.broker import Datapoint

console = Console()
RATE = 1000  # updates a second


def _engine(campaigns: int, paths: list[str]) -> CampaignEngine:
    engine = CampaignEngine(load_default_vss(), lambda _: None)
    for i in range(campaigns):
        a, b = paths[i % len(paths)], paths[(i * 7 + 3) % len(paths)]
        engine.install(parse_campaign({
            "id": f"bench-{i}", "version": 1,
            "signals": [{"path": p} for p in dict.fromkeys([a, b, "Vehicle.Speed"])],
            "scheme": {"kind": "condition", "expression": f"{a} > 50 and {b} < 20",
                       "pre_trigger_s": 10, "post_trigger_s": 5, "min_interval_ms": 1000},
        }))  # fmt: skip
    return engine


def run(campaigns: int, seconds: float) -> tuple[float, int]:
    catalog = load_default_vss()
    paths = [leaf.path for leaf in catalog if leaf.datatype.is_numeric and not leaf.datatype.is_array][:40]
    engine = _engine(campaigns, paths)
    rng = random.Random(7)
    updates = [(rng.choice(paths), rng.uniform(0, 100)) for _ in range(int(RATE * seconds))]
    started = time.process_time()
    for i, (path, value) in enumerate(updates):
        now = i / RATE
        engine.update({path: Datapoint(value, now)}, now)
    return (time.process_time() - started) / seconds, engine.buffered_samples()


def main(argv: list[str]) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    shares, buffered = [], 0
    with console.status("evaluating campaigns ..."):
        for _ in range(args.repeats):
            share, buffered = run(args.campaigns, args.seconds)
            shares.append(share)
    table = Table(title=f"{args.campaigns} condition campaigns at {RATE:,} updates/s (target under 2 % of one core)")
    for column in ("runs", "CPU share of one core (median)", "min", "max", "samples buffered at the end"):
        table.add_column(column, justify="right")
    median = statistics.median(shares)
    table.add_row(str(args.repeats), f"{median:.2%}", f"{min(shares):.2%}", f"{max(shares):.2%}", f"{buffered:,}")
    console.print(table)
    return {"cpu_share": median, "buffered": buffered}


if __name__ == "__main__":
    main(sys.argv[1:])
