"""``opensdv twin``: vehicles on drive cycles — energy, range, comparisons, ageing."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import CATALOG_OPTION, component_catalog, console, table

if TYPE_CHECKING:
    from opensdv.model.vehicles import PublishedLabel, Vehicle

app = typer.Typer(
    name="twin",
    help=SUBCOMMANDS["twin"],
    no_args_is_help=True,
)

# written out, so that --help needs no numpy (tests/test_cli_startup.py checks it matches SHIPPED_CYCLES)
CYCLE_HELP = "a shipped cycle (udds, hwfet, wltc_class1, wltc_class2, wltc_class3b, wltc_japan) or a CSV file"


def _vehicles(ctx: typer.Context, ids: list[str] | None, extra: list[Path] | None) -> list[Vehicle]:
    catalog = component_catalog(ctx, extra)
    return [catalog.vehicle(i) for i in ids] if ids else catalog.all_vehicles()


@app.command(
    epilog="Examples:\n\n  opensdv twin run nissan-leaf-40 --cycle udds\n\n  opensdv twin run honda-e-advance --cycle my_commute.csv --plot commute.png"
)
def run(
    ctx: typer.Context,
    catalog: list[Path] | None = CATALOG_OPTION,
    vehicle: str = typer.Argument(..., help="vehicle id"),
    cycle: str = typer.Option("udds", help=CYCLE_HELP),
    soc_start: float = typer.Option(0.95, min=0.05, max=1.0, help="state of charge at the start"),
    ambient: float = typer.Option(25.0, help="ambient temperature, degC"),
    plot: Path | None = typer.Option(None, help="PNG file for the plot (default: twin_VEHICLE_CYCLE.png)"),
) -> None:
    """Drive one vehicle over a cycle: an energy table and a plot of speed, power and SoC."""
    from opensdv.physics import load_cycle, simulate
    from opensdv.physics.plots import plot_run

    chosen = component_catalog(ctx, catalog).vehicle(vehicle)
    drive = load_cycle(cycle)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = simulate([chosen], drive, soc_start=soc_start, ambient_c=ambient, keep_traces=True)
    for warning in caught:
        console.print(f"[yellow]warning:[/yellow] {warning.message}")
    shown = table(
        "quantity",
        "value",
        title=f"{chosen.title} on {drive.name} ({drive.distance_km:.2f} km, {drive.duration_s:.0f} s)",
    )
    rows = [
        ("energy at the pack terminals", f"{result.terminal_kwh[0]:.3f} kWh"),
        ("consumption", f"{result.wh_per_km[0]:.1f} Wh/km"),
        ("delivered at the wheels (net)", f"{result.wheel_kwh[0]:.3f} kWh"),
        ("recovered by regeneration", f"{result.regen_kwh[0]:.3f} kWh"),
        ("e-axle losses", f"{result.axle_loss_kwh[0]:.3f} kWh"),
        ("auxiliary loads", f"{result.aux_kwh[0]:.3f} kWh"),
        ("pack heat (internal resistance)", f"{result.pack_heat_kwh[0]:.3f} kWh"),
        ("friction braking", f"{result.friction_brake_kwh[0]:.3f} kWh"),
        ("state of charge", f"{soc_start * 100:.1f} % -> {result.soc_final[0] * 100:.1f} %"),
        ("pack temperature at the end", f"{result.temp_final_c[0]:.1f} degC"),
        (
            "shortfall",
            "none"
            if result.first_shortfall_s[0] < 0
            else f"{result.shortfall_kwh[0] * 1000:.1f} Wh from t={result.first_shortfall_s[0]:g} s",
        ),
        ("energy balance error", f"{result.balance_error[0]:.1e}"),
    ]
    for name, value in rows:
        shown.add_row(name, value)
    console.print(shown)
    target = plot or Path(f"twin_{chosen.id}_{drive.name}.png")
    plot_run(result, 0, target)
    console.print(f"plot: {target}")


@app.command(
    name="range",
    epilog="Examples:\n\n  opensdv twin range\n\n  opensdv twin range mitsubishi-ek-x-ev --combinations\n\n"
    "  opensdv twin range my-city-ev --catalog docs/examples/my-ev.yaml --no-combinations",
)
def range_(
    ctx: typer.Context,
    catalog: list[Path] | None = CATALOG_OPTION,
    vehicles: list[str] | None = typer.Argument(None, help="vehicle ids (default: all)"),
    combinations: bool = typer.Option(True, help="also every allowed standard pack / e-axle choice"),
) -> None:
    """Range and consumption by each label method (EPA, WLTP, Japan's WLTC mode), per vehicle and
    pack/e-axle choice; consumption is from the wall, as labels print it."""
    from opensdv.physics import VehicleParams, label_figures
    from opensdv.physics.combinations import allowed_combinations

    everything = component_catalog(ctx, catalog)
    chosen = _vehicles(ctx, vehicles, catalog)
    variants: list[tuple[str, Vehicle]] = []
    for vehicle in chosen:
        variants.append((vehicle.title, vehicle))
        if combinations:
            for option in allowed_combinations(vehicle, everything):
                if (option.pack.module.id, option.pack.modules_series, [a.id for a in option.eaxles]) != (
                    vehicle.pack.module.id, vehicle.pack.modules_series, [a.id for a in vehicle.eaxles]
                ):  # fmt: skip
                    variants.append((f"  {vehicle.definition.model} with", option))
    cars = [v for _, v in variants]
    figures = [
        label_figures(VehicleParams.from_vehicles(cars, regulation), regulation)
        for regulation in ("epa", "wltp", "japan-wltc")
    ]
    shown = table(
        "vehicle", "pack", "e-axle", "usable kWh", "EPA", "WLTP", "Japan WLTC",
        title="Range and consumption by label method (Wh/km at the pack / from the wall)",
    )  # fmt: skip
    for i, (label, v) in enumerate(variants):
        cells = [
            f"{f.range_km[i]:.0f} km\n{f.battery_wh_per_km[i]:.0f} / {f.wall_wh_per_km[i]:.0f} Wh/km" for f in figures
        ]
        shown.add_row(label, v.pack.label, ", ".join(a.id for a in v.eaxles), f"{v.usable_energy_kwh:.1f}", *cells)
    console.print(shown)
    console.print(
        "from the wall = at the pack / the charging efficiency (0.86 unless the catalog says); "
        "EPA's include its derived 5-cycle adjustment (0.7 for every efficient car)"
    )


def _label_option(text: str) -> PublishedLabel:
    """``REGULATION:RANGE_KM[:WH_PER_KM]``, e.g. ``wltp:285`` or ``epa:243:186.4``."""
    from pydantic import ValidationError

    from opensdv.model.vehicles import PublishedLabel

    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise typer.BadParameter(f"{text!r}: expected REGULATION:RANGE_KM[:WH_PER_KM], e.g. wltp:285")
    fields = {"regulation": parts[0], "range_km": parts[1], "source": "--label"}
    if len(parts) == 3:
        fields["consumption_wh_per_km"] = parts[2]
    try:
        return PublishedLabel.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(f"{text!r}: {problems}") from None


@app.command(
    epilog="Examples:\n\n  opensdv twin validate\n\n  opensdv twin validate nissan-leaf-40 --tolerance 0.03\n\n"
    "  opensdv twin validate my-city-ev --catalog docs/examples/my-ev.yaml --label japan-wltc:300:128\n\n"
    "Exit status: 0 every label within the tolerance, 1 one is outside it, 2 bad input."
)
def validate(
    ctx: typer.Context,
    catalog: list[Path] | None = CATALOG_OPTION,
    vehicles: list[str] | None = typer.Argument(None, help="vehicle ids (default: all)"),
    label: list[str] | None = typer.Option(
        None, "--label", help="REGULATION:RANGE_KM[:WH_PER_KM] (epa, wltp, japan-wltc), instead of the catalog's; one vehicle"
    ),
    tolerance: float = typer.Option(0.05, min=0.0, max=1.0, help="largest deviation allowed, as a fraction"),
) -> None:
    """The twin against each published label range and consumption, by the label's own method."""
    from opensdv.physics.validation import validate as check_labels

    chosen = _vehicles(ctx, vehicles, catalog)
    overrides: dict[str, list[PublishedLabel]] | None = None
    if label:
        if len(chosen) != 1:
            raise typer.BadParameter("--label applies to one vehicle: name it")
        overrides = {chosen[0].id: [_label_option(text) for text in label]}
    checks = check_labels(chosen, overrides)
    if not checks:
        console.print("no published labels to check: add `labels` to the vehicle's catalog record, or --label")
        raise typer.Exit(1)
    sources = list(dict.fromkeys(check.source for check in checks))
    shown = table(
        "vehicle", "label", "quantity", "twin", "published", "deviation", "", "usable kWh to match", "source",
        title=f"Twin against published labels (tolerance {tolerance:.0%})",
    )  # fmt: skip
    for check in checks:
        ok = check.within(tolerance)
        shown.add_row(
            check.vehicle, check.regulation, check.quantity, f"{check.twin:.1f}", f"{check.published:g}",
            f"{check.deviation:+.1%}", "[green]ok[/green]" if ok else "[red]outside[/red]",
            "" if check.implied_usable_kwh is None else f"{check.implied_usable_kwh:.1f}",
            f"[{sources.index(check.source) + 1}]",
        )  # fmt: skip
    console.print(shown)
    for number, source in enumerate(sources, start=1):
        console.print(f"[{number}] {escape(source)}", markup=False)
    outside = [c for c in checks if not c.within(tolerance)]
    console.print(f"{len(checks) - len(outside)} of {len(checks)} within {tolerance:.0%}")
    raise typer.Exit(1 if outside else 0)


@app.command(
    epilog="Examples:\n\n  opensdv twin compare nissan-sakura mitsubishi-ek-x-ev --cycle wltc_japan\n\n  opensdv twin compare --cycle hwfet"
)
def compare(
    ctx: typer.Context,
    catalog: list[Path] | None = CATALOG_OPTION,
    vehicles: list[str] | None = typer.Argument(None, help="vehicle ids (default: all)"),
    cycle: str = typer.Option("udds", help=CYCLE_HELP),
) -> None:
    """Several vehicles on one cycle, side by side."""
    from opensdv.physics import load_cycle, simulate

    chosen = _vehicles(ctx, vehicles, catalog)
    drive = load_cycle(cycle)
    result = simulate(chosen, drive, keep_traces=False)
    shown = table(
        "vehicle",
        "Wh/km",
        "kWh",
        "regen kWh",
        "e-axle loss kWh",
        "final SoC %",
        "cycle range km",
        title=f"{drive.name}: {drive.distance_km:.2f} km",
    )
    for i, v in enumerate(chosen):
        usable = v.pack.energy_kwh * 0.9
        shown.add_row(
            v.title, f"{result.wh_per_km[i]:.1f}", f"{result.terminal_kwh[i]:.3f}", f"{result.regen_kwh[i]:.3f}",
            f"{result.axle_loss_kwh[i]:.3f}", f"{result.soc_final[i] * 100:.1f}", f"{usable * 1000 / result.wh_per_km[i]:.0f}",
        )  # fmt: skip
    console.print(shown)


@app.command(
    name="age",
    epilog="Examples:\n\n  opensdv twin age nissan-leaf-40 --years 8\n\n  opensdv twin age mitsubishi-ek-x-ev --years 10 --daily-km 25 --ambient 18 --target-soc 1.0",
)
def age_(
    ctx: typer.Context,
    catalog: list[Path] | None = CATALOG_OPTION,
    vehicle: str = typer.Argument(..., help="vehicle id"),
    years: float = typer.Option(8.0, min=0.1, max=30),
    daily_km: float = typer.Option(40.0, min=0),
    ambient: float = typer.Option(15.0, help="mean ambient temperature, degC"),
    target_soc: float = typer.Option(0.9, min=0.1, max=1.0, help="state of charge charged to every day"),
    fast_share: float = typer.Option(0.1, min=0, max=1, help="share of energy from DC fast charging"),
    plot: Path | None = typer.Option(None, help="PNG file for the plot (default: twin_age_VEHICLE.png)"),
) -> None:
    """Project the pack's state of health over years of use (consumption: the EPA label method)."""
    from opensdv.physics import AgeingProfile, age, combined_range_km
    from opensdv.physics.plots import plot_ageing

    chosen = component_catalog(ctx, catalog).vehicle(vehicle)
    _, consumption = combined_range_km([chosen])
    profile = AgeingProfile(
        daily_km=daily_km, ambient_c=ambient, charge_target_soc=target_soc, fast_charge_share=fast_share
    )
    result = age(chosen, years, profile, float(consumption[0]))
    shown = table(
        "year",
        "state of health %",
        "resistance x",
        "full cycles",
        "throughput kWh",
        title=f"{chosen.title}: {daily_km:g} km/day at {ambient:g} degC",
    )
    for month in range(0, len(result.months), 12):
        shown.add_row(
            f"{result.months[month] / 12:.0f}", f"{result.state_of_health[month] * 100:.1f}", f"{result.resistance_factor[month]:.2f}",
            f"{result.full_cycles[month]:.0f}", f"{result.throughput_kwh[month]:.0f}",
        )  # fmt: skip
    console.print(shown)
    target = plot or Path(f"twin_age_{chosen.id}.png")
    plot_ageing(result, chosen.title, target)
    console.print(f"plot: {target}")
