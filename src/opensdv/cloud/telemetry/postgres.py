"""Telemetry in PostgreSQL: what several ingest workers and API processes share past one machine.

The same contract as the embedded DuckDB store (``TelemetryStore``): ``telemetry_batches`` has the
primary key (vin, seq), so a batch is stored once however many workers receive it (a second
worker's insert waits for the first's transaction and then finds the key taken: no lock of our
own, no duplicate samples). Samples go in with COPY (binary) into ``telemetry_samples``, which is
partitioned by day on the sample time (native declarative partitioning); a retention setting drops
whole old partitions, which is instant, instead of deleting rows. One index serves the API's
queries: (vin, path, ts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
from numpy.typing import NDArray

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.telemetry.store import (
    CAPTURE_SCHEMA,
    Capture,
    Point,
    capture_rows,
    columns_of,
    group_by_vin,
    join_value,
    points_by_vin,
    samples_by_path,
)
from opensdv.link.campaigns import CampaignStates
from opensdv.link.fleet import TelemetryBatch, VehicleEvent, VehicleStatus
from opensdv.storage import StorageError

__all__ = ["PostgresTelemetryStore", "conninfo"]

DAY_S = 86_400
_LOCK_KEY = 7_165_123  # pg_advisory_xact_lock: one schema change (a table, a partition) at a time among workers
_SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_batches (
    vin text NOT NULL, seq bigint NOT NULL, received_at double precision NOT NULL, samples integer NOT NULL,
    PRIMARY KEY (vin, seq));
CREATE INDEX IF NOT EXISTS telemetry_batches_received ON telemetry_batches (received_at);
CREATE TABLE IF NOT EXISTS telemetry_samples (
    vin text NOT NULL, seq bigint NOT NULL, path text NOT NULL, ts double precision NOT NULL,
    num double precision, other text) PARTITION BY RANGE (ts);
CREATE INDEX IF NOT EXISTS telemetry_samples_vin_path_ts ON telemetry_samples (vin, path, ts);
CREATE TABLE IF NOT EXISTS telemetry_status (
    vin text PRIMARY KEY, online boolean NOT NULL, "at" double precision NOT NULL, brand text, model text,
    software text NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry_events (vin text NOT NULL, "at" double precision NOT NULL, kind text NOT NULL,
    detail text NOT NULL);
CREATE INDEX IF NOT EXISTS telemetry_events_vin_at ON telemetry_events (vin, "at");
CREATE TABLE IF NOT EXISTS telemetry_captures (
    vin text NOT NULL, seq bigint NOT NULL, campaign text NOT NULL, version integer NOT NULL,
    trigger_ts double precision, received_at double precision NOT NULL, samples integer NOT NULL,
    PRIMARY KEY (vin, seq));
CREATE INDEX IF NOT EXISTS telemetry_captures_campaign ON telemetry_captures (campaign, vin, seq);
CREATE TABLE IF NOT EXISTS telemetry_campaign_states (vin text PRIMARY KEY, states text NOT NULL);
"""
_PARTITIONS = """
SELECT child.relname FROM pg_inherits
JOIN pg_class parent ON pg_inherits.inhparent = parent.oid JOIN pg_class child ON pg_inherits.inhrelid = child.oid
WHERE parent.relname = 'telemetry_samples'
"""


