"""``opensdv vehicles``: the vehicle definitions and what they are made of."""

from __future__ import annotations

from pathlib import Path

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import CATALOG_OPTION, component_catalog, console, table

app = typer.Typer(name="vehicles", help=SUBCOMMANDS["vehicles"], no_args_is_help=True)


@app.command(
    name="list",
    epilog="Examples:\n\n  opensdv vehicles list\n\n  opensdv vehicles list --catalog my_brand.yaml",
)
def list_(ctx: typer.Context, catalog: list[Path] | None = CATALOG_OPTION) -> None:
    """List every vehicle with its platform, pack and e-axles."""
    shown = table("id", "brand", "model", "year", "markets", "platform", "pack", "e-axles", title="Vehicles")
    for v in component_catalog(ctx, catalog).all_vehicles():
        d = v.definition
        shown.add_row(
            d.id, d.brand, d.model, str(d.model_year), " ".join(d.markets), d.platform,
            f"{v.pack.energy_kwh:.1f} kWh {v.pack.voltage_class}", ", ".join(a.id for a in v.eaxles),
        )  # fmt: skip
    console.print(shown)


@app.command(epilog="Examples:\n\n  opensdv vehicles show honda-e-advance")
def show(
    ctx: typer.Context,
    vehicle_id: str = typer.Argument(..., metavar="ID"),
    catalog: list[Path] | None = CATALOG_OPTION,
) -> None:
    """Show a vehicle's definition, its ECUs with hardware ids, and its compatibility checks."""
    from opensdv.cli.components import checks_table

    vehicle = component_catalog(ctx, catalog).vehicle(vehicle_id)
    d = vehicle.definition
    facts = table("field", "value", show_header=False, title=vehicle.title)
    for name, value in (
        ("platform", d.platform),
        ("markets", " ".join(d.markets)),
        ("pack", f"{vehicle.pack.label}: {vehicle.pack.energy_kwh:.1f} kWh, {vehicle.pack.nominal_voltage_v:.0f} V nominal "
                 f"({vehicle.pack.min_voltage_v:.0f}-{vehicle.pack.max_voltage_v:.0f} V), {vehicle.pack.voltage_class}"),
        ("e-axles", ", ".join(f"{a.id} ({a.position}, {a.peak_power_kw:.0f} kW)" for a in vehicle.eaxles)),
        ("curb mass", f"{d.curb_mass_kg:.0f} kg"),
        *(
            [("road load", f"{d.road_load.f0_n:g} N + {d.road_load.f1_n_per_kmh:g} N/(km/h) v + "
                           f"{d.road_load.f2_n_per_kmh2:g} N/(km/h)2 v2 at {d.road_load.test_mass_kg:.0f} kg")]
            if d.road_load is not None
            else [("drag", f"Cd {d.drag_coefficient} x {d.frontal_area_m2} m2"),
                  ("rolling resistance", str(d.rolling_resistance))]
        ),
        ("usable energy", f"{vehicle.usable_energy_kwh:.1f} kWh"),
        ("labels", ", ".join(f"{label.regulation} {label.range_km:g} km" for label in d.labels) or "-"),
        ("wheel radius", f"{d.wheel_radius_m} m"),
        ("auxiliary load", f"{d.auxiliary_load_w:.0f} W"),
        ("CAN adapter", d.can_adapter or "-"),
    ):  # fmt: skip
        facts.add_row(name, value)
    console.print(facts)
    ecus = table("ECU", "hardware id", "description", title="ECUs")
    for name, ecu in vehicle.ecus.items():
        ecus.add_row(name, ecu.hardware_id, ecu.description)
    console.print(ecus)
    console.print(checks_table(vehicle, vehicle.checks()))
