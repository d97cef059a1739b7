"""Data collection campaigns: their cost at the edge, and the time from a trigger to the cloud.

    python -m bench.campaigns [--repeats 5] [--campaigns 20] [--seconds 10] [--triggers 200]

Edge: twenty condition campaigns (each a comparison of two signals over the car's 40
fastest-changing signals, rising edge, 10 s before and 5 s after a trigger) evaluated against 1,000
updates a second of simulated time, one signal per update, as the broker delivers them. Measured:
CPU seconds per second of updates (a share of one core; target under 2 %), the samples the ring
buffers hold at the end, and the memory that takes per campaign (tracemalloc, a separate run).

Trigger to cloud: one car's real ``Uplink`` (SQLite spool) and the cloud's real ``Ingest`` (DuckDB)
over a Mosquitto of the benchmark's own on the secure link (mutual TLS, the link's ACL); a campaign
with no post-trigger window triggers ``--triggers`` times, 5 a second; measured from the trigger
to its capture's row in the store (p50, p99). With a post-trigger window the capture leaves the
car that much later.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

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


def ring_memory_per_campaign(campaigns: int, seconds: float) -> float:
    """Bytes the engine holds per campaign after ``seconds`` of updates (ring buffers included)."""
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        catalog = load_default_vss()
        paths = [leaf.path for leaf in catalog if leaf.datatype.is_numeric and not leaf.datatype.is_array][:40]
        engine = _engine(campaigns, paths)
        rng = random.Random(7)
        for i in range(int(RATE * seconds)):
            engine.update({rng.choice(paths): Datapoint(rng.uniform(0, 100), i / RATE)}, i / RATE)
        held = sum(stat.size_diff for stat in tracemalloc.take_snapshot().compare_to(before, "filename"))
        del engine
    finally:
        tracemalloc.stop()
    return held / campaigns


async def trigger_to_cloud(triggers: int) -> list[float]:
    """Seconds from each trigger to its capture stored in the cloud, through Mosquitto (TLS)."""
    from bench.telemetry import _connector, _mosquitto
    from opensdv.cloud.fleet.identities import FleetCa
    from opensdv.cloud.telemetry.ingest import Ingest
    from opensdv.cloud.telemetry.store import TelemetryStore
    from opensdv.link.fleet import VehicleStatus
    from opensdv.vehicle.agent.campaigns import record_sender
    from opensdv.vehicle.agent.spool import Spool
    from opensdv.vehicle.agent.uplink import Uplink

    vin = "JN1BENCH0AA000001"
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        fleet = FleetCa.init(tmp / "ca")
        car = fleet.provision(vin, tmp / "car")
        async with _mosquitto(fleet, tmp) as url:
            store = TelemetryStore(tmp / "cloud.duckdb")
            ingest = Ingest(_connector(url, fleet.provision_service("ingest", tmp / "services")), store,
                            identifier=f"opensdv-ingest-{time.time_ns()}", durable=False)  # fmt: skip
            uplink = Uplink(_connector(url, car), VehicleStatus(vin=vin, online=True, at=time.time()), Spool(tmp / "spool.db"))
            engine = CampaignEngine(load_default_vss(), record_sender(uplink))
            engine.install(parse_campaign({
                "id": "latency", "version": 1, "signals": [{"path": "Vehicle.Speed"}],
                "scheme": {"kind": "condition", "expression": "Vehicle.Speed > 80", "pre_trigger_s": 2},
            }))  # fmt: skip
            tasks = [asyncio.create_task(ingest.run(confirm_s=0.5)), asyncio.create_task(uplink.run())]
            await asyncio.wait_for(asyncio.gather(ingest.subscribed.wait(), uplink.connected.wait()), 30)
            latencies: list[float] = []
            for n in range(triggers):
                for speed in (70.0, 90.0):  # below, then above: one rising edge
                    now = time.time()
                    engine.update({"Vehicle.Speed": Datapoint(speed, now)}, now)
                async with asyncio.timeout(30):
                    await ingest.written.wait_until(lambda n=n: len(store.captures("latency")) > n)
                latencies.append(time.time() - store.captures("latency")[-1].trigger)  # type: ignore[operator]
                await asyncio.sleep(0.2)  # pacing: 5 triggers a second
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            uplink.spool.close()
            store.close()
    return latencies


def main(argv: list[str]) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--campaigns", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--triggers", type=int, default=200, help="triggers sent to the cloud (0: skip)")
    args = parser.parse_args(argv)
    shares, buffered = [], 0
    with console.status("evaluating campaigns ..."):
        for _ in range(args.repeats):
            share, buffered = run(args.campaigns, args.seconds)
            shares.append(share)
        per_campaign = ring_memory_per_campaign(args.campaigns, args.seconds)
    table = Table(title=f"{args.campaigns} condition campaigns at {RATE:,} updates/s (target under 2 % of one core)")
    for column in ("runs", "CPU share of one core (median)", "min", "max", "samples buffered at the end", "memory per campaign"):
        table.add_column(column, justify="right")
    median = statistics.median(shares)
    table.add_row(str(args.repeats), f"{median:.2%}", f"{min(shares):.2%}", f"{max(shares):.2%}", f"{buffered:,}",
                  f"{per_campaign / 1024:.0f} KiB")  # fmt: skip
    console.print(table)
    results = {"cpu_share": median, "buffered": buffered, "bytes_per_campaign": per_campaign}
    if args.triggers:
        with console.status(f"{args.triggers} triggers through Mosquitto (mutual TLS) ..."):
            latencies = sorted(asyncio.run(trigger_to_cloud(args.triggers)))
        p50, p99 = statistics.median(latencies), latencies[int(0.99 * (len(latencies) - 1))]
        shown = Table(title="trigger to the capture stored in the cloud, one car, Mosquitto over mutual TLS")
        for column in ("triggers", "p50 ms", "p99 ms", "max ms"):
            shown.add_column(column, justify="right")
        shown.add_row(str(len(latencies)), f"{p50 * 1000:.1f}", f"{p99 * 1000:.1f}", f"{latencies[-1] * 1000:.1f}")
        console.print(shown)
        results |= {"trigger_p50_s": p50, "trigger_p99_s": p99}
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
