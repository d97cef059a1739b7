"""Ingest past one process: workers of one group share the cars' traffic through an MQTT shared
subscription on Mosquitto and store into one PostgreSQL; every batch is stored exactly once, every
car hears its confirmations, and a worker can leave (or join) while the cars send."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.postgres import PostgresTelemetryStore
from opensdv.link.fleet import Sample, VehicleStatus
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from tests.cloud.telemetry.test_store import _postgres_url
from tests.conftest import free_port, need_mosquitto
from tests.fleet_identities import Fleet

CARS = [f"JN1NSSAN0DD{n:06d}" for n in range(1, 7)]
BATCHES = 40


def _uplink(fleet: Fleet, url: str, vin: str, directory: Path) -> Uplink:
    status = VehicleStatus(vin=vin, online=True, at=time.time(), brand="Nissan", model="Leaf 40 kWh")
    return Uplink(fleet.connector(url, vin), status, Spool(directory / f"{vin}.db"))


async def test_workers_of_a_group_store_each_batch_once_and_confirm_it(fleet: Fleet, tmp_path: Path) -> None:
    need_mosquitto()
    database = _postgres_url()
    async with fleet.mosquitto(free_port(), tmp_path) as url:
        stores = [PostgresTelemetryStore(database) for _ in range(3)]
        workers = [
            Ingest(fleet.connector(url, "ingest"), store, f"opensdv-ingest-{n}", durable=False, share_group="ingest")
            for n, store in enumerate(stores)
        ]
        running = {id(w): asyncio.create_task(w.run(confirm_s=0.2)) for w in workers}
        uplinks = [_uplink(fleet, url, vin, tmp_path) for vin in CARS]
        cars = [asyncio.create_task(u.run()) for u in uplinks]
        try:
            await asyncio.wait_for(asyncio.gather(*(w.subscribed.wait() for w in workers)), 10)
            for n in range(BATCHES // 2):
                for uplink in uplinks:
                    uplink.record([Sample(path="Vehicle.Speed", value=float(n), ts=1e9 + n)])
            await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 30)
            # one worker leaves while the cars go on sending: the others take its share
            leaving = workers.pop()
            running.pop(id(leaving)).cancel()
            for n in range(BATCHES // 2, BATCHES):
                for uplink in uplinks:
                    uplink.record([Sample(path="Vehicle.Speed", value=float(n), ts=1e9 + n)])
            await asyncio.wait_for(asyncio.gather(*(u.wait_confirmed() for u in uplinks)), 30)

            for vin in CARS:
                assert stores[0].sequences(vin) == list(range(BATCHES))  # every batch, once
            assert stores[0].count() == len(CARS) * BATCHES
            assert all(u.confirmed == BATCHES for u in uplinks)  # each car heard of every batch
            assert all(w.stored > 0 for w in [*workers, leaving])  # the traffic was shared
            assert sum(w.stored for w in [*workers, leaving]) == len(CARS) * BATCHES
            # each message went to one worker of the group: none saw a batch another had stored
            assert sum(w.duplicates for w in [*workers, leaving]) == sum(u.resent for u in uplinks)
        finally:
            for task in [*cars, *running.values()]:
                task.cancel()
            await asyncio.gather(*cars, *running.values(), return_exceptions=True)
            for store in stores:
                store.close()
