"""Two more fleet jobs: the twin's range for every allowed standard pack / e-axle choice of every
car (what a maker weighs before a mid-life battery swap or a new trim), and the charging plans of
many sites at once (each site's day is its own optimisation). Pure functions over chunks, in this
process or on Ray."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from opensdv.cloud.energy.planning import plan
from opensdv.cloud.energy.planning.schedule import Schedule
from opensdv.cloud.energy.planning.sessions import Session
from opensdv.cloud.energy.planning.tariff import Tariff
from opensdv.cloud.jobs.runner import JobRunner, chunks
from opensdv.model.vehicles import load_catalog
from opensdv.physics import combined_range_km
from opensdv.physics.combinations import allowed_combinations

__all__ = ["Choice", "SitePlanJob", "SweepJob", "plan_sites", "twin_sweep"]


@dataclass(frozen=True)
class Choice:
    module: str  # the standard battery module
    modules_series: int
    eaxles: tuple[str, ...]
    range_km: float
    wh_per_km: float


@dataclass(frozen=True)
class SweepJob:
    cars: list[tuple[str, str]]  # (VIN, vehicle id of the catalog)
    catalog: list[Path] = field(default_factory=list)


def sweep_piece(job: SweepJob) -> list[tuple[str, list[Choice]]]:
    """Each car's allowed choices with their EPA label range (one batch simulation per
    model of the piece: its cars share the choices)."""
    catalog = load_catalog(job.catalog)
    by_model: dict[str, list[Choice]] = {}
    for model in sorted({model for _, model in job.cars}):
        options = allowed_combinations(catalog.vehicle(model), catalog)
        if not options:
            by_model[model] = []
            continue
        ranges, consumption = combined_range_km(options)
        by_model[model] = [
            Choice(v.pack.module.id, v.pack.modules_series, tuple(a.id for a in v.eaxles), round(float(r), 1), round(float(c), 1))
            for v, r, c in zip(options, ranges, consumption, strict=True)
        ]
    return [(vin, by_model[model]) for vin, model in job.cars]


def twin_sweep(runner: JobRunner, job: SweepJob, pieces: int = 8) -> dict[str, list[Choice]]:
    """VIN -> every allowed choice with its range, for every car of ``job``."""
    jobs = [SweepJob(piece, job.catalog) for piece in chunks(sorted(job.cars, key=lambda c: c[1]), pieces)]
    return {vin: choices for part in runner.map(sweep_piece, jobs) for vin, choices in part}


@dataclass(frozen=True)
class SitePlanJob:
    site: str
    sessions: list[Session]
    slots: int
    slot_h: float
    cap_kw: float
    tariff: Tariff
    wear_cost_per_kwh: float = 0.0


def _plan_site(job: SitePlanJob) -> Schedule:
    return plan(
        job.sessions, slots=job.slots, slot_h=job.slot_h, site_cap_kw=job.cap_kw, tariff=job.tariff,
        wear_cost_per_kwh=job.wear_cost_per_kwh, name=job.site,
    )  # fmt: skip


def _plan_sites(jobs: list[SitePlanJob]) -> list[tuple[str, Schedule]]:
    return [(job.site, _plan_site(job)) for job in jobs]


def plan_sites(runner: JobRunner, sites: Sequence[SitePlanJob], pieces: int = 8) -> dict[str, Schedule]:
    """Site id -> its day's optimal schedule, for every site."""
    return {site: schedule for part in runner.map(_plan_sites, chunks(list(sites), pieces)) for site, schedule in part}
