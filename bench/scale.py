"""The cloud past one process: ingest workers sharing the cars' traffic through an MQTT shared
subscription on Mosquitto (mutual TLS, the fleet's ACL), storing into PostgreSQL.

    . scripts/services.sh && python -m bench.scale [--cars 2000] [--batches 20] [--runs 3]
                                                   [--ladder 1000,2000,4000] [--seconds 15]
                                                   [--fleet 10000] [--fleet-period 10] [--fleet-signals 50]
                                                   [--jobs-vehicles 1000] [--jobs-cars 10000]

Measured in one run, both sides with the same information and the same job:

- drain: the load generator leaves a backlog on the broker (every car ``--batches`` batches of ten
  signals, queued in the durable sessions of the group's workers while they are away), so the cars
  do not compete for the two cores; then 1 or 2 worker processes start and store it. Signals per
  second from the first write to the last, median of ``--runs``.
- sustained: the cars of each ``--ladder`` size send ten signals a second each for ``--seconds``
  (the generator running beside the workers, on the same two cores); lag p99 from a batch's newest
  sample to its row being written. The largest size with lag p99 <= 1 s is what the workers keep.
- fleet: ``--fleet`` cars from the one generator process, each its own mutual-TLS connection and
  spool, at a telematics unit's pace (a batch of ``--fleet-signals`` every ``--fleet-period`` s), into
  2 workers: how long they take to connect, what the generator costs, whether every batch is stored.
- fleet jobs (``python -m bench.jobs``, after the ingest parts, with the same ``--runs``): the
  director's targets for a campaign stage to ``--jobs-vehicles`` cars and the state of health of
  ``--jobs-cars`` cars, in one process and on a local Ray with 1 and 2 workers.
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
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from bench.loadgen import Load, provision_cars, start_in_process
from bench.telemetry import _mosquitto
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.postgres import PostgresTelemetryStore, conninfo
from opensdv.link.fleet import wildcard
from opensdv.link.identity import IdentityFiles
from opensdv.link.mqtt import MqttConnector, end_session

console = Console()
SIGNALS = 10
PARTS = ("ingest workers", "Mosquitto", "PostgreSQL", "whole machine")
LAG = (
    "SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY b.received_at - s.ts) FROM telemetry_batches b"
    " JOIN (SELECT vin, seq, max(ts) AS ts FROM telemetry_samples GROUP BY vin, seq) s USING (vin, seq)"
)


def _cpu_seconds(workers: set[int]) -> dict[str, float]:
    """CPU seconds used so far by each shared part: the ingest workers, Mosquitto, PostgreSQL."""
    tick = os.sysconf("SC_CLK_TCK")
    used = dict.fromkeys(PARTS, 0.0)  # (the whole machine: every process, the benchmark's own too)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            pid, rest = stat.read_text().split(" (", 1)
        except OSError:
            continue  # ended meanwhile
        comm, fields = rest.rsplit(") ", 1)
        part = "ingest workers" if int(pid) in workers else {"mosquitto": "Mosquitto"}.get(comm)
        if comm.startswith("postgres"):
            part = "PostgreSQL"
        if part is not None:
            values = fields.split()
            used[part] += (int(values[11]) + int(values[12])) / tick  # utime + stime
    with open("/proc/stat") as stat:
        jiffies = [int(v) for v in stat.readline().split()[1:]]
    used["whole machine"] = (sum(jiffies) - jiffies[3] - jiffies[4]) / tick  # all but idle and I/O wait
    return used


def _clean(url: str) -> None:
    with psycopg.connect(conninfo(url), autocommit=True) as connection:
        for table in ("telemetry_samples", "telemetry_batches", "telemetry_status", "telemetry_events"):
            connection.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    PostgresTelemetryStore(url).close()  # the schema, made before the workers race to make it


def _bytes_per_signal(url: str) -> float:
    """PostgreSQL's storage per stored sample: partitions with their indexes, and the batch rows."""
    with psycopg.connect(conninfo(url)) as connection:
        size, rows = connection.execute(
            "SELECT (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('telemetry_samples'))"
            " + pg_total_relation_size('telemetry_batches'), (SELECT count(*) FROM telemetry_samples)"
        ).fetchone()  # type: ignore[misc]
    return float(size) / max(int(rows), 1)


def _count(url: str) -> int:
    with psycopg.connect(conninfo(url)) as connection:
        return int(connection.execute("SELECT count(*) FROM telemetry_batches").fetchone()[0])  # type: ignore[index]


async def _worker(mqtt: str, identity: IdentityFiles, database: str, name: str, group: str, stop: Any) -> None:
    store = PostgresTelemetryStore(database)
    ingest = Ingest(MqttConnector(mqtt, identity), store, name, share_group=group)
    task = asyncio.create_task(ingest.run())
    await asyncio.to_thread(stop.wait)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    store.close()


def _worker_process(*args: Any) -> None:
    asyncio.run(_worker(*args))


