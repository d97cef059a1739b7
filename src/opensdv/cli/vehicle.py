"""``opensdv vehicle``: one car's platform as a program for the car's computer."""

from __future__ import annotations

from pathlib import Path

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings

app = typer.Typer(name="vehicle", help=SUBCOMMANDS["vehicle"], no_args_is_help=True)


@app.command(
    epilog="Examples:\n\n"
    "  opensdv vehicle init JN1NSSAN0DD000001 --model nissan-leaf-40 --dir /var/lib/opensdv/car\n\n"
    "  opensdv vehicle init JN1NSSAN0DD000001 --model nissan-leaf-40 --bus virtual:bench --simulate "
    "--mqtt-url mqtts://127.0.0.1:8883 --ota-url https://127.0.0.1:8081\n\n"
    "Writes the starting vehicle.toml and the car's keys; run it with `opensdv vehicle run --config vehicle.toml`."
)
def init(
    ctx: typer.Context,
    vin: str = typer.Argument(..., help="the car's VIN (17 characters, ISO 3779)"),
    model: str = typer.Option(..., "--model", help="a shipped or catalog vehicle id (opensdv vehicles list)"),
    directory: Path | None = typer.Option(None, "--dir", help="the car's state directory (default ./VIN)"),
    output: Path = typer.Option(Path("vehicle.toml"), "--output", "-o", help="where the config goes"),
    bus: str = typer.Option("socketcan:can0", help="INTERFACE:CHANNEL of the car's CAN bus"),
    simulate: bool = typer.Option(False, help="a twin drives the bus (with a virtual bus: benches, demos)"),
    cycle: str = typer.Option("udds", help="the simulating twin's drive cycle (a shipped one, parked, or a CSV)"),
    broker_address: str = typer.Option("127.0.0.1:55555", help="host:port of the car's data broker"),
    mqtt_url: str | None = typer.Option(
        None, help="the fleet link (mqtts://host:8883; the car needs its identity: opensdv fleet provision)"
    ),
    ota_url: str | None = typer.Option(None, help="the OTA back end (https://host:port)"),
    force: bool = typer.Option(False, help="overwrite an existing config file"),
) -> None:
    """Write a starting config and make the car's keys (broker token key, ECU keys)."""
    from opensdv.cloud.fleet.registry import validate_vin
    from opensdv.errors import OpenSDVError
    from opensdv.model.vehicles import load_catalog
    from opensdv.vehicle.process import VehicleLayout
    from opensdv.vehicle.provision import initialise_vehicle, starting_config

    validate_vin(vin)
    vehicle = load_catalog(settings(ctx).catalog).vehicle(model)
    if output.exists() and not force:
        raise OpenSDVError(f"{output} exists; --force overwrites it")
    layout = VehicleLayout((directory or Path(vin)).resolve())
    initialise_vehicle(vin, vehicle, layout)
    output.write_text(
        starting_config(
            vin, model, layout, bus=bus, simulate=simulate, broker_address=broker_address,
            mqtt_url=mqtt_url, ota_url=ota_url, simulated_cycle=cycle,
        )
    )  # fmt: skip
    console.print(f"{output}: {vehicle.definition.brand} {vehicle.definition.model} {vin}; keys in {layout.root}")


@app.command(
    epilog="Examples:\n\n  opensdv vehicle run --config vehicle.toml\n\n"
    "  OPENSDV_VEHICLE__MQTT_URL=mqtts://fleet:8883 opensdv vehicle run --config vehicle.toml\n\n"
    "Stops cleanly on SIGTERM or Ctrl-C; health in <state_dir>/health.json."
)
def run(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="the car's vehicle.toml"),
    mqtt_url: str | None = typer.Option(None, help="override vehicle.mqtt_url"),
    ota_url: str | None = typer.Option(None, help="override vehicle.ota_url"),
    log_format: str = typer.Option("text", help="text, or json (one object a line)"),
) -> None:
    """Run one car's platform until SIGTERM: broker, feeder, safety guard, apps, OTA, cloud agent."""
    import asyncio

    from opensdv.config import load_settings
    from opensdv.programs import configure_logging, run_until_signalled
    from opensdv.vehicle.process import VehicleProcess

    configure_logging(log_format)
    overrides = {k: v for k, v in {"mqtt_url": mqtt_url, "ota_url": ota_url}.items() if v is not None}
    chosen = load_settings(config, vehicle=overrides) if config or overrides else settings(ctx)
    process = VehicleProcess(chosen)
    console.print(f"vehicle {process.vin} ({process.vehicle.id}): state in {process.layout.root}")
    asyncio.run(run_until_signalled(process.run))
