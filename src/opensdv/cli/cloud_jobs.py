"""``opensdv cloud job``: the fleet jobs from a shell — every registered car's pack health from its
stored telemetry, and the twin's range for every allowed pack / e-axle choice of every car — here,
or on Ray (``--ray-address``), with the same answers either way."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from opensdv.cli._common import console, settings, table

if TYPE_CHECKING:
    from opensdv.cloud.jobs.runner import JobRunner
    from opensdv.config import Settings

app = typer.Typer(name="job", help="Fleet jobs over every registered car, here or on Ray.", no_args_is_help=True)

CONFIG_OPTION = typer.Option(None, "--config", help="the cloud's cloud.toml (its database and telemetry store)")
RAY_OPTION = typer.Option(
    None, help="run on Ray: local, auto or ray://host:10001 (default: cloud.ray_address, else in this process)"
)
BRAND_OPTION = typer.Option(None, help="only this brand's cars")
OUT_OPTION = typer.Option(None, "--out", help="also write the answers as JSON to this file")


def _context(
    ctx: typer.Context, config: Path | None, ray_address: str | None, brand: str | None
) -> tuple[Settings, JobRunner, list[tuple[str, str]]]:
    """The settings, the runner and the registered cars as (VIN, vehicle id) pairs."""
    from opensdv.cloud.fleet.registry import VehicleRegistry
    from opensdv.cloud.jobs.runner import runner_for
    from opensdv.config import load_settings
    from opensdv.errors import OpenSDVError
    from opensdv.storage import Database

    chosen = load_settings(config) if config else settings(ctx)
    database = Database(chosen.effective_database_url)
    database.migrate()
    cars = [(v.vin, v.definition_id) for v in VehicleRegistry(database).vehicles(brand)]
    if not cars:
        raise OpenSDVError(f"no registered cars{f' of {brand}' if brand else ''} in the platform database")
    runner = runner_for(ray_address or chosen.cloud.ray_address)
    return chosen, runner, cars


def _where(runner: JobRunner) -> str:
    from opensdv.cloud.jobs.runner import RayRunner

    return f"on Ray ({runner.workers} CPUs)" if isinstance(runner, RayRunner) else "in this process"


def _write(out: Path | None, answers: dict[str, Any]) -> None:
    if out is not None:
        out.write_text(json.dumps(answers, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        console.print(f"written to {out}")


@app.command(
    epilog="Examples:\n\n  opensdv cloud job health --config cloud.toml --hours 24\n\n"
    "  opensdv cloud job health --config cloud.toml --ray-address auto --out health.json\n\n"
    "Reads the telemetry store the cloud writes: PostgreSQL (cloud.telemetry_url) while it runs, "
    "the DuckDB file only while no process writes it."
)
def health(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPTION,
    hours: float = typer.Option(24.0, min=0.01, help="the telemetry window, back from now"),
    ray_address: str | None = RAY_OPTION,
    brand: str | None = BRAND_OPTION,
    out: Path | None = OUT_OPTION,
) -> None:
    """Every registered car's pack health (capacity, SoH, resistance) measured from its telemetry."""
    from dataclasses import asdict

    from opensdv.cloud.jobs.fleet_health import HealthJob, fleet_health

    chosen, runner, cars = _context(ctx, config, ray_address, brand)
    cloud = chosen.cloud
    location = cloud.telemetry_url or cloud.telemetry_file or chosen.data_dir / "telemetry.duckdb"
    now = time.time()
    job = HealthJob(location, cars, now - hours * 3600, now, list(chosen.catalog))
    with console.status(f"measuring {len(cars):,} packs {_where(runner)}"):
        found = fleet_health(runner, job)
    shown = table("VIN", "vehicle", "samples", "capacity Ah", "SoH %", "resistance x new", "notes",
                  title=f"Pack health of {len(cars):,} cars, {_where(runner)}")  # fmt: skip
    models = dict(cars)
    for vin, h in found.items():
        shown.add_row(
            vin, models[vin], f"{h.samples:,}",
            "-" if h.capacity_ah is None else f"{h.capacity_ah:.1f}",
            "-" if h.soh is None else f"{h.soh * 100:.1f}",
            "-" if h.resistance_factor is None else f"{h.resistance_factor:.2f}",
            "; ".join(h.notes),
        )  # fmt: skip
    console.print(shown)
    _write(out, {vin: asdict(h) for vin, h in found.items()})


@app.command(
    epilog="Examples:\n\n  opensdv cloud job sweep --config cloud.toml\n\n"
    "  opensdv cloud job sweep --config cloud.toml --brand Nissan --ray-address local --out choices.json"
)
def sweep(
    ctx: typer.Context,
    config: Path | None = CONFIG_OPTION,
    ray_address: str | None = RAY_OPTION,
    brand: str | None = BRAND_OPTION,
    out: Path | None = OUT_OPTION,
) -> None:
    """Every registered car's allowed standard pack / e-axle choices with the twin's EPA range."""
    from dataclasses import asdict

    from opensdv.cloud.jobs.sweeps import SweepJob, twin_sweep

    chosen, runner, cars = _context(ctx, config, ray_address, brand)
    with console.status(f"sweeping the choices of {len(cars):,} cars {_where(runner)}"):
        found = twin_sweep(runner, SweepJob(cars, list(chosen.catalog)))
    shown = table("vehicle", "cars", "choices", "best range", "km", "Wh/km",
                  title=f"Pack and e-axle choices, {_where(runner)}")  # fmt: skip
    models = dict(cars)
    for model in sorted(set(models.values())):
        vins = [vin for vin, m in cars if m == model]
        choices = found[vins[0]]
        best = max(choices, key=lambda c: c.range_km, default=None)
        shown.add_row(
            model, f"{len(vins):,}", str(len(choices)),
            "-" if best is None else f"{best.modules_series} x {best.module}, {' + '.join(best.eaxles)}",
            "-" if best is None else f"{best.range_km:.0f}", "-" if best is None else f"{best.wh_per_km:.0f}",
        )  # fmt: skip
    console.print(shown)
    _write(out, {vin: [asdict(c) for c in choices] for vin, choices in found.items()})
