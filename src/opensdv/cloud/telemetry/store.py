"""Telemetry storage in DuckDB (embedded, one file): every batch exactly once, queries for the API.

``batches`` has the primary key (vin, seq): a batch QoS 1 delivers twice is stored once, and a
crash between storing and acknowledging only leads to a harmless repeat. Samples keep numeric
values in a DOUBLE column (what charts and down-sampling need) and everything else as JSON text.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from opensdv.errors import OpenSDVError
from opensdv.link.campaigns import CampaignStates
from opensdv.link.fleet import TelemetryBatch, VehicleEvent, VehicleStatus

__all__ = ["CAPTURE_SCHEMA", "SAMPLE_SCHEMA", "Capture", "Point", "TelemetryStorage", "TelemetryStore", "TelemetryStoreError", "capture_rows", "columns_of", "group_by_vin", "join_value", "open_telemetry_store", "points_by_vin", "samples_by_path"]

SAMPLE_SCHEMA = pa.schema([
    ("vin", pa.string()), ("seq", pa.int64()), ("path", pa.string()), ("ts", pa.float64()),
    ("num", pa.float64()), ("other", pa.string()),
])  # fmt: skip  # a sample row, in the store and in a Parquet export

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (vin VARCHAR, seq BIGINT, received_at DOUBLE, samples INTEGER, PRIMARY KEY (vin, seq));
CREATE TABLE IF NOT EXISTS samples (vin VARCHAR, seq BIGINT, path VARCHAR, ts DOUBLE, num DOUBLE, other VARCHAR);
CREATE TABLE IF NOT EXISTS status (vin VARCHAR PRIMARY KEY, online BOOLEAN, "at" DOUBLE, brand VARCHAR, model VARCHAR,
                                   software VARCHAR);
CREATE TABLE IF NOT EXISTS events (vin VARCHAR, "at" DOUBLE, kind VARCHAR, detail VARCHAR);
CREATE TABLE IF NOT EXISTS captures (vin VARCHAR, seq BIGINT, campaign VARCHAR, version INTEGER, trigger_ts DOUBLE,
                                     received_at DOUBLE, samples INTEGER, PRIMARY KEY (vin, seq));
CREATE TABLE IF NOT EXISTS campaign_states (vin VARCHAR PRIMARY KEY, states VARCHAR);
"""


@dataclass(frozen=True)
class Point:
    ts: float
    value: Any


@dataclass(frozen=True)
class Capture:
    """One batch a data collection campaign sent: a trigger's window, or a period's samples."""

    vin: str
    seq: int
    version: int
    trigger: float | None
    received_at: float
    samples: int


CAPTURE_SCHEMA = pa.schema([
    ("vin", pa.string()), ("version", pa.int32()), ("trigger_ts", pa.float64()), ("path", pa.string()),
    ("ts", pa.float64()), ("num", pa.float64()), ("other", pa.string()),
])  # fmt: skip  # a campaign's sample row in a Parquet export


class TelemetryStoreError(OpenSDVError):
    """A telemetry store could not be opened or read (the message names it and why)."""


