"""A load generator: thousands of cars from one process, each a real ``Uplink`` with its own MQTT
connection (mutual TLS with its own certificate from the fleet CA, so the broker's ACL applies to
it as to a car) and its own spool — in memory, since a SQLite file per car would need three file
descriptors each and 10,000 cars would pass the usual limit of 20,000.

    python -m bench.loadgen --url mqtts://127.0.0.1:8883 --ca-dir CA --cars-dir CARS --cars 10000 --seconds 60

Two loads: ``steady`` (one batch of ``signals`` signals a second per car, each car at its own phase
within the second, as cars are not in step) and ``backlog`` (each car records ``batches`` batches
at once, as after a tunnel or an outage, sends them and stops once the broker has them all).
Runs in its own process (``spawn``) when used by a benchmark, so the cars and the cloud do not
share an interpreter; what it did comes back on a queue.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opensdv.cloud.fleet.identities import FleetCa
from opensdv.link.fleet import Sample, VehicleStatus
from opensdv.link.identity import IdentityFiles
from opensdv.link.mqtt import MqttConnector
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink

__all__ = ["Load", "provision_cars", "start_in_process", "vin"]

KEEPALIVE_S = 60  # a telematics unit's on a cellular link (the platform's default of 10 s is for one car)
CONNECT_WAVE = 250  # cars connecting at once: the broker's listen backlog and TLS handshakes bound it


def vin(n: int) -> str:
    return f"JN1LDGEN0AA{n:06d}"


def provision_cars(ca: FleetCa, cars_dir: Path, count: int) -> list[str]:
    """Each car's identity under ``cars_dir/<VIN>`` (issued once; a second call reuses them)."""
    vins = [vin(n) for n in range(count)]
    for name in vins:
        if IdentityFiles.under(cars_dir / name, "vehicle").missing():
            ca.provision(name, cars_dir / name)
    return vins


@dataclass(frozen=True)
class Load:
    url: str
    cars_dir: Path
    vins: list[str]
    signals: int = 10  # per batch (a car's second)
    mode: str = "steady"  # or "backlog"
    seconds: float = 10.0  # steady: how long each car sends
    batches: int = 20  # backlog: batches per car
    period: float = 1.0  # steady: seconds between a car's batches


def _raise_file_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _samples(signals: int, value: float, ts: float) -> list[Sample]:
    return [Sample(path=f"Vehicle.Bench.Signal{k:02d}", value=value, ts=ts) for k in range(signals)]


async def _connected(load: Load) -> tuple[list[Uplink], list[asyncio.Task[None]]]:
    uplinks = [
        Uplink(
            MqttConnector(
                load.url, IdentityFiles.under(load.cars_dir / name, "vehicle"),
                keepalive_s=KEEPALIVE_S, connect_timeout_s=60.0,
            ),
            VehicleStatus(vin=name, online=True, at=time.time()),
            Spool(":memory:"),
            window=64,
        )
        for name in load.vins
    ]
    tasks: list[asyncio.Task[None]] = []
    for start in range(0, len(uplinks), CONNECT_WAVE):  # a few hundred handshakes at a time, as
        wave = uplinks[start : start + CONNECT_WAVE]  # cars coming into coverage; not all 10,000 at once
        tasks += [asyncio.create_task(u.run()) for u in wave]
        await asyncio.wait_for(asyncio.gather(*(u.connected.wait() for u in wave)), 600)
    return uplinks, tasks


def _ticks(load: Load) -> int:
    """Batches each car sends in a steady load."""
    return max(1, round(load.seconds / load.period))


async def _steady(load: Load, uplinks: list[Uplink]) -> None:
    started = time.time() + 0.5
    ticks = _ticks(load)

    async def drive(uplink: Uplink, phase: float) -> None:
        for k in range(ticks):
            await asyncio.sleep(max(0.0, started + phase + k * load.period - time.time()))
            uplink.record(_samples(load.signals, float(k), time.time()))

    await asyncio.gather(*(drive(u, n / len(uplinks) * load.period) for n, u in enumerate(uplinks)))


async def _backlog(load: Load, uplinks: list[Uplink]) -> None:
    now = time.time()
    for uplink in uplinks:
        for k in range(load.batches):
            uplink.record(_samples(load.signals, float(k), now))
    for uplink in uplinks:  # sent once the broker has acknowledged every batch (QoS 1)
        while uplink.published < load.batches:
            await asyncio.sleep(0.05)


async def run(load: Load, report: Any) -> None:
    """Connect every car, report ``("connected", seconds)``, run the load, report ``("done", ...)``."""
    _raise_file_limit()
    began = time.perf_counter()
    uplinks, _tasks = await _connected(load)
    report.put(("connected", time.perf_counter() - began))
    connect_cpu_s = _cpu_s()
    began = time.perf_counter()
    await (_steady(load, uplinks) if load.mode == "steady" else _backlog(load, uplinks))
    sent_s = time.perf_counter() - began
    expected = len(uplinks) * (load.batches if load.mode == "backlog" else _ticks(load))
    while sum(u.published for u in uplinks) < expected and time.perf_counter() - began < sent_s + 120:
        await asyncio.sleep(0.1)  # every batch acknowledged by the broker (QoS 1) before the report
    report.put(("done", {
        "seconds": sent_s, "batches": sum(u.published for u in uplinks), "expected": expected,
        "connect_cpu_s": connect_cpu_s, "send_cpu_s": _cpu_s() - connect_cpu_s,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))  # fmt: skip
    # then leave at once: ten thousand connections need no orderly goodbye (the broker sees them
    # drop, as it would a fleet going out of coverage), and cancelling them all only makes noise
    report.close()
    report.join_thread()
    os._exit(0)


def _run_process(load: Load, report: Any) -> None:
    asyncio.run(run(load, report))


def start_in_process(load: Load) -> tuple[multiprocessing.process.BaseProcess, Any]:
    """The load in a process of its own; returns it and the queue it reports on."""
    context = multiprocessing.get_context("spawn")
    report = context.Queue()
    process = context.Process(target=_run_process, args=(load, report), daemon=True)
    process.start()
    return process, report


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the fleet link's broker, mqtts://host:port")
    parser.add_argument("--ca-dir", type=Path, required=True, help="the fleet CA (opensdv fleet ca init)")
    parser.add_argument("--cars-dir", type=Path, required=True, help="where the cars' identities are kept")
    parser.add_argument("--cars", type=int, default=10_000)
    parser.add_argument("--signals", type=int, default=10)
    parser.add_argument("--mode", choices=["steady", "backlog"], default="steady")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--period", type=float, default=1.0, help="steady: seconds between a car's batches")
    args = parser.parse_args(argv)
    vins = provision_cars(FleetCa(args.ca_dir), args.cars_dir, args.cars)
    load = Load(args.url, args.cars_dir, vins, args.signals, args.mode, args.seconds, args.batches, args.period)
    process, queue = start_in_process(load)
    for _ in range(2):
        print(*queue.get())
    process.join()


if __name__ == "__main__":
    main(sys.argv[1:])
