"""``opensdv components``: the standard battery modules and e-axles, and whether they fit together."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import CATALOG_OPTION, component_catalog, console, table

if TYPE_CHECKING:
    from opensdv.model import Catalog, CheckResult, Vehicle

app = typer.Typer(
    name="components",
    help=SUBCOMMANDS["components"],
    no_args_is_help=True,
)


@app.command(
    name="list",
    epilog="Examples:\n\n  opensdv components list\n\n  opensdv components list --catalog my_modules.yaml",
)
def list_(ctx: typer.Context, catalog: list[Path] | None = CATALOG_OPTION) -> None:
    """List every battery module and e-axle in the catalog."""
    cat = component_catalog(ctx, catalog)
    modules = table(
        "id", "supplier", "chemistry", "format", "cells", "V nom", "Ah", "kWh", "kg", title="Battery modules"
    )
    for m in cat.modules.values():
        modules.add_row(
            m.id, m.supplier, str(m.chemistry), str(m.cell_format), f"{m.cells_series}s{m.cells_parallel}p",
            f"{m.nominal_voltage_v:.1f}", f"{m.capacity_ah:.1f}", f"{m.energy_kwh:.2f}", f"{m.mass_kg:.1f}",
        )  # fmt: skip
    console.print(modules)
    axles = table(
        "id",
        "supplier",
        "position",
        "motor",
        "kW peak/cont",
        "Nm peak",
        "rpm max",
        "inverter",
        title="E-axles",
    )
    for a in cat.eaxles.values():
        axles.add_row(
            a.id, a.supplier, a.position, str(a.motor_type), f"{a.peak_power_kw:.0f}/{a.continuous_power_kw:.0f}",
            f"{a.peak_torque_nm:.0f}", f"{a.max_speed_rpm:.0f}",
            f"{a.inverter.semiconductor} {a.inverter.voltage_class} {a.inverter.min_dc_voltage_v:.0f}-{a.inverter.max_dc_voltage_v:.0f} V",
        )  # fmt: skip
    console.print(axles)


@app.command(
    epilog="Examples:\n\n  opensdv components show nmc-pouch-8s2p-56ah\n\n  opensdv components show ea-rear-160kw-800v"
)
def show(
    ctx: typer.Context,
    component_id: str = typer.Argument(..., metavar="ID"),
    catalog: list[Path] | None = CATALOG_OPTION,
) -> None:
    """Show every field of one module or e-axle, as YAML-like text."""
    from opensdv.model._files import CatalogError

    cat = component_catalog(ctx, catalog)
    record = cat.modules.get(component_id) or cat.eaxles.get(component_id)
    if record is None:
        known = ", ".join(sorted([*cat.modules, *cat.eaxles]))
        raise CatalogError("catalog", "components", f"unknown component {component_id!r} (known: {known})")
    console.print_json(record.model_dump_json())


def checks_table(vehicle: Vehicle, results: list[CheckResult]) -> Table:
    """The compatibility checks as a table: one row per rule, its verdict and why."""
    shown = table(
        "rule",
        "result",
        "numbers",
        title=f"{vehicle.title}: {vehicle.pack.label} + {', '.join(a.id for a in vehicle.eaxles)}",
    )
    for r in results:
        shown.add_row(r.rule, "[green]pass[/green]" if r.passed else "[bold red]FAIL[/bold red]", r.message)
    return shown


def _vehicles_to_check(
    ctx: typer.Context, target: str, catalog: list[Path] | None
) -> tuple[Catalog, list[str]]:
    from opensdv.model._files import CatalogError, read_document

    path = Path(target)
    if path.suffix.lower() in {".yaml", ".yml", ".json"} or path.exists():
        document = read_document(path)
        cat = component_catalog(ctx, [*(catalog or []), path])
        ids = (
            [v["id"] for v in (document.get("vehicles") or []) if isinstance(v, dict)]
            if isinstance(document, dict)
            else []
        )
        if not ids:
            raise CatalogError(path, "vehicles", "the file defines no vehicle to check")
        return cat, ids
    return component_catalog(ctx, catalog), [target]


@app.command(
    epilog="Examples:\n\n"
    "  opensdv components check nissan-leaf-40\n\n"
    "  opensdv components check my_vehicle.yaml   [dim]# a file with vehicles (and modules / e-axles)[/dim]\n\n"
    "Exit status: 0 all rules pass, 1 a rule fails, 2 bad input."
)
def check(
    ctx: typer.Context,
    target: str = typer.Argument(
        ..., metavar="VEHICLE_OR_FILE", help="a vehicle id, or a catalog file with vehicles"
    ),
    catalog: list[Path] | None = CATALOG_OPTION,
) -> None:
    """Check a vehicle's pack against its e-axles and its pack space; each rule shows its numbers."""
    cat, ids = _vehicles_to_check(ctx, target, catalog)
    failed = False
    for vehicle_id in ids:
        vehicle = cat.vehicle(vehicle_id)
        results = vehicle.checks()
        console.print(checks_table(vehicle, results))
        failed |= not all(r.passed for r in results)
    raise typer.Exit(1 if failed else 0)


__all__ = ["app", "checks_table"]
