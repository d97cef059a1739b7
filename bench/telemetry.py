"""Telemetry from many cars into DuckDB, through Mosquitto and through the embedded broker.

    python -m bench.telemetry [--vehicles 1000] [--embedded-vehicles 300] [--seconds 15] [--burst 60]

Each simulated vehicle is a real ``Uplink`` (its own MQTT connection and SQLite spool) publishing
20 signals once a second; the cloud side is the real ``Ingest`` into a DuckDB file. Measured in the
same run for each broker:

- sustained: signals stored per second while every car sends 20 signals at 1 Hz (each car at its
  own phase within the second), and the lag from a sample's timestamp to its batch being stored
  (p50, p99);
- backlog: every car's spool takes ``--burst`` batches at once (as after an outage; the uplink
  sends a backlog in bundles); stored signals per second from then until the last one is in (the
  ingest capacity, sustained over the drain);
- the fleet overview (``GET /api/v1/fleet`` data for every car) built from the store.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from opensdv.cloud.mqtt_broker import embedded_mqtt_broker
from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import Sample, VehicleStatus
from opensdv.link.mqtt import MqttConnector
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink

console = Console()
SIGNALS = [f"Vehicle.Bench.Signal{n:02d}" for n in range(20)]


@asynccontextmanager
async def _mosquitto() -> AsyncIterator[str]:
    url = os.environ.get("OPENSDV_TEST_MQTT_URL", "mqtt://127.0.0.1:18883")
    yield url


def _vin(n: int) -> str:
    return f"JN1BENCH0AA{n:06d}"


async def _cars(
    url: str,
    vehicles: int,
    seconds: float,
    burst: int,
    tmp: Path,
    ready: Any,
    go: Any,
    burst_go: Any,
    done: Any,
) -> None:
    """The fleet, in its own process (as cars are not on the cloud's machine)."""
    uplinks = [
        Uplink(
            MqttConnector(url),
            VehicleStatus(vin=_vin(n), online=True, at=time.time()),
            Spool(tmp / f"spool-{n}.db"),
            window=64,
        )
        for n in range(vehicles)
    ]
    tasks = [asyncio.create_task(u.run()) for u in uplinks]
    for uplink in uplinks:
        await asyncio.wait_for(uplink.connected.wait(), 300)
    ready.set()
    await asyncio.to_thread(go.wait)
    started = time.time()
    ticks = max(1, round(seconds))

    async def drive(uplink: Uplink, phase: float) -> None:
        """Once a second, at the car's own phase (cars' clocks are not in step)."""
        for k in range(ticks):
            await asyncio.sleep(max(0.0, started + phase + k - time.time()))
            now = time.time()
            uplink.record([Sample(path=p, value=float(k), ts=now) for p in SIGNALS])

    await asyncio.gather(*(drive(u, n / vehicles) for n, u in enumerate(uplinks)))
    done.put(ticks)
    await asyncio.to_thread(burst_go.wait)  # the parent has measured the sustained phase
    burst_started = time.time()
    for uplink in uplinks:
        for k in range(burst):
            uplink.record([Sample(path=p, value=float(k), ts=burst_started) for p in SIGNALS])
    done.put(time.time())  # the backlog is in the spools (nothing left while this loop ran)
    await asyncio.gather(*(u.wait_confirmed() for u in uplinks))
    await asyncio.to_thread(ready.wait)  # released when the parent has counted everything
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _cars_process(*args: Any) -> None:
    asyncio.run(_cars(*args))


async def _run(broker: Any, vehicles: int, seconds: float, burst: int, tmp: Path) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ready, go, burst_go, done = context.Event(), context.Event(), context.Event(), context.Queue()
    async with broker as url:
        store = TelemetryStore(tmp / "bench.duckdb")
        ingest = Ingest(MqttConnector(url), store, identifier=f"bench-ingest-{time.time_ns()}", durable=False)
        task = asyncio.create_task(ingest.run())
        await asyncio.wait_for(ingest.subscribed.wait(), 30)
        cars = context.Process(
            target=_cars_process, args=(url, vehicles, seconds, burst, tmp, ready, go, burst_go, done)
        )
        cars.start()
        with console.status(f"{vehicles} cars connecting to {url}"):
            await asyncio.to_thread(ready.wait)
        ready.clear()
        started = time.time()
        go.set()
        sent = await asyncio.to_thread(done.get)
        expected = sent * vehicles * len(SIGNALS)
        async with asyncio.timeout(300):
            await ingest.written.wait_until(lambda: store.count() >= expected)
        sustained_s = time.time() - started
        lags = sorted(r[0] for r in store._query(
            "SELECT b.received_at - s.ts FROM batches b JOIN (SELECT vin, seq, max(ts) AS ts FROM samples GROUP BY vin, seq) s"
            " USING (vin, seq)", []))  # fmt: skip

        burst_go.set()
        burst_started = await asyncio.to_thread(done.get)
        target = expected + burst * vehicles * len(SIGNALS)
        async with asyncio.timeout(600):
            await ingest.written.wait_until(lambda: store.count() >= target)
        burst_s = time.time() - burst_started
        ready.set()
        await asyncio.to_thread(cars.join, 60)

        overview_started = time.perf_counter()
        latest = store.latest_of(SIGNALS[:2])
        store.statuses()
        store.last_seen()
        overview_ms = (time.perf_counter() - overview_started) * 1000
        assert len(latest) == vehicles
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        store.close()
    return {
        "sustained_signals_per_s": expected / sustained_s,
        "offered_signals_per_s": vehicles * len(SIGNALS),
        "lag_p50_s": statistics.median(lags),
        "lag_p99_s": lags[int(0.99 * (len(lags) - 1))],
        "drain_signals_per_s": burst * vehicles * len(SIGNALS) / burst_s,
        "duplicates": ingest.duplicates,
        "overview_ms": overview_ms,
    }


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry")
    parser.add_argument("--vehicles", type=int, default=1000, help="cars through Mosquitto")
    parser.add_argument("--embedded-vehicles", type=int, default=300,
                        help="cars through the embedded broker (it saturates between 300 and 600)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--burst", type=int, default=60, help="backlog batches per car")
    parser.add_argument("--brokers", default="mosquitto,embedded")
    args = parser.parse_args(argv)
    results = {}
    for name in args.brokers.split(","):
        broker = _mosquitto() if name == "mosquitto" else embedded_mqtt_broker()
        with tempfile.TemporaryDirectory() as tmp:
            cars = args.vehicles if name == "mosquitto" else args.embedded_vehicles
            results[name] = asyncio.run(_run(broker, cars, args.seconds, args.burst, Path(tmp))) | {
                "cars": cars
            }
    table = Table(
        "broker", "cars", "offered signals/s", "sustained signals/s", "lag p50 s", "lag p99 s", "backlog drain signals/s",
        "fleet overview ms", title=f"cars x 20 signals at 1 Hz, {args.seconds:g} s; backlog {args.burst} batches/car",
    )  # fmt: skip
    for name, r in results.items():
        table.add_row(
            name, f"{r['cars']:,}", f"{r['offered_signals_per_s']:,.0f}", f"{r['sustained_signals_per_s']:,.0f}", f"{r['lag_p50_s']:.3f}",
            f"{r['lag_p99_s']:.3f}", f"{r['drain_signals_per_s']:,.0f}", f"{r['overview_ms']:.0f}",
        )  # fmt: skip
    console.print(table)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
