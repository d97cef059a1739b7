"""The telemetry store: exactly once, mixed value types, down-sampling, Parquet export."""

from __future__ import annotations

from pathlib import Path

import duckdb

from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.link.fleet import Sample, TelemetryBatch

VIN = "JHMHNDAE0ED000002"


def _batch(seq: int, *samples: Sample) -> TelemetryBatch:
    return TelemetryBatch(vin=VIN, seq=seq, samples=list(samples))


def test_batches_once_values_of_every_type_and_parquet(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path / "t.duckdb")
    first = _batch(
        0,
        Sample(path="Vehicle.Speed", value=12.5, ts=1.0),
        Sample(path="Vehicle.IsMoving", value=True, ts=1.0),
        Sample(path="Vehicle.Powertrain.TractionBattery.Range", value=120000, ts=1.0),
        Sample(path="Vehicle.Powertrain.TractionBattery.ErrorCodes", value=["P0A80"], ts=1.0),
    )
    assert store.add_many(
        [first, first, _batch(1, Sample(path="Vehicle.Speed", value=20.0, ts=2.0))], 3.0
    ) == (2, 1)
    assert store.add(first, 4.0) is False
    latest = store.latest(VIN)
    assert latest["Vehicle.Speed"].value == 20.0 and latest["Vehicle.IsMoving"].value is True
    assert latest["Vehicle.Powertrain.TractionBattery.ErrorCodes"].value == ["P0A80"]
    assert latest["Vehicle.Powertrain.TractionBattery.Range"].value == 120000
    assert [(p.ts, p.value) for p in store.series(VIN, "Vehicle.Speed", 0, 10, bucket_s=10)] == [(0.0, 16.25)]
    exported = store.export_parquet(tmp_path / "export")
    assert duckdb.sql(f"SELECT count(*) FROM '{exported}'").fetchall() == [(5,)]
    store.close()
