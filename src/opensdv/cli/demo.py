"""``opensdv demo``: the platform on embedded defaults, no configuration needed."""

from __future__ import annotations

import typer

from opensdv.cli._common import component_catalog, console, table

EPILOG = "Examples:\n\n  opensdv demo\n\nNeeds no configuration; later parts (broker, twin, cloud) join the same command."


def run(ctx: typer.Context) -> None:
    """Run the platform demo: build every demo vehicle from the shared standard components."""
    catalog = component_catalog(ctx)
    shown = table(
        "vehicle",
        "platform",
        "pack",
        "voltage",
        "e-axle",
        "compatible",
        title="OpenSDV demo fleet: one platform, three brands",
    )
    vehicles = catalog.all_vehicles()
    for v in vehicles:
        failed = [c.rule for c in v.checks() if not c.passed]
        shown.add_row(
            v.title,
            v.definition.platform,
            f"{v.pack.energy_kwh:.1f} kWh ({v.pack.module_count} x {v.pack.module.id})",
            f"{v.pack.voltage_class} ({v.pack.nominal_voltage_v:.0f} V)",
            ", ".join(f"{a.id}" for a in v.eaxles),
            "[green]yes[/green]" if not failed else f"[red]no: {', '.join(failed)}[/red]",
        )
    console.print(shown)
    shared_modules = {v.pack.module.id for v in vehicles}
    brands = sorted({v.definition.brand for v in vehicles})
    console.print(
        f"{len(vehicles)} vehicles of {len(brands)} brands ({', '.join(brands)}) share "
        f"{len(shared_modules)} battery module types and {len({a.id for v in vehicles for a in v.eaxles})} e-axle types."
    )
