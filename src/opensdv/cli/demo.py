"""``opensdv demo``: the platform on embedded defaults, no configuration needed."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from opensdv.cli._common import component_catalog, console, table

if TYPE_CHECKING:
    from opensdv.demo.fleet import Demo
    from opensdv.demo.vehicles import DemoCar

EPILOG = (
    "Examples:\n\n  opensdv demo\n\n  opensdv demo --duration 10\n\n"
    "Needs no configuration. It runs what a deployment runs — `opensdv cloud run` and one `opensdv vehicle run` "
    "per car, from generated configs in a scratch directory — with twins driving the cars' virtual buses and "
    "simulated charging stations. Each car's data broker (kuksa.val v2 + v1, tokens checked) listens on "
    "127.0.0.1 from port 55555 up."
)

BRAND = "Vehicle.VehicleIdentification.Brand"
LIVE = {
    "speed km/h": "Vehicle.Speed",
    "SoC %": "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "pack V": "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
    "motor rpm": "Vehicle.Powertrain.ElectricMotor.Speed",
}


async def _read(car: DemoCar, paths: list[str]) -> dict[str, object]:
    """Ask the car's broker over the wire, as any KUKSA client would."""
    from kuksa_client.grpc.aio import VSSClient

    token = car.token(" ".join(f"read:{path}" for path in paths), "demo-console")  # the broker checks it
    host, port = car.process.server.target.rsplit(":", 1)
    async with VSSClient(host, int(port), token=token) as client:
        values = await client.get_current_values(paths)
    return {path: (point.value if point is not None else None) for path, point in values.items()}


def _cell(value: object) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


async def _live_table(demo: Demo) -> Group:
    shown = table(
        "vehicle", "cycle", *LIVE, "CAN frames", "inverter fw", "OTA", "apps",
        title="Live signals, read over kuksa.val gRPC",
    )  # fmt: skip
    for car in demo.cars:
        values = await _read(car, list(LIVE.values()))
        process = car.process
        inverters = sorted({v for name, v in process.software().items() if name.startswith("EAXLE_")})
        shown.add_row(
            car.vehicle.title,
            car.cycle,
            *(_cell(values[p]) for p in LIVE.values()),
            f"{process.feeder.stats.frames if process.feeder else 0:,}",
            ", ".join(inverters) or "-",
            process.ota_status.replace("the vehicle is ", ""),
            ", ".join(f"{s.name} ({s.state})" for s in process.app_statuses()) or "-",
        )
    return Group(shown, Text(_campaign_line(demo)))


def _campaign_line(demo: Demo) -> str:
    lines = []
    for p in demo.cloud.ota_backend().campaigns.all():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(p.counts.items()))
        reason = f" — {p.reason}" if p.reason else ""
        lines.append(f"OTA campaign {p.id}: {p.state}, stage {p.stage + 1}/{p.stages} ({counts}){reason}")
    return "\n".join(lines)


def _print_fleet(demo: Demo) -> None:
    shown = table("vehicle", "VIN", "pack", "e-axle", "broker", title="OpenSDV demo fleet: one platform, three brands")
    for car in demo.cars:
        v = car.vehicle
        shown.add_row(
            v.title,
            car.vin,
            f"{v.pack.energy_kwh:.1f} kWh {v.pack.voltage_class} {v.pack.module.chemistry}",
            ", ".join(f"{a.position} {a.peak_power_kw:.0f} kW" for a in v.eaxles),
            car.process.server.target,
        )
    console.print(shown)
    vehicles = [car.vehicle for car in demo.cars]
    failed = {v.id: [c.rule for c in v.checks() if not c.passed] for v in vehicles}
    verdict = "; ".join(f"{vid}: {', '.join(rules)}" for vid, rules in failed.items() if rules)
    console.print(f"compatibility checks: {'[red]' + verdict + '[/red]' if verdict else '[green]all pass[/green]'}")
    brands = sorted({v.definition.brand for v in vehicles})
    modules = {v.pack.module.id for v in vehicles}
    axles = {a.id for v in vehicles for a in v.eaxles}
    console.print(
        f"{len(vehicles)} vehicles of {len(brands)} brands ({', '.join(brands)}) share "
        f"{len(modules)} battery module types and {len(axles)} e-axle types."
    )