def conninfo(url: str) -> str:
    """A libpq URL from the SQLAlchemy form the settings use (``postgresql+psycopg://``)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise StorageError(f"{url!r} is not a PostgreSQL URL (postgresql://user@host:port/database)")
    return f"postgresql://{rest}"


def _partition(day: int) -> str:
    return f"telemetry_samples_p{datetime.fromtimestamp(day * DAY_S, UTC):%Y%m%d}"


class PostgresTelemetryStore:
    """Telemetry in the PostgreSQL database at ``url``; ``retention_days`` (if set) is how long
    samples are kept (``drop_expired`` drops older day partitions). Safe to use from several threads:
    one connection writes, one reads."""

    def __init__(self, url: str, *, retention_days: float | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = url
        self.retention_days = retention_days
        self.clock = clock
        self._info = conninfo(url)
        self._writer = self._connect()
        self._reader = self._connect()
        self._write_lock, self._read_lock = threading.Lock(), threading.Lock()
        self._days: set[int] = set()
        with self._transaction(schema_change=True) as cursor:
            cursor.execute(_SCHEMA)
        self._days = self._known_days()

    def _known_days(self) -> set[int]:
        return {_day_of(name) for (name,) in self._query(_PARTITIONS)}

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._info, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            shown = self.url.split("@")[-1]
            raise StorageError(f"cannot connect to the telemetry database at {shown}: {exc}".strip()) from None

    @contextmanager
    def _transaction(self, schema_change: bool = False) -> Iterator[psycopg.Cursor[Any]]:
        """One write transaction (serialised in this process, concurrent with other workers'; a
        schema change waits for any other worker's to finish first)."""
        with self._write_lock:
            if self._writer.closed or self._writer.broken:
                self._writer = self._connect()
            try:
                with self._writer.transaction(), self._writer.cursor() as cursor:
                    if schema_change:
                        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
                    yield cursor
            except psycopg.Error as exc:
                self._days = self._known_days()  # a partition another worker dropped, say: look again
                raise StorageError(f"the telemetry database did not take the write: {exc}".strip()) from None

    def _query(self, sql: str, parameters: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._read_lock:
            if self._reader.closed or self._reader.broken:
                self._reader = self._connect()
            try:
                return self._reader.execute(sql, parameters).fetchall()
            except psycopg.OperationalError as exc:
                raise StorageError(f"the telemetry database did not answer: {exc}".strip()) from None

    # ------------------------------------------------------------------------------ writes

    def add(self, batch: TelemetryBatch, received_at: float) -> bool:
        return self.add_many([batch], received_at) == (1, 0)

    def add_many(self, batches: list[TelemetryBatch], received_at: float) -> tuple[int, int]:
        """Store batches in one transaction; returns (stored, duplicates)."""
        unique = {(b.vin, b.seq): b for b in batches}
        self._ensure_partitions({int(sample.ts // DAY_S) for b in unique.values() for sample in b.samples})
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO telemetry_batches SELECT * FROM unnest(%s::text[], %s::bigint[], %s::float8[], %s::int[])"
                " ON CONFLICT DO NOTHING RETURNING vin, seq",
                [[k[0] for k in unique], [k[1] for k in unique], [received_at] * len(unique),
                 [len(b.samples) for b in unique.values()]],
            )  # fmt: skip
            new = {(vin, seq) for vin, seq in cursor.fetchall()}
            columns = columns_of([b for k, b in unique.items() if k in new])
            if columns["vin"]:
                with cursor.copy("COPY telemetry_samples (vin, seq, path, ts, num, other) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(["text", "int8", "text", "float8", "float8", "text"])
                    for row in zip(*columns.values(), strict=True):
                        copy.write_row(row)
            captured = capture_rows([b for k, b in unique.items() if k in new], received_at)
            if captured:
                cursor.executemany("INSERT INTO telemetry_captures VALUES (%s, %s, %s, %s, %s, %s, %s)", captured)
        return len(new), len(batches) - len(new)

    def _ensure_partitions(self, days: set[int]) -> None:
        """A partition for each day the samples fall on, made once, in a transaction of its own
        before the write. Why: a schema change (a starting worker's schema check, another day's
        partition) locks the tables a write holds; made inside the write, a worker meeting a new day
        held the batch table while it waited for the schema lock, and the two deadlocked."""
        missing = sorted(days - self._days)
        if not missing:
            return
        with self._transaction(schema_change=True) as cursor:
            for day in missing:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {_partition(day)} PARTITION OF telemetry_samples"
                    f" FOR VALUES FROM ({day * DAY_S}) TO ({(day + 1) * DAY_S})"
                )
        self._days |= set(missing)

    def set_status(self, status: VehicleStatus) -> None:
        self.set_statuses([status])

    def set_statuses(self, statuses: list[VehicleStatus]) -> None:
        latest = list({status.vin: status for status in statuses}.values())
        if not latest:
            return
        with self._transaction() as cursor:
            cursor.execute(
                'INSERT INTO telemetry_status SELECT * FROM unnest(%s::text[], %s::bool[], %s::float8[], %s::text[],'
                ' %s::text[], %s::text[]) ON CONFLICT (vin) DO UPDATE SET online = excluded.online, "at" = excluded."at",'
                " brand = excluded.brand, model = excluded.model, software = excluded.software",
                [[s.vin for s in latest], [s.online for s in latest], [s.at for s in latest], [s.brand for s in latest],
                 [s.model for s in latest], [json.dumps(s.software) for s in latest]],
            )  # fmt: skip

    def set_campaign_states(self, states: list[CampaignStates]) -> None:
        latest = list({report.vin: report for report in states}.values())
        if not latest:
            return
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO telemetry_campaign_states SELECT * FROM unnest(%s::text[], %s::text[])"
                " ON CONFLICT (vin) DO UPDATE SET states = excluded.states",
                [[r.vin for r in latest], [r.model_dump_json() for r in latest]],
            )

    def add_event(self, event: VehicleEvent) -> None:
        self.add_events([event])

    def add_events(self, events: list[VehicleEvent]) -> None:
        if not events:
            return
        with self._transaction() as cursor:
            cursor.execute(
                "INSERT INTO telemetry_events SELECT * FROM unnest(%s::text[], %s::float8[], %s::text[], %s::text[])",
                [[e.vin for e in events], [e.at for e in events], [e.kind for e in events], [e.detail for e in events]],
            )

    def drop_expired(self) -> list[str]:
        """Drop the day partitions (and batch records) older than the retention; returns what went."""
        if self.retention_days is None:
            return []
        cutoff = self.clock.time() - self.retention_days * DAY_S
        expired = sorted(day for day in self._days if (day + 1) * DAY_S <= cutoff)
        with self._transaction(schema_change=True) as cursor:
            for day in expired:
                cursor.execute(f"DROP TABLE IF EXISTS {_partition(day)}")
            cursor.execute("DELETE FROM telemetry_batches WHERE received_at < %s", [cutoff])
            cursor.execute("DELETE FROM telemetry_captures WHERE received_at < %s", [cutoff])
            cursor.execute('DELETE FROM telemetry_events WHERE "at" < %s', [cutoff])
        self._days -= set(expired)
        return [_partition(day) for day in expired]

    # ------------------------------------------------------------------------------ reads

    def statuses(self) -> dict[str, VehicleStatus]:
        rows = self._query('SELECT vin, online, "at", brand, model, software FROM telemetry_status')
        return {
            vin: VehicleStatus(vin=vin, online=online, at=at, brand=brand, model=model, software=json.loads(software))
            for vin, online, at, brand, model, software in rows
        }

    def campaign_states(self) -> dict[str, CampaignStates]:
        rows = self._query("SELECT vin, states FROM telemetry_campaign_states")
        return {vin: CampaignStates.model_validate_json(states) for vin, states in rows}

    def captures(self, campaign: str) -> list[Capture]:
        rows = self._query(
            "SELECT vin, seq, version, trigger_ts, received_at, samples FROM telemetry_captures WHERE campaign = %s"
            " ORDER BY vin, seq", [campaign]
        )  # fmt: skip
        return [Capture(*row) for row in rows]

    def capture_samples(self, vin: str, seq: int) -> dict[str, list[Point]]:
        rows = self._query(
            "SELECT path, ts, num, other FROM telemetry_samples WHERE vin = %s AND seq = %s ORDER BY path, ts", [vin, seq]
        )
        return samples_by_path(rows)

    def export_campaign(self, campaign: str, target: Path) -> int:
        """Everything ``campaign`` collected as one Parquet file (zstd), streamed in row groups."""
        import pyarrow.parquet as pq

        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with self._read_lock, psycopg.connect(self._info) as connection, connection.cursor(name="export") as cursor:
            cursor.execute(
                "SELECT s.vin, c.version, c.trigger_ts, s.path, s.ts, s.num, s.other FROM telemetry_captures c"
                " JOIN telemetry_samples s ON s.vin = c.vin AND s.seq = c.seq WHERE c.campaign = %s"
                " ORDER BY s.vin, s.seq, s.ts", [campaign],
            )  # fmt: skip
            with pq.ParquetWriter(target, CAPTURE_SCHEMA, compression="zstd") as writer:
                while rows := cursor.fetchmany(100_000):
                    names = CAPTURE_SCHEMA.names
                    writer.write_table(pa.Table.from_pylist([dict(zip(names, r, strict=True)) for r in rows], CAPTURE_SCHEMA))
                    written += len(rows)
        return written

    def event_counts(self, since: float) -> dict[str, int]:
        return dict(self._query('SELECT vin, count(*) FROM telemetry_events WHERE "at" >= %s GROUP BY vin', [since]))

    def events(self, vin: str, limit: int = 50) -> list[VehicleEvent]:
        rows = self._query(
            'SELECT "at", kind, detail FROM telemetry_events WHERE vin = %s ORDER BY "at" DESC LIMIT %s', [vin, limit]
        )
        return [VehicleEvent(vin=vin, at=at, kind=kind, detail=detail) for at, kind, detail in rows]

    def sequences(self, vin: str) -> list[int]:
        return [r[0] for r in self._query("SELECT seq FROM telemetry_batches WHERE vin = %s ORDER BY seq", [vin])]

    def latest(self, vin: str) -> dict[str, Point]:
        rows = self._query(
            "SELECT DISTINCT ON (path) path, ts, num, other FROM telemetry_samples WHERE vin = %s ORDER BY path, ts DESC",
            [vin],
        )
        return {path: Point(ts, join_value(num, other)) for path, ts, num, other in rows}

    def latest_of(self, paths: list[str]) -> dict[str, dict[str, Point]]:
        rows = self._query(
            "SELECT DISTINCT ON (vin, path) vin, path, ts, num, other FROM telemetry_samples WHERE path = ANY(%s)"
            " ORDER BY vin, path, ts DESC",
            [paths],
        )
        return points_by_vin(rows)

    def last_seen(self) -> dict[str, float]:
        return {vin: float(t) for vin, t in self._query("SELECT vin, max(received_at) FROM telemetry_batches GROUP BY vin")}

    def series(self, vin: str, path: str, start: float, end: float, bucket_s: float | None = None) -> list[Point]:
        if bucket_s:
            rows = self._query(
                "SELECT floor(ts / %s) * %s AS t, avg(num) FROM telemetry_samples WHERE vin = %s AND path = %s"
                " AND ts >= %s AND ts < %s AND num IS NOT NULL GROUP BY t ORDER BY t",
                [bucket_s, bucket_s, vin, path, start, end],
            )
        else:
            rows = self._query(
                "SELECT ts, num FROM telemetry_samples WHERE vin = %s AND path = %s AND ts >= %s AND ts < %s ORDER BY ts",
                [vin, path, start, end],
            )
        return [Point(float(t), v) for t, v in rows]

    def series_of(
        self, vins: list[str], path: str, start: float, end: float, bucket_s: float
    ) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
        rows = self._query(
            "SELECT vin, floor(ts / %s) * %s AS t, avg(num) AS v FROM telemetry_samples WHERE vin = ANY(%s)"
            " AND path = %s AND ts >= %s AND ts < %s AND num IS NOT NULL GROUP BY vin, t ORDER BY vin, t",
            [bucket_s, bucket_s, vins, path, start, end],
        )
        columns = list(zip(*rows, strict=True)) or [(), (), ()]
        table = pa.table({"vin": pa.array(columns[0], pa.string()), "t": pa.array(columns[1], pa.float64()),
                          "v": pa.array(columns[2], pa.float64())})  # fmt: skip
        return group_by_vin(table)

    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM telemetry_samples")[0][0])

    def export_parquet(self, directory: Path, start: float | None = None, end: float | None = None) -> Path:
        """Samples with ``start <= ts < end`` as Parquet (zstd), streamed in row groups."""
        import pyarrow.parquet as pq

        from opensdv.cloud.telemetry.store import SAMPLE_SCHEMA

        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "samples.parquet"
        low, high = -1e300 if start is None else start, 1e300 if end is None else end
        with self._read_lock, psycopg.connect(self._info) as connection, connection.cursor(name="export") as cursor:
            cursor.execute(
                "SELECT vin, seq, path, ts, num, other FROM telemetry_samples WHERE ts >= %s AND ts < %s", [low, high]
            )
            with pq.ParquetWriter(target, SAMPLE_SCHEMA, compression="zstd") as writer:
                while rows := cursor.fetchmany(100_000):
                    writer.write_table(pa.Table.from_pylist([dict(zip(SAMPLE_SCHEMA.names, r, strict=True)) for r in rows], SAMPLE_SCHEMA))
        return target

    def close(self) -> None:
        with self._write_lock, self._read_lock:
            self._writer.close()
            self._reader.close()


def _day_of(partition: str) -> int:
    return int(datetime.strptime(partition.rsplit("_p", 1)[1], "%Y%m%d").replace(tzinfo=UTC).timestamp()) // DAY_S
