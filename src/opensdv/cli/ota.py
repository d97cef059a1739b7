"""``opensdv ota``: the Uptane repositories, images, campaigns, and the HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings
from opensdv.errors import OpenSDVError

if TYPE_CHECKING:
    from opensdv.cloud.ota.backend import OtaBackend
    from opensdv.cloud.ota.campaigns import CampaignProgress

app = typer.Typer(name="ota", help=SUBCOMMANDS["ota"], no_args_is_help=True)
campaign_app = typer.Typer(name="campaign", help="Create and steer update campaigns.", no_args_is_help=True)
app.add_typer(campaign_app)

DIR_OPTION = typer.Option(None, "--dir", help="OTA back-end directory (default: <data_dir>/ota)")


def _backend(ctx: typer.Context, directory: Path | None) -> OtaBackend:
    from opensdv.cloud.ota.backend import OtaBackend
    from opensdv.storage import Database

    s = settings(ctx)
    database = Database(s.effective_database_url)
    database.migrate()
    from opensdv.cloud.jobs.runner import runner_for

    runner = runner_for(s.cloud.ray_address) if s.cloud.ray_address else None  # campaign signing as a fleet job
    return OtaBackend(directory or s.cloud.ota_dir or s.data_dir / "ota", database, runner=runner)


def _ready(ctx: typer.Context, directory: Path | None) -> OtaBackend:
    backend = _backend(ctx, directory)
    if not backend.initialised:
        raise OpenSDVError(f"{backend.path}: no OTA repositories yet; run `opensdv ota init` first")
    return backend


@app.command(epilog="Examples:\n\n  opensdv ota init\n\n  opensdv ota init --dir /srv/ota")
def init(ctx: typer.Context, directory: Path | None = DIR_OPTION) -> None:
    """Create the image repository and the director (keys, root metadata)."""
    backend = _backend(ctx, directory)
    backend.initialise()
    console.print(f"OTA repositories created in {backend.path} (keys in {backend.keys.path})")


@app.command(
    name="add-image",
    epilog="Examples:\n\n  opensdv ota add-image inverter.bin --name eaxle/inverter-2.4.0.bin --version 2.4.0 "
    "--release-counter 24 --hardware KDS-INV-110-400-B --hardware HMW-INV-047-400-K",
)
def add_image(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="the image"),
    name: str = typer.Option(..., "--name", help="name in the repository (a delegated path like bms/...)"),
    version: str = typer.Option(..., "--version"),
    release_counter: int = typer.Option(..., "--release-counter", help="vehicles never accept a lower one"),
    hardware: list[str] = typer.Option(..., "--hardware", help="hardware id it is built for (repeatable)"),
    directory: Path | None = DIR_OPTION,
) -> None:
    """Sign an image into the image repository."""
    info = _ready(ctx, directory).images.add_image(
        name, file.read_bytes(), hardware, version, release_counter
    )
    console.print(f"{info.name}: {info.length} bytes, sha256 {info.sha256[:16]}…, signed by role {info.role}")


@app.command(
    epilog="Examples:\n\n  opensdv ota enrol JN1NSSAN0DD000001 --model nissan-leaf-40 --vehicle-dir /var/lib/opensdv/car\n\n"
    "The vehicle directory is the one `opensdv vehicle init` made: its ECUs' public keys are read from it and "
    "the repositories' trusted roots are written into it (at the factory, both sit on the same bench)."
)
def enrol(
    ctx: typer.Context,
    vin: str = typer.Argument(..., help="the car's VIN"),
    model: str = typer.Option(..., "--model", help="its vehicle id (opensdv vehicles list)"),
    vehicle_dir: Path = typer.Option(..., "--vehicle-dir", help="the car's state directory"),
    market: str | None = typer.Option(None, help="where it is sold (default: its model's first market)"),
    rxswin: str = typer.Option("", help="its UN R156 software identification number"),
    directory: Path | None = DIR_OPTION,
) -> None:
    """Enrol a car: register it, record its ECUs' keys, give it the repositories' trusted roots."""
    from opensdv.cloud.fleet.registry import VehicleRegistry
    from opensdv.model.vehicles import load_catalog
    from opensdv.vehicle.process import PRIMARY_ECU, VehicleLayout
    from opensdv.vehicle.provision import ecu_public_keys

    backend = _ready(ctx, directory)
    vehicle = load_catalog(settings(ctx).catalog).vehicle(model)
    registry = VehicleRegistry(backend.database)
    if vin not in {v.vin for v in registry.vehicles()}:  # enrolling again (new keys) keeps the record
        registry.register(vin, vehicle, market or vehicle.definition.markets[0])
    layout = VehicleLayout(vehicle_dir)
    backend.enrol(vin, ecu_public_keys(vin, vehicle, layout.ota), primary=PRIMARY_ECU, rxswin=rxswin)
    layout.trust(*backend.trusted_roots())
    console.print(f"{vin} enrolled ({len(vehicle.ecus)} ECUs); trusted roots written to {layout.ota}")


@app.command(epilog="Examples:\n\n  opensdv ota images")
def images(ctx: typer.Context, directory: Path | None = DIR_OPTION) -> None:
    """List the images of the image repository."""
    table = Table("name", "version", "release counter", "hardware ids", "bytes", "role")
    for i in _ready(ctx, directory).images.images():
        table.add_row(
            i.name, i.version, str(i.release_counter), ", ".join(i.hardware_ids), str(i.length), i.role
        )
    console.print(table)


def _print_progress(p: CampaignProgress) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(p.counts.items()))
    console.print(
        f"campaign {p.id}: {p.state}, stage {p.stage + 1}/{p.stages}; {counts}"
        + (f" — {p.reason}" if p.reason else "")
    )


@campaign_app.command(
    epilog="Examples:\n\n  opensdv ota campaign create campaign.yaml\n\n"
    "campaign.yaml: {id: inverter-2-4, image: eaxle/inverter-2.4.0.bin, mode: forced, stages: [10, 50, 100]}",
)
def create(
    ctx: typer.Context,
    spec_file: Path = typer.Argument(..., exists=True, dir_okay=False, help="campaign YAML/JSON"),
    directory: Path | None = DIR_OPTION,
) -> None:
    """Create a campaign and start its first stage."""
    from pydantic import ValidationError

    from opensdv.cloud.ota.campaigns import CampaignSpec
    from opensdv.model._files import describe_validation_error, read_document

    try:
        spec = CampaignSpec.model_validate(read_document(spec_file))
    except ValidationError as exc:
        raise OpenSDVError(f"{spec_file}: {describe_validation_error(exc)}") from None
    _print_progress(_ready(ctx, directory).campaigns.create(spec))


@campaign_app.command(
    epilog="Examples:\n\n  opensdv ota campaign status\n\n  opensdv ota campaign status inverter-2-4"
)
def status(
    ctx: typer.Context, campaign: str | None = typer.Argument(None), directory: Path | None = DIR_OPTION
) -> None:
    """Show every campaign, or one with its vehicles."""
    backend = _ready(ctx, directory)
    if campaign is None:
        for progress in backend.campaigns.all():
            _print_progress(progress)
        return
    _print_progress(backend.campaigns.progress(campaign))
    table = Table("VIN", "stage", "status", "detail")
    for vin, stage, state, detail in backend.campaigns.vehicles(campaign):
        table.add_row(vin, str(stage), state, detail)
    console.print(table)


def _lifecycle(action: str) -> None:
    def command(
        ctx: typer.Context, campaign: str = typer.Argument(...), directory: Path | None = DIR_OPTION
    ) -> None:
        _print_progress(getattr(_ready(ctx, directory).campaigns, action)(campaign))

    command.__doc__ = f"{action.capitalize()} a campaign."
    campaign_app.command(name=action, epilog=f"Examples:\n\n  opensdv ota campaign {action} inverter-2-4")(
        command
    )


for _action in ("pause", "resume", "advance", "cancel"):
    _lifecycle(_action)


@app.command(
    epilog="Examples:\n\n  opensdv fleet provision-service ota --host ota.example.com --out IDENTITIES_DIR\n\n"
    "  opensdv ota serve --host 0.0.0.0 --port 8443\n\n"
    "The same service as `opensdv cloud run --only ota` (its identity in cloud.identities_dir)."
)
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8081, "--port"),
    directory: Path | None = DIR_OPTION,
) -> None:
    """Serve metadata, images (with range requests) and manifest uploads over HTTPS to the fleet's
    certificates: each car reads and reports only its own director metadata."""
    import asyncio

    from opensdv.cloud.process import CloudProcess
    from opensdv.programs import run_until_signalled

    backend = _ready(ctx, directory)
    backend.database.close()
    s = settings(ctx)
    cloud = s.cloud.model_copy(update={"ota_host": host, "ota_port": port, "ota_dir": backend.path})
    process = CloudProcess(s.model_copy(update={"cloud": cloud}), frozenset({"ota"}))
    console.print(f"OTA back end {backend.path} on https://{host}:{port}/ (director/<VIN>/..., image/...)")
    asyncio.run(run_until_signalled(process.run))
