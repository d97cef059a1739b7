"""Ingest past one process: workers of one group share the cars' traffic through an MQTT shared
subscription on Mosquitto and store into one PostgreSQL. With 200 cars sending, one worker is
killed mid-stream and started again: every batch is stored exactly once, every car's spool empties
(each car heard its confirmations), and the traffic really was shared."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.postgres import PostgresTelemetryStore
from opensdv.link.fleet import Sample, VehicleStatus
from opensdv.link.mqtt import end_session
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from tests.cloud.telemetry.test_store import _postgres_url
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import Fleet

CARS = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 201)]
ROUNDS = 6  # batches per car


def _uplink(fleet: Fleet, url: str, vin: str, directory: Path) -> Uplink:
    status = VehicleStatus(vin=vin, online=True, at=time.time(), brand="Nissan", model="Leaf 40 kWh")
    # a car resends what the cloud has not confirmed after 3 s (30 s in a car): the killed worker's share
    return Uplink(fleet.connector(url, vin), status, Spool(directory / f"{vin}.db"), ack_timeout_s=3.0)


async def _record_rounds(uplinks: list[Uplink], rounds: range) -> None:
    for n in rounds:
        for uplink in uplinks:
            uplink.record([Sample(path=f"Vehicle.Bench.Signal{k}", value=float(n), ts=1e9 + n) for k in range(10)])
        await asyncio.sleep(0)  # let the uplinks send between rounds (mid-stream, not one burst)


async def test_a_worker_killed_mid_stream_loses_and_repeats_nothing(fleet: Fleet, tmp_path: Path) -> None:
    need_mosquitto()
    database = _postgres_url()
    async with fleet.mosquitto(free_port(), tmp_path) as url:
        stores = [PostgresTelemetryStore(database) for _ in range(2)]

        def worker(n: int) -> Ingest:
            return Ingest(fleet.connector(url, "ingest"), stores[n], f"opensdv-ingest-{n}", share_group="ingest")

        workers = [worker(0), worker(1)]
        running = [asyncio.create_task(w.run(confirm_s=0.2)) for w in workers]
        uplinks = [_uplink(fleet, url, vin, tmp_path) for vin in CARS]
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        try:
            await asyncio.wait_for(asyncio.gather(*(w.subscribed.wait() for w in workers)), 10)
            await asyncio.wait_for(asyncio.gather(*(u.connected.wait() for u in uplinks)), 60)
            await _record_rounds(uplinks, range(ROUNDS // 2))
            await asyncio.wait_for(workers[1].written.wait_until(lambda: workers[1].stored > 0), 30)
            running[1].cancel()  # killed mid-stream: what it had received but not confirmed is the cars' to resend
            await asyncio.gather(running[1], return_exceptions=True)
            killed = workers[1]
            await _record_rounds(uplinks, range(ROUNDS // 2, ROUNDS))
            workers[1] = worker(1)  # started again: the same durable session
            running[1] = asyncio.create_task(workers[1].run(confirm_s=0.2))
            await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 60)

            for vin in CARS:
                assert stores[0].sequences(vin) == list(range(ROUNDS))  # every batch, once
            assert stores[0].count() == len(CARS) * ROUNDS * 10
            assert all(len(u.spool) == 0 for u in uplinks)  # every spool emptied
            every = [*workers, killed]
            assert sum(w.stored for w in every) == len(CARS) * ROUNDS
            assert workers[0].stored > 0 and killed.stored + workers[1].stored > 0  # the traffic was shared
        finally:
            for task in [*cars, *running]:
                task.cancel()
            await asyncio.gather(*cars, *running, return_exceptions=True)
            for n in range(2):
                await end_session(fleet.connector(url, "ingest"), f"opensdv-ingest-{n}")
            for store in stores:
                store.close()
