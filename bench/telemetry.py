"""Telemetry from many cars into DuckDB, through Mosquitto and through the embedded broker, over
the secure link (mutual TLS, every car with its own certificate from a fleet CA, the brokers
enforcing the link's access rules), and for comparison in the same run over plaintext Mosquitto.

    python -m bench.telemetry [--vehicles 1000] [--embedded-vehicles 300] [--seconds 15] [--burst 60]
                              [--brokers mosquitto,embedded,mosquitto-plaintext]

Each simulated vehicle is a real ``Uplink`` (its own MQTT connection and SQLite spool) publishing
20 signals once a second; the cloud side is the real ``Ingest`` into a DuckDB file. Measured in the
same run for each broker:

- sustained: signals stored per second while every car sends 20 signals at 1 Hz (each car at its
  own phase within the second), and the lag from a sample's timestamp to its batch being stored
  (p50, p99);
- backlog: every car's spool takes ``--burst`` batches at once (as after an outage; the uplink
  sends a backlog in bundles); stored signals per second from then until the last one is in (the
  ingest capacity, sustained over the drain);
- the fleet overview (``GET /api/v1/fleet`` data for every car) built from the store;
- connection set-up: from the cars' start until every one is connected (a TLS handshake and an
  ECDSA client certificate each on the secure link).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.fleet.mosquitto import write_mosquitto_config
from opensdv.cloud.mqtt_broker import embedded_mqtt_broker
from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import Sample, VehicleStatus
from opensdv.link.identity import IdentityFiles
from opensdv.link.mqtt import MqttConnector
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink

console = Console()
SIGNALS = [f"Vehicle.Bench.Signal{n:02d}" for n in range(20)]


@asynccontextmanager
async def _mosquitto(fleet: FleetCa, tmp: Path, *, plaintext: bool = False) -> AsyncIterator[str]:
    """A Mosquitto of the benchmark's own, as `opensdv fleet mosquitto-config` writes it (or, for
    the comparison only, a plaintext listener on loopback)."""
    port = _free_port()
    broker = fleet.provision_service("broker", tmp / "broker", hosts=("127.0.0.1",))
    files = write_mosquitto_config(
        tmp / "mosquitto", broker, fleet.crl_file, port=port, bind="127.0.0.1", max_queued_messages=1_000_000,
        run_as=getpass.getuser() if os.geteuid() == 0 else None,
    )  # fmt: skip
    if plaintext:
        files.config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                                "max_queued_messages 1000000\n")  # fmt: skip
    with files.config.open("a") as conf:
        conf.write("max_connections -1\n")
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    process = subprocess.Popen([mosquitto, "-c", str(files.config)], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            await asyncio.sleep(0.05)
        yield f"mqtt{'' if plaintext else 's'}://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _connector(url: str, identity: IdentityFiles | None) -> MqttConnector:
    return MqttConnector(url, identity, allow_plaintext=identity is None)


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
    secure = url.startswith("mqtts")
    uplinks = [
        Uplink(
            _connector(url, IdentityFiles.under(tmp / "cars" / _vin(n), "vehicle") if secure else None),
            VehicleStatus(vin=_vin(n), online=True, at=time.time()),
            Spool(tmp / f"spool-{n}.db"),
            window=64,
        )
        for n in range(vehicles)
    ]
    connecting = time.perf_counter()
    tasks = [asyncio.create_task(u.run()) for u in uplinks]
    for uplink in uplinks:
        await asyncio.wait_for(uplink.connected.wait(), 300)
    done.put(time.perf_counter() - connecting)
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


async def _run(name: str, vehicles: int, seconds: float, burst: int, tmp: Path) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    ready, go, burst_go, done = context.Event(), context.Event(), context.Event(), context.Queue()
    fleet = FleetCa.init(tmp / "ca")
    provisioning = time.perf_counter()
    for n in range(vehicles):
        fleet.provision(_vin(n), tmp / "cars" / _vin(n))
    provision_s = time.perf_counter() - provisioning
    plaintext = name == "mosquitto-plaintext"
    ingest_identity = None if plaintext else fleet.provision_service("ingest", tmp / "services")
    if name == "embedded":
        broker_identity = fleet.provision_service("broker", tmp / "broker", hosts=("127.0.0.1",))
        broker: Any = embedded_mqtt_broker(
            broker_identity, crl_file=fleet.crl_file, revoked_file=fleet.revoked_file
        )
    else:
        broker = _mosquitto(fleet, tmp, plaintext=plaintext)
    async with broker as url:
        store = TelemetryStore(tmp / "bench.duckdb")
        ingest = Ingest(
            _connector(url, ingest_identity),
            store,
            identifier=f"opensdv-ingest-{time.time_ns()}",
            durable=False,
        )
        task = asyncio.create_task(ingest.run())
        await asyncio.wait_for(ingest.subscribed.wait(), 30)
        cars = context.Process(
            target=_cars_process, args=(url, vehicles, seconds, burst, tmp, ready, go, burst_go, done)
        )
        cars.start()
        with console.status(f"{vehicles} cars connecting to {url}"):
            connect_s = await asyncio.to_thread(done.get)
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
        "connect_s": connect_s,
        "provision_ms_per_car": provision_s * 1000 / vehicles,
    }


def main(argv: list[str]) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry")
    parser.add_argument("--vehicles", type=int, default=1000, help="cars through Mosquitto")
    parser.add_argument("--embedded-vehicles", type=int, default=300,
                        help="cars through the embedded broker (it saturates between 300 and 600)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--burst", type=int, default=60, help="backlog batches per car")
    parser.add_argument("--brokers", default="mosquitto,embedded,mosquitto-plaintext",
                        help="mosquitto and embedded run the secure link; mosquitto-plaintext is the comparison")  # fmt: skip
    args = parser.parse_args(argv)
    results = {}
    for name in args.brokers.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            cars = args.embedded_vehicles if name == "embedded" else args.vehicles
            results[name] = asyncio.run(_run(name, cars, args.seconds, args.burst, Path(tmp))) | {
                "cars": cars
            }
    table = Table(
        "broker", "cars", "offered signals/s", "sustained signals/s", "lag p50 s", "lag p99 s", "backlog drain signals/s",
        "fleet overview ms", "all connected s", "provision ms/car", title=f"cars x 20 signals at 1 Hz, {args.seconds:g} s; backlog {args.burst} batches/car",
    )  # fmt: skip
    for name, r in results.items():
        table.add_row(
            name, f"{r['cars']:,}", f"{r['offered_signals_per_s']:,.0f}", f"{r['sustained_signals_per_s']:,.0f}", f"{r['lag_p50_s']:.3f}",
            f"{r['lag_p99_s']:.3f}", f"{r['drain_signals_per_s']:,.0f}", f"{r['overview_ms']:.0f}", f"{r['connect_s']:.1f}",
            f"{r['provision_ms_per_car']:.1f}",
        )  # fmt: skip
    console.print(table)
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