async def _demo(
    ctx: typer.Context, duration: float | None, base_port: int, http_port: int, count: int, velocitas: bool, ray: bool
) -> None:
    from opensdv.demo.fleet import start_demo

    models = component_catalog(ctx).all_vehicles()
    vehicles = [models[n % len(models)] for n in range(count or len(models))]
    with tempfile.TemporaryDirectory(prefix="opensdv-demo-") as scratch:
        with console.status("starting the cloud and the cars (provisioning identities, enrolling ECUs)"):
            demo = await start_demo(
                Path(scratch), vehicles, base_port=base_port, http_port=http_port, velocitas=velocitas, ray=ray
            )
        try:
            _print_fleet(demo)
            read_back = [str((await _read(car, [BRAND]))[BRAND]) for car in demo.cars]
            console.print(f"brands read back over kuksa.val gRPC: {', '.join(read_back)}")
            cloud = demo.cloud.addresses
            console.print(
                f"Configs in {scratch}: cloud.toml and cars/<VIN>/vehicle.toml (opensdv cloud run / vehicle run "
                f"--config FILE run the same). OTA back end on {cloud['ota']} with two campaigns. Cars install "
                "when they stop; the Mitsubishi's inverters are set to fail their health check; an app set brings "
                "the departure-charge app to every car's app runtime.",
                highlight=False,
            )
            if demo.apps_mqtt_url is not None:
                console.print(
                    "Velocitas: the seat-adjuster example runs unchanged in each car's app runtime (velocitas-sdk "
                    f"from PyPI, built once for all cars) on sdv.databroker.v1; ask it on the in-car MQTT "
                    f"{demo.apps_mqtt_url}, topic seatadjuster/setPosition/request, "
                    '{"requestId": "1", "position": 300}',
                    highlight=False,
                )
            console.print(
                f"Fleet cloud: dashboard and API on [bold]{demo.url}/[/bold] (OpenAPI at {demo.url}/docs), "
                f"MQTT link {demo.mqtt_url}, health and metrics on {cloud['ops']}/readyz and /metrics"
            )
            if demo.site is not None:
                site = demo.site.site
                console.print(
                    f"Charging depot: the cars at {len(demo.site.stations)} OCPP 2.0.1 stations on the CSMS at "
                    f"{cloud['energy']}, planned under {site.cap_kw:g} kW "
                    f"({sum(s.v2g for s in site.sessions)} V2G), a quarter-hour every 2 s"
                )
            console.print(
                "operators (this run only): " + ", ".join(f"{name} / {secret}" for name, secret in demo.credentials.items()),
                highlight=False,
            )
            if ray:
                _print_sweep(demo)
            await _watch(demo, duration)
        finally:
            await demo.stop()


def _print_sweep(demo: Demo) -> None:
    """The twin sweep of the demo's fleet as a Ray job (``opensdv cloud job sweep`` runs the same)."""
    from opensdv.cloud.jobs.sweeps import SweepJob, twin_sweep

    runner = demo.cloud.ota_backend().campaigns.runner
    cars = [(car.vin, car.vehicle.id) for car in demo.cars]
    with console.status("twin sweep of the fleet on Ray"):
        found = twin_sweep(runner, SweepJob(cars))
    lines = []
    for car in demo.cars:
        best = max(found[car.vin], key=lambda c: c.range_km, default=None)
        if best is not None:
            lines.append(f"{car.vehicle.id} {best.range_km:.0f} km ({best.modules_series} x {best.module})")
    console.print(
        f"Fleet jobs on a local Ray ({runner.workers} CPUs): the campaigns' targets were signed there; "
        f"twin sweep of {len(cars)} cars over {sum(len(c) for c in found.values())} pack/e-axle choices, "
        f"longest EPA range each: {'; '.join(lines) or 'no allowed choices'}",
        highlight=False,
    )


async def _watch(demo: Demo, duration: float | None) -> None:
    """Refresh the live table every second until Ctrl-C or ``duration`` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ends = None if duration is None else loop.time() + duration
    if duration is None:
        console.print("twins drive their cycles through their brand CAN adapters; [bold]Ctrl-C[/bold] stops the demo")
    with Live(await _live_table(demo), console=console, auto_refresh=False) as live:
        while not stop.is_set() and (ends is None or loop.time() < ends):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, max(0.0, ends - loop.time())) if ends else 1.0)
            live.update(await _live_table(demo), refresh=True)


def run(
    ctx: typer.Context,
    duration: float | None = typer.Option(
        None, min=0, help="stop after this many seconds (default: until Ctrl-C)"
    ),
    base_port: int = typer.Option(55555, min=0, max=65535, help="first broker port (0: any free ports)"),
    http_port: int = typer.Option(8000, min=0, max=65535, help="dashboard and API port (0: any free port)"),
    count: int = typer.Option(
        0, "--vehicles", min=0, help="simulated cars, spread over the demo models (default: one of each)"
    ),
    velocitas: bool = typer.Option(
        True, help="run Velocitas's seat-adjuster in the cars too (needs PyPI once to build its environment)"
    ),
    ray: bool | None = typer.Option(
        None, "--ray/--no-ray", help="fleet jobs (campaign signing, the twin sweep) on a local Ray (default: if installed)"
    ),
) -> None:
    """Run the platform demo: the cloud and one vehicle process per demo car (built from shared
    standard components), an OTA campaign rolling out to them, the cars charging at a depot."""
    import importlib.util

    from opensdv.errors import OpenSDVError

    installed = importlib.util.find_spec("ray") is not None
    if ray and not installed:
        raise OpenSDVError("--ray needs the ray package: pip install 'opensdv[scale]' (or run with --no-ray)")
    asyncio.run(_demo(ctx, duration, base_port, http_port, count, velocitas, installed if ray is None else ray))


app = typer.Typer()
app.command(name="demo", epilog=EPILOG)(run)
