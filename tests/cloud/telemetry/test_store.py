"""The telemetry store, on both backends (the DuckDB file and PostgreSQL): exactly once, mixed
value types, down-sampling, statuses and events, Parquet export of a time range; on PostgreSQL
also day partitions, their retention, and several writers at once."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest

from opensdv.clock import FakeClock
from opensdv.cloud.telemetry.postgres import PostgresTelemetryStore, conninfo
from opensdv.cloud.telemetry.store import TelemetryStorage, open_telemetry_store
from opensdv.link.fleet import Sample, TelemetryBatch, VehicleEvent, VehicleStatus
from opensdv.storage import StorageError
from tests.conftest import need

VIN = "JHMHNDAE0ED000002"
DAY = 86_400.0


def _postgres_url() -> str:
    url = os.environ.get("OPENSDV_TEST_POSTGRES_URL")
    need(bool(url), "OPENSDV_TEST_POSTGRES_URL is not set (make test starts PostgreSQL when it can)")
    with psycopg.connect(conninfo(str(url)), autocommit=True) as connection:  # a clean schema for every test
        for table in ("telemetry_samples", "telemetry_batches", "telemetry_status", "telemetry_events"):
            connection.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    return str(url)


@pytest.fixture(params=["duckdb", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TelemetryStorage]:
    opened = open_telemetry_store(tmp_path / "t.duckdb" if request.param == "duckdb" else _postgres_url())
    yield opened
    opened.close()


def _batch(seq: int, *samples: Sample, vin: str = VIN) -> TelemetryBatch:
    return TelemetryBatch(vin=vin, seq=seq, samples=list(samples))


def test_batches_once_values_of_every_type_and_parquet(store: TelemetryStorage, tmp_path: Path) -> None:
    first = _batch(
        0,
        Sample(path="Vehicle.Speed", value=12.5, ts=1.0),
        Sample(path="Vehicle.IsMoving", value=True, ts=1.0),
        Sample(path="Vehicle.Powertrain.TractionBattery.Range", value=120000, ts=1.0),
        Sample(path="Vehicle.Powertrain.TractionBattery.ErrorCodes", value=["P0A80"], ts=1.0),
    )
    assert store.add_many([first, first, _batch(1, Sample(path="Vehicle.Speed", value=20.0, ts=2.0))], 3.0) == (2, 1)
    assert store.add(first, 4.0) is False
    latest = store.latest(VIN)
    assert latest["Vehicle.Speed"].value == 20.0 and latest["Vehicle.IsMoving"].value is True
    assert latest["Vehicle.Powertrain.TractionBattery.ErrorCodes"].value == ["P0A80"]
    assert latest["Vehicle.Powertrain.TractionBattery.Range"].value == 120000
    assert [(p.ts, p.value) for p in store.series(VIN, "Vehicle.Speed", 0, 10, bucket_s=10)] == [(0.0, 16.25)]
    assert [(p.ts, p.value) for p in store.series(VIN, "Vehicle.Speed", 0, 10)] == [(1.0, 12.5), (2.0, 20.0)]
    assert store.sequences(VIN) == [0, 1] and store.count() == 5 and store.last_seen() == {VIN: 3.0}
    assert store.latest_of(["Vehicle.Speed"]) == {VIN: {"Vehicle.Speed": latest["Vehicle.Speed"]}}
    store.add(_batch(0, Sample(path="Vehicle.Speed", value=5.0, ts=1.5), vin="JN1NSSAN0DD000001"), 3.0)
    many = store.series_of([VIN, "JN1NSSAN0DD000001", "JN1NSSAN0DD000009"], "Vehicle.Speed", 0, 10, 1.0)
    assert {vin: (list(t), list(v)) for vin, (t, v) in many.items()} == {
        VIN: ([1.0, 2.0], [12.5, 20.0]), "JN1NSSAN0DD000001": ([1.0], [5.0])
    }  # several cars in one query; a car without data is absent
    exported = store.export_parquet(tmp_path / "export")
    assert duckdb.sql(f"SELECT count(*) FROM '{exported}'").fetchall() == [(6,)]
    ranged = store.export_parquet(tmp_path / "ranged", start=1.5, end=10.0)  # a time range
    assert sorted(duckdb.sql(f"SELECT path, ts, num FROM '{ranged}'").fetchall()) == [
        ("Vehicle.Speed", 1.5, 5.0), ("Vehicle.Speed", 2.0, 20.0)
    ]


def test_statuses_last_one_wins_and_events_newest_first(store: TelemetryStorage) -> None:
    store.set_statuses([
        VehicleStatus(vin=VIN, online=True, at=1.0, brand="Honda", model="e", software={"VCU": "1.0.0"}),
        VehicleStatus(vin=VIN, online=False, at=2.0, brand="Honda", model="e", software={"VCU": "1.1.0"}),
    ])  # fmt: skip
    store.set_status(VehicleStatus(vin=VIN, online=True, at=3.0, brand="Honda", model="e", software={"VCU": "2.0.0"}))
    assert store.statuses()[VIN].software == {"VCU": "2.0.0"} and store.statuses()[VIN].online
    store.add_events([VehicleEvent(vin=VIN, at=t, kind="safety-denied", detail=f"#{t:g}") for t in (5.0, 6.0)])
    store.add_event(VehicleEvent(vin=VIN, at=7.0, kind="command-refused", detail="expired"))
    assert [e.detail for e in store.events(VIN, limit=2)] == ["expired", "#6"]
    assert store.event_counts(since=5.5) == {VIN: 2}


def test_samples_fall_into_day_partitions_and_old_days_are_dropped() -> None:
    clock = FakeClock(epoch_s=20 * DAY + 100.0)
    store = PostgresTelemetryStore(_postgres_url(), retention_days=7, clock=clock)
    try:
        now = clock.time()
        store.add_many([_batch(n, Sample(path="Vehicle.Speed", value=float(n), ts=(10 + n) * DAY + 5)) for n in range(5)], now)
        with psycopg.connect(conninfo(store.url)) as connection:
            partitions = connection.execute(
                "SELECT tableoid::regclass::text, count(*) FROM telemetry_samples GROUP BY 1 ORDER BY 1"
            ).fetchall()
        assert partitions == [(f"telemetry_samples_p197001{11 + n:02d}", 1) for n in range(5)]
        dropped = store.drop_expired()  # 7 days before day 20: the partitions of days 10..12 go
        assert dropped == ["telemetry_samples_p19700111", "telemetry_samples_p19700112", "telemetry_samples_p19700113"]
        assert [p.value for p in store.series(VIN, "Vehicle.Speed", 0, 30 * DAY)] == [3.0, 4.0]
        store.add(_batch(9, Sample(path="Vehicle.Speed", value=9.0, ts=11 * DAY)), now)  # an old day again: made anew
        assert store.count() == 3 and store.sequences(VIN) == [0, 1, 2, 3, 4, 9]  # batch records kept: received now
    finally:
        store.close()


def test_several_writers_store_each_batch_once() -> None:
    url = _postgres_url()
    writers = [PostgresTelemetryStore(url) for _ in range(3)]
    batches = [_batch(seq, Sample(path="Vehicle.Speed", value=1.0, ts=1e9 + seq)) for seq in range(300)]
    outcomes: list[tuple[int, int]] = []

    def write(store: PostgresTelemetryStore) -> None:
        for start in range(0, len(batches), 25):  # every writer gets every batch (QoS 1 repeats, resends)
            outcomes.append(store.add_many(batches[start : start + 25], 1.0))

    threads = [threading.Thread(target=write, args=(w,)) for w in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sum(stored for stored, _ in outcomes) == 300 and sum(d for _, d in outcomes) == 600
        assert writers[0].sequences(VIN) == list(range(300)) and writers[0].count() == 300
    finally:
        for store in writers:
            store.close()


def test_a_database_that_cannot_be_reached_is_named() -> None:
    with pytest.raises(StorageError, match="cannot connect to the telemetry database at 127.0.0.1:1/none"):
        PostgresTelemetryStore("postgresql+psycopg://user:secret@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="is not a PostgreSQL URL"):
        conninfo("mysql://x@y/z")


def _advisory_waiters(url: str, count: int) -> None:
    """Until ``count`` sessions wait for the workers' schema lock (a condition, not a fixed sleep)."""
    with psycopg.connect(conninfo(url), autocommit=True) as watcher:
        for _ in range(1000):
            waiting = watcher.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").fetchone()
            if waiting is not None and waiting[0] >= count:
                return
            watcher.execute("SELECT pg_sleep(0.01)")
    raise AssertionError(f"{count} sessions never waited for the schema lock")


def test_a_worker_starting_while_another_meets_a_new_day_does_not_deadlock() -> None:
    """The order that deadlocked two ingest workers: one starting (its schema check locks the batch
    table) gets the schema lock first, while the other, writing the first batches of a new day,
    waits for it to make that day's partition. Both must go through."""
    from concurrent.futures import ThreadPoolExecutor

    from opensdv.cloud.telemetry.postgres import _LOCK_KEY

    url = _postgres_url()
    writer = PostgresTelemetryStore(url)
    batches = [_batch(seq, Sample(path="Vehicle.Speed", value=1.0, ts=40 * DAY + seq)) for seq in range(10)]
    with psycopg.connect(conninfo(url)) as holder, ThreadPoolExecutor(2) as pool:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])  # held until the commit below
        starting = pool.submit(PostgresTelemetryStore, url)
        _advisory_waiters(url, 1)
        writing = pool.submit(writer.add_many, batches, 1.0)
        _advisory_waiters(url, 2)
        holder.commit()
        started = starting.result(timeout=60)
        assert writing.result(timeout=60) == (10, 0)
    try:
        assert started.sequences(VIN) == list(range(10))
    finally:
        started.close()
        writer.close()