class TelemetryStore:
    """One DuckDB database (a file, or ``:memory:``); safe to use from several threads."""

    def __init__(self, path: Path | str = ":memory:", read_only: bool = False) -> None:
        """``read_only``: several processes may read a file no process is writing (fleet jobs)."""
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:  # held by a writing process, missing, or not a DuckDB file
            raise TelemetryStoreError(
                f"cannot open the telemetry file {path}: {str(exc).splitlines()[0]} (while the cloud writes it, "
                "read PostgreSQL (cloud.telemetry_url) instead, or stop the cloud first)"
            ) from None
        if not read_only:
            self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def add(self, batch: TelemetryBatch, received_at: float) -> bool:
        """Store one batch; False if (vin, seq) was already stored (a QoS 1 repeat)."""
        return self.add_many([batch], received_at) == (1, 0)

    def add_many(self, batches: list[TelemetryBatch], received_at: float) -> tuple[int, int]:
        """Store batches in one transaction (Arrow tables, not row-by-row inserts, which DuckDB does
        at about 1 ms a row); returns (stored, duplicates)."""
        unique = {(b.vin, b.seq): b for b in batches}
        keys = pa.table({
            "vin": pa.array([k[0] for k in unique], pa.string()),
            "seq": pa.array([k[1] for k in unique], pa.int64()),
            "received_at": pa.array([received_at] * len(unique), pa.float64()),
            "samples": pa.array([len(b.samples) for b in unique.values()], pa.int32()),
        })  # fmt: skip
        with self._lock:
            cursor = self._db.cursor()
            cursor.execute("BEGIN")
            try:
                cursor.register("incoming", keys)
                new = {
                    (vin, seq)
                    for vin, seq in cursor.execute(
                        "INSERT INTO batches SELECT * FROM incoming ON CONFLICT DO NOTHING RETURNING vin, seq"
                    ).fetchall()
                }
                cursor.unregister("incoming")
                columns = columns_of([b for k, b in unique.items() if k in new])
                if columns["vin"]:
                    cursor.register("incoming", pa.table({
                        "vin": pa.array(columns["vin"], pa.string()), "seq": pa.array(columns["seq"], pa.int64()),
                        "path": pa.array(columns["path"], pa.string()), "ts": pa.array(columns["ts"], pa.float64()),
                        "num": pa.array(columns["num"], pa.float64()), "other": pa.array(columns["other"], pa.string()),
                    }))  # fmt: skip
                    cursor.execute("INSERT INTO samples SELECT * FROM incoming")
                    cursor.unregister("incoming")
                captured = capture_rows([b for k, b in unique.items() if k in new], received_at)
                if captured:
                    cursor.executemany("INSERT INTO captures VALUES (?, ?, ?, ?, ?, ?, ?)", captured)
                cursor.execute("COMMIT")
            except duckdb.Error:
                cursor.execute("ROLLBACK")
                raise
        return len(new), len(batches) - len(new)

    def set_status(self, status: VehicleStatus) -> None:
        """The vehicle's latest status (retained on the broker; the last will says offline)."""
        self.set_statuses([status])

    def set_statuses(self, statuses: list[VehicleStatus]) -> None:
        """Several vehicles' latest statuses in one statement (a fleet reconnecting sends thousands;
        one row at a time costs DuckDB milliseconds each); for one vehicle the last one wins."""
        latest = {status.vin: status for status in statuses}.values()
        table = pa.table({
            "vin": pa.array([s.vin for s in latest], pa.string()),
            "online": pa.array([s.online for s in latest], pa.bool_()),
            "at": pa.array([s.at for s in latest], pa.float64()),
            "brand": pa.array([s.brand for s in latest], pa.string()),
            "model": pa.array([s.model for s in latest], pa.string()),
            "software": pa.array([json.dumps(s.software) for s in latest], pa.string()),
        })  # fmt: skip
        self._insert_table("INSERT OR REPLACE INTO status SELECT * FROM incoming", table)

    def statuses(self) -> dict[str, VehicleStatus]:
        rows = self._query('SELECT vin, online, "at", brand, model, software FROM status', [])
        return {
            vin: VehicleStatus(
                vin=vin, online=online, at=at, brand=brand, model=model, software=json.loads(software)
            )
            for vin, online, at, brand, model, software in rows
        }

    def add_event(self, event: VehicleEvent) -> None:
        self.add_events([event])

    def add_events(self, events: list[VehicleEvent]) -> None:
        table = pa.table({
            "vin": pa.array([e.vin for e in events], pa.string()),
            "at": pa.array([e.at for e in events], pa.float64()),
            "kind": pa.array([e.kind for e in events], pa.string()),
            "detail": pa.array([e.detail for e in events], pa.string()),
        })  # fmt: skip
        self._insert_table("INSERT INTO events SELECT * FROM incoming", table)

    def set_campaign_states(self, states: list[CampaignStates]) -> None:
        """Each car's latest report of its data collection campaigns (the last one wins)."""
        latest = {report.vin: report for report in states}.values()
        table = pa.table({
            "vin": pa.array([r.vin for r in latest], pa.string()),
            "states": pa.array([r.model_dump_json() for r in latest], pa.string()),
        })  # fmt: skip
        self._insert_table("INSERT OR REPLACE INTO campaign_states SELECT * FROM incoming", table)

    def campaign_states(self) -> dict[str, CampaignStates]:
        rows = self._query("SELECT vin, states FROM campaign_states", [])
        return {vin: CampaignStates.model_validate_json(states) for vin, states in rows}

    def captures(self, campaign: str) -> list[Capture]:
        """What a campaign collected, per car in the order the car sent it."""
        rows = self._query(
            "SELECT vin, seq, version, trigger_ts, received_at, samples FROM captures WHERE campaign = ?"
            " ORDER BY vin, seq", [campaign]
        )  # fmt: skip
        return [Capture(*row) for row in rows]

    def capture_samples(self, vin: str, seq: int) -> dict[str, list[Point]]:
        """One capture's samples, per signal in time order."""
        rows = self._query("SELECT path, ts, num, other FROM samples WHERE vin = ? AND seq = ? ORDER BY path, ts", [vin, seq])
        return samples_by_path(rows)

    def export_campaign(self, campaign: str, target: Path) -> int:
        """Everything ``campaign`` collected as one Parquet file (zstd); returns the rows written."""
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            table = self._db.cursor().sql(
                "SELECT s.vin, c.version, c.trigger_ts, s.path, s.ts, s.num, s.other FROM captures c"
                " JOIN samples s ON s.vin = c.vin AND s.seq = c.seq WHERE c.campaign = ? ORDER BY s.vin, s.seq, s.ts",
                params=[campaign],
            ).to_arrow_table()
        import pyarrow.parquet as pq

        pq.write_table(table.rename_columns(CAPTURE_SCHEMA.names).cast(CAPTURE_SCHEMA), target, compression="zstd")
        return int(table.num_rows)

    def event_counts(self, since: float) -> dict[str, int]:
        """How many events each vehicle reported since ``since`` (the fleet page's alerts)."""
        return dict(self._query('SELECT vin, count(*) FROM events WHERE "at" >= ? GROUP BY vin', [since]))

    def _insert_table(self, sql: str, table: pa.Table) -> None:
        """Run ``sql`` with ``table`` registered as ``incoming``, in one transaction."""
        if not table.num_rows:
            return
        with self._lock:
            cursor = self._db.cursor()
            cursor.register("incoming", table)
            try:
                cursor.execute(sql)
            finally:
                cursor.unregister("incoming")

    def events(self, vin: str, limit: int = 50) -> list[VehicleEvent]:
        rows = self._query(
            'SELECT "at", kind, detail FROM events WHERE vin = ? ORDER BY "at" DESC LIMIT ?', [vin, limit]
        )
        return [VehicleEvent(vin=vin, at=at, kind=kind, detail=detail) for at, kind, detail in rows]

    def _query(self, sql: str, parameters: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.cursor().execute(sql, parameters).fetchall()

    def sequences(self, vin: str) -> list[int]:
        return [r[0] for r in self._query("SELECT seq FROM batches WHERE vin = ? ORDER BY seq", [vin])]

    def latest(self, vin: str) -> dict[str, Point]:
        """The newest value of every signal the vehicle sent."""
        rows = self._query(
            "SELECT path, arg_max(ts, ts), arg_max(num, ts), arg_max(other, ts) FROM samples WHERE vin = ? GROUP BY path",
            [vin],
        )
        return {path: Point(ts, join_value(num, other)) for path, ts, num, other in rows}

    def latest_of(self, paths: list[str]) -> dict[str, dict[str, Point]]:
        """The newest value of ``paths`` for every vehicle, in one query (the fleet overview)."""
        rows = self._query(
            "SELECT vin, path, arg_max(ts, ts), arg_max(num, ts), arg_max(other, ts) FROM samples"
            " WHERE list_contains(?, path) GROUP BY vin, path",
            [paths],
        )
        return points_by_vin(rows)

    def last_seen(self) -> dict[str, float]:
        """When each vehicle's newest telemetry batch arrived."""
        return {
            vin: float(t)
            for vin, t in self._query("SELECT vin, max(received_at) FROM batches GROUP BY vin", [])
        }

    def series(
        self, vin: str, path: str, start: float, end: float, bucket_s: float | None = None
    ) -> list[Point]:
        """Values of one numeric signal in [start, end); averaged per ``bucket_s`` when given."""
        if bucket_s:
            rows = self._query(
                "SELECT floor(ts / ?) * ? AS t, avg(num) FROM samples WHERE vin = ? AND path = ? AND ts >= ? AND ts < ?"
                " AND num IS NOT NULL GROUP BY t ORDER BY t",
                [bucket_s, bucket_s, vin, path, start, end],
            )
        else:
            rows = self._query(
                "SELECT ts, num FROM samples WHERE vin = ? AND path = ? AND ts >= ? AND ts < ? ORDER BY ts",
                [vin, path, start, end],
            )
        return [Point(float(t), v) for t, v in rows]

    def series_of(
        self, vins: list[str], path: str, start: float, end: float, bucket_s: float
    ) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
        """One numeric signal of many cars in [start, end), averaged per ``bucket_s``, in one query:
        VIN -> (bucket times, values) — what fleet jobs read instead of a query per car."""
        with self._lock:
            table = self._db.cursor().sql(
                "SELECT vin, floor(ts / ?) * ? AS t, avg(num) AS v FROM samples WHERE list_contains(?, vin) AND path = ?"
                " AND ts >= ? AND ts < ? AND num IS NOT NULL GROUP BY vin, t ORDER BY vin, t",
                params=[bucket_s, bucket_s, vins, path, start, end],
            ).to_arrow_table()
        return group_by_vin(table)
    def count(self) -> int:
        return int(self._query("SELECT count(*) FROM samples", [])[0][0])

    def export_parquet(self, directory: Path, start: float | None = None, end: float | None = None) -> Path:
        """Samples with ``start <= ts < end`` (default: all) as Parquet (zstd), for DuckDB, Spark, pandas."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "samples.parquet"
        low, high = -1e300 if start is None else start, 1e300 if end is None else end
        with self._lock:
            quoted = str(target).replace("'", "''")
            self._db.execute(
                f"COPY (SELECT * FROM samples WHERE ts >= {float(low)!r} AND ts < {float(high)!r})"
                f" TO '{quoted}' (FORMAT parquet, COMPRESSION zstd)"
            )
        return target

    def drop_expired(self) -> list[str]:
        """The embedded store keeps everything (retention is a PostgreSQL feature: whole partitions)."""
        return []

    def close(self) -> None:
        with self._lock:
            self._db.close()


class TelemetryStorage(Protocol):
    """What the ingest writes and the API reads: the DuckDB file or PostgreSQL behind one seam."""

    def add(self, batch: TelemetryBatch, received_at: float) -> bool: ...
    def add_many(self, batches: list[TelemetryBatch], received_at: float) -> tuple[int, int]: ...
    def set_status(self, status: VehicleStatus) -> None: ...
    def set_statuses(self, statuses: list[VehicleStatus]) -> None: ...
    def add_event(self, event: VehicleEvent) -> None: ...
    def add_events(self, events: list[VehicleEvent]) -> None: ...
    def statuses(self) -> dict[str, VehicleStatus]: ...
    def set_campaign_states(self, states: list[CampaignStates]) -> None: ...
    def campaign_states(self) -> dict[str, CampaignStates]: ...
    def captures(self, campaign: str) -> list[Capture]: ...
    def capture_samples(self, vin: str, seq: int) -> dict[str, list[Point]]: ...
    def export_campaign(self, campaign: str, target: Path) -> int: ...
    def event_counts(self, since: float) -> dict[str, int]: ...
    def events(self, vin: str, limit: int = 50) -> list[VehicleEvent]: ...
    def sequences(self, vin: str) -> list[int]: ...
    def latest(self, vin: str) -> dict[str, Point]: ...
    def latest_of(self, paths: list[str]) -> dict[str, dict[str, Point]]: ...
    def last_seen(self) -> dict[str, float]: ...
    def series(self, vin: str, path: str, start: float, end: float, bucket_s: float | None = None) -> list[Point]: ...
    def series_of(
        self, vins: list[str], path: str, start: float, end: float, bucket_s: float
    ) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]: ...
    def count(self) -> int: ...
    def export_parquet(self, directory: Path, start: float | None = None, end: float | None = None) -> Path: ...
    def drop_expired(self) -> list[str]: ...
    def close(self) -> None: ...


def open_telemetry_store(
    location: str | Path, retention_days: float | None = None, *, read_only: bool = False
) -> TelemetryStorage:
    """PostgreSQL for a ``postgresql://`` URL (shared by several processes), else a DuckDB file
    (owned by one writing process, or read by several)."""
    if isinstance(location, str) and location.startswith(("postgresql", "postgres:")):
        from opensdv.cloud.telemetry.postgres import PostgresTelemetryStore

        return PostgresTelemetryStore(location, retention_days=retention_days)
    return TelemetryStore(Path(location), read_only=read_only)


def group_by_vin(table: pa.Table) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Rows (vin, t, v) sorted by VIN, as VIN -> (t, v) arrays, without a Python loop per row."""
    if not table.num_rows:
        return {}
    encoded = pc.dictionary_encode(table.column("vin")).combine_chunks()
    codes = encoded.indices.to_numpy()
    names = encoded.dictionary.to_pylist()
    times = table.column("t").to_numpy().astype(np.float64)
    values = table.column("v").to_numpy().astype(np.float64)
    cuts = np.flatnonzero(np.diff(codes)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(codes)]])
    return {names[codes[a]]: (times[a:b], values[a:b]) for a, b in zip(starts, ends, strict=True)}