async def _register_sessions(mqtt: str, identity: IdentityFiles, names: list[str], group: str) -> None:
    """Each worker's durable session subscribed to the group, then left: the broker queues its share."""
    for name in names:
        async with MqttConnector(mqtt, identity).connect(name, durable=True) as client:
            await client.subscribe(f"$share/{group}/{wildcard('telemetry')}", qos=1)


def _start_workers(mqtt: str, identity: IdentityFiles, database: str, names: list[str], group: str) -> tuple[Any, list[Any]]:
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    workers = [context.Process(target=_worker_process, args=(mqtt, identity, database, n, group, stop)) for n in names]
    for worker in workers:
        worker.start()
    return stop, workers


async def _stop_workers(mqtt: str, identity: IdentityFiles, stop: Any, workers: list[Any], names: list[str]) -> None:
    stop.set()
    for worker in workers:
        await asyncio.to_thread(worker.join, 60)
    for name in names:
        await end_session(MqttConnector(mqtt, identity), name)


async def _drain(
    mqtt: str, identity: IdentityFiles, database: str, load: Load, workers: int, run: int
) -> tuple[float, dict[str, float]]:
    """(stored signals per second, each part's share of the machine's cores while draining)."""
    _clean(database)
    group = f"drain-{workers}-{run}"
    names = [f"opensdv-ingest-{group}-{n}" for n in range(workers)]
    await _register_sessions(mqtt, identity, names, group)
    cars, report = start_in_process(load)
    for _ in range(2):
        await asyncio.to_thread(report.get)  # connected, then done: the backlog is on the broker
    await asyncio.to_thread(cars.join, 60)
    expected = len(load.vins) * load.batches
    stop, processes = _start_workers(mqtt, identity, database, names, group)
    first = last = None
    pids = {p.pid for p in processes}
    began = time.perf_counter()
    while time.perf_counter() - began < 600:
        stored, now = _count(database), time.perf_counter()
        if stored and first is None:
            first, cpu_first = now, _cpu_seconds(pids)
        if stored >= expected:
            last, cpu_last = now, _cpu_seconds(pids)
            break
        await asyncio.sleep(0.02)
    await _stop_workers(mqtt, identity, stop, processes, names)
    if first is None or last is None:
        raise RuntimeError(f"the backlog was not drained: {_count(database):,} of {expected:,} batches stored")
    if last <= first:
        raise RuntimeError(f"{expected:,} batches were stored within one poll: too few to time (more --cars or --batches)")
    cores = (os.cpu_count() or 1) * (last - first)
    return expected * SIGNALS / (last - first), {part: (cpu_last[part] - cpu_first[part]) / cores for part in PARTS}


async def _sustained(mqtt: str, identity: IdentityFiles, database: str, load: Load, workers: int) -> dict[str, Any]:
    """Lag p99 (s), offered signals per second and the generator's own figures (connect time, CPU,
    memory) with ``load`` running beside ``workers`` workers."""
    _clean(database)
    group = f"steady-{workers}-{len(load.vins)}"
    names = [f"opensdv-ingest-{group}-{n}" for n in range(workers)]
    stop, processes = _start_workers(mqtt, identity, database, names, group)
    await asyncio.sleep(2.0)  # the workers subscribe (their start is not what is measured)
    cars, report = start_in_process(load)
    _, connected_s = await asyncio.to_thread(report.get, True, 900)
    _, done = await asyncio.to_thread(report.get, True, load.seconds + 900)
    expected = done["batches"]
    began = time.perf_counter()
    while _count(database) < expected and time.perf_counter() - began < 120:
        await asyncio.sleep(0.1)
    stored = _count(database)
    await asyncio.to_thread(cars.join, 60)
    with psycopg.connect(conninfo(database)) as connection:
        lag = float(connection.execute(LAG).fetchone()[0])  # type: ignore[index]
    await _stop_workers(mqtt, identity, stop, processes, names)
    return {"lag_p99_s": lag, "offered": expected * load.signals / done["seconds"], "connected_s": connected_s,
            "stored": stored, **done}  # fmt: skip


