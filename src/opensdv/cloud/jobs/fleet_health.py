"""Fleet state of health from stored telemetry, as a fleet job: each piece opens the telemetry
store by location (PostgreSQL, which many readers share; or the DuckDB file when the job runs in
the process that owns it) and measures its cars' packs from their own current, voltage and state
of charge — what ``GET /vehicles/{vin}/health`` answers for one car, for every car at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from opensdv.cloud.energy.battery.soh import MeasuredHealth, health_from_telemetry
from opensdv.cloud.jobs.runner import JobRunner, chunks
from opensdv.cloud.telemetry.store import TelemetryStorage, open_telemetry_store
from opensdv.model.vehicles import Vehicle, load_catalog

__all__ = ["CURRENT", "SOC", "VOLTAGE", "HealthJob", "fleet_health", "measured_health"]

CURRENT = "Vehicle.Powertrain.TractionBattery.CurrentCurrent"
VOLTAGE = "Vehicle.Powertrain.TractionBattery.CurrentVoltage"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def measured_health(store: TelemetryStorage, vehicle: Vehicle, vin: str, start: float, end: float) -> MeasuredHealth:
    """The pack's health from the car's telemetry in [start, end), second by second."""
    return _measured(store, [(vin, vehicle)], start, end)[0][1]


def _measured(
    store: TelemetryStorage, cars: list[tuple[str, Vehicle]], start: float, end: float
) -> list[tuple[str, MeasuredHealth]]:
    """Each car's health: three queries for all of them (one per signal), then numpy per car."""
    vins = [vin for vin, _ in cars]
    current, voltage, soc = (store.series_of(vins, path, start, end, 1.0) for path in (CURRENT, VOLTAGE, SOC))
    empty = (np.zeros(0), np.zeros(0))
    found = []
    for vin, vehicle in cars:
        (t_i, i), (t_v, v), (t_s, s) = (signal.get(vin, empty) for signal in (current, voltage, soc))
        seconds = np.intersect1d(np.intersect1d(t_i, t_v), t_s)
        pick = [np.searchsorted(t, seconds) for t in (t_i, t_v, t_s)]
        found.append((vin, health_from_telemetry(vehicle, seconds, i[pick[0]], v[pick[1]], s[pick[2]] / 100)))
    return found


@dataclass(frozen=True)
class HealthJob:
    telemetry: str | Path  # a PostgreSQL URL, or a DuckDB file no process is writing
    cars: list[tuple[str, str]]  # (VIN, vehicle id of the catalog)
    start: float
    end: float
    catalog: list[Path] = field(default_factory=list)  # extra catalog files beside the shipped one


def health_piece(job: HealthJob) -> list[tuple[str, MeasuredHealth]]:
    catalog = load_catalog(job.catalog)
    store = open_telemetry_store(job.telemetry, read_only=True)
    try:
        found = []
        for start in range(0, len(job.cars), 500):  # a few hundred cars a query: bounded memory
            cars = [(vin, catalog.vehicle(model)) for vin, model in job.cars[start : start + 500]]
            found += _measured(store, cars, job.start, job.end)
        return found
    finally:
        store.close()


def fleet_health(runner: JobRunner, job: HealthJob, pieces: int = 8) -> dict[str, MeasuredHealth]:
    """Every car's measured pack health, VIN -> health, split into ``pieces`` jobs."""
    jobs = [HealthJob(job.telemetry, piece, job.start, job.end, job.catalog) for piece in chunks(job.cars, pieces)]
    return {vin: health for part in runner.map(health_piece, jobs) for vin, health in part}