def columns_of(batches: list[TelemetryBatch]) -> dict[str, list[Any]]:
    """Sample columns in one pass: numbers in ``num`` (what charts need), anything else as JSON."""
    vins: list[str] = []
    seqs: list[int] = []
    paths: list[str] = []
    stamps: list[float] = []
    nums: list[float | None] = []
    others: list[str | None] = []
    for batch in batches:
        for sample in batch.samples:
            vins.append(batch.vin)
            seqs.append(batch.seq)
            paths.append(sample.path)
            stamps.append(sample.ts)
            value = sample.value
            if type(value) is float or type(value) is int:
                nums.append(value)
                others.append(None)
            else:
                nums.append(None)
                others.append(json.dumps(value))
    return {"vin": vins, "seq": seqs, "path": paths, "ts": stamps, "num": nums, "other": others}


def capture_rows(batches: list[TelemetryBatch], received_at: float) -> list[tuple[Any, ...]]:
    """The captures rows of the batches a campaign made: (vin, seq, campaign, version, trigger, received, samples)."""
    return [
        (b.vin, b.seq, b.campaign.id, b.campaign.version, b.campaign.trigger, received_at, len(b.samples))
        for b in batches if b.campaign is not None
    ]  # fmt: skip


def samples_by_path(rows: list[tuple[Any, ...]]) -> dict[str, list[Point]]:
    """Rows (path, ts, num, other) in (path, ts) order as path -> its points."""
    found: dict[str, list[Point]] = {}
    for path, ts, num, other in rows:
        found.setdefault(path, []).append(Point(ts, join_value(num, other)))
    return found


def points_by_vin(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, Point]]:
    """Rows (vin, path, ts, num, other) as VIN -> path -> its point."""
    found: dict[str, dict[str, Point]] = {}
    for vin, path, ts, num, other in rows:
        found.setdefault(vin, {})[path] = Point(ts, join_value(num, other))
    return found


def join_value(num: float | None, other: str | None) -> Any:
    """A sample's value from its two columns: the number, or the JSON of anything else."""
    return num if other is None else json.loads(other)