async def _bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    ca = FleetCa.init(tmp / "ca")
    with console.status(f"issuing {max(args.cars, args.fleet, *args.ladder):,} car identities"):
        vins = provision_cars(ca, tmp / "cars", max(args.cars, args.fleet, *args.ladder))
    identity = ca.provision_service("ingest", tmp / "services")
    results: dict[str, Any] = {"drain": {}, "sustained": {}}
    async with _mosquitto(ca, tmp) as mqtt:
        backlog = Load(mqtt, tmp / "cars", vins[: args.cars], SIGNALS, "backlog", batches=args.batches)
        for workers in (1, 2):
            runs = []
            for run in range(args.runs):
                with console.status(f"drain, {workers} worker(s), run {run + 1}/{args.runs}"):
                    runs.append(await _drain(mqtt, identity, args.postgres_url, backlog, workers, run))
            results["drain"][workers] = runs
        results["bytes_per_signal"] = _bytes_per_signal(args.postgres_url)
        for workers in (1, 2):
            for cars in args.ladder:
                steady = Load(mqtt, tmp / "cars", vins[:cars], SIGNALS, "steady", seconds=args.seconds)
                with console.status(f"sustained, {workers} worker(s), {cars:,} cars"):
                    results["sustained"][(workers, cars)] = await _sustained(mqtt, identity, args.postgres_url, steady, workers)
        if args.fleet:
            fleet = Load(mqtt, tmp / "cars", vins[: args.fleet], args.fleet_signals, "steady",
                         seconds=args.fleet_seconds, period=args.fleet_period)  # fmt: skip
            with console.status(f"{args.fleet:,} cars from one process, 2 workers"):
                results["fleet"] = await _sustained(mqtt, identity, args.postgres_url, fleet, 2)
    return results


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--cars", type=int, default=2000, help="cars leaving the backlog")
    parser.add_argument("--batches", type=int, default=20, help="backlog batches per car (ten signals each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ladder", default="1000,2000,4000", help="car counts for the sustained runs")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--fleet", type=int, default=10_000, help="cars of the fleet run, one process (0: none)")
    parser.add_argument("--fleet-period", type=float, default=10.0, help="fleet run: seconds between a car's batches")
    parser.add_argument("--fleet-signals", type=int, default=50, help="fleet run: signals per batch")
    parser.add_argument("--fleet-seconds", type=float, default=60.0)
    parser.add_argument("--postgres-url", default=os.environ.get("OPENSDV_TEST_POSTGRES_URL"))
    parser.add_argument("--jobs-vehicles", type=int, default=1000, help="fleet jobs: cars of the director's stage (0: no jobs)")
    parser.add_argument("--jobs-cars", type=int, default=10_000, help="fleet jobs: cars of the state-of-health job")
    args = parser.parse_args(argv)
    args.ladder = [int(n) for n in args.ladder.split(",") if n]
    if not args.postgres_url:
        sys.exit("no PostgreSQL: run `. scripts/services.sh` first, or give --postgres-url")
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(_bench(args, Path(tmp)))
    drain = {w: statistics.median(rate for rate, _ in runs) for w, runs in results["drain"].items()}
    table = Table("workers", "drain signals/s (median)", "runs", "ratio to 1 worker",
                  *(f"{part} % of {os.cpu_count()} cores" for part in PARTS),
                  title=f"backlog drain: {args.cars:,} cars x {args.batches} batches x {SIGNALS} signals, Mosquitto -> PostgreSQL")  # fmt: skip
    for workers, runs in results["drain"].items():
        shares = {part: statistics.median(share[part] for _, share in runs) for part in PARTS}
        table.add_row(str(workers), f"{drain[workers]:,.0f}", ", ".join(f"{r:,.0f}" for r, _ in runs),
                      f"{drain[workers] / drain[1]:.2f}", *(f"{100 * shares[p]:.0f}" for p in PARTS))  # fmt: skip
    console.print(table)
    console.print(f"PostgreSQL storage: {results['bytes_per_signal']:.0f} bytes per stored signal (day partitions, index, batch rows)")
    table = Table("workers", "cars", "offered signals/s", "lag p99 s", "kept (p99 <= 1 s)",
                  title=f"sustained: cars x {SIGNALS} signals at 1 Hz for {args.seconds:g} s, the generator beside the workers")  # fmt: skip
    for (workers, cars), run in results["sustained"].items():
        lag = run["lag_p99_s"]
        table.add_row(str(workers), f"{cars:,}", f"{run['offered']:,.0f}", f"{lag:.3f}", "yes" if lag <= 1.0 else "no")
    console.print(table)
    if "fleet" in results:
        run = results["fleet"]
        console.print(
            f"fleet: {args.fleet:,} cars from one process (each its own mutual-TLS connection and spool), a batch of "
            f"{args.fleet_signals} signals every {args.fleet_period:g} s for {args.fleet_seconds:g} s: connected in "
            f"{run['connected_s']:.1f} s; {run['batches']:,} of {run['expected']:,} batches acknowledged, "
            f"{run['stored']:,} stored by 2 workers; offered {run['offered']:,.0f} signals/s; lag p99 "
            f"{run['lag_p99_s']:.2f} s; the generator: {run['connect_cpu_s']:.0f} CPU s connecting, "
            f"{run['send_cpu_s'] / (run['seconds'] + 1e-9):.0%} of a core sending, {run['max_rss_mb']:,.0f} MB peak"
        )
    if args.jobs_vehicles:
        from bench import jobs

        results["jobs"] = jobs.main(
            ["--vehicles", str(args.jobs_vehicles), "--cars", str(args.jobs_cars), "--runs", str(args.runs)]
        )
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
