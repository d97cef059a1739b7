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
    from opensdv.demo.cloud import DemoCloud
    from opensdv.demo.energy import DemoSite
    from opensdv.demo.ota import DemoOta
    from opensdv.demo.vehicles import DemoVehicle

EPILOG = (
    "Examples:\n\n  opensdv demo\n\n  opensdv demo --duration 10\n\n"
    "Needs no configuration. Each demo vehicle gets its own data broker (kuksa.val v2 + v1) on 127.0.0.1, "
    "from port 55555 up; connect with any KUKSA client, e.g. kuksa-client grpc://127.0.0.1:55555."
)

BRAND = "Vehicle.VehicleIdentification.Brand"
LIVE = {
    "speed km/h": "Vehicle.Speed",
    "SoC %": "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "pack V": "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
    "motor rpm": "Vehicle.Powertrain.ElectricMotor.Speed",
}


async def _read(item: DemoVehicle, paths: list[str]) -> dict[str, object]:
    """Ask the broker over the wire, as any KUKSA client would."""
    from kuksa_client.grpc.aio import VSSClient

    token = item.token(" ".join(f"read:{path}" for path in paths), "demo-console")  # the broker checks it
    async with VSSClient("127.0.0.1", item.server.port, token=token) as client:
        values = await client.get_current_values(paths)
    return {path: (point.value if point is not None else None) for path, point in values.items()}


async def _live_table(running: list[DemoVehicle], ota: DemoOta) -> Group:
    shown = table(
        "vehicle",
        "cycle",
        *LIVE,
        "CAN frames",
        "inverter fw",
        "OTA",
        "apps",
        title="Live signals, read over kuksa.val gRPC",
    )
    for item in running:
        values = await _read(item, list(LIVE.values()))
        cells = [
            "-"
            if values[p] is None
            else f"{values[p]:.1f}"
            if isinstance(values[p], float)
            else str(values[p])
            for p in LIVE.values()
        ]
        frames = item.feeder.stats.frames if item.feeder else 0
        shown.add_row(
            item.vehicle.title,
            item.twin.cycle.name if item.twin else "-",
            *cells,
            f"{frames:,}",
            ota.inverter_version(item.vin),
            ota.status.get(item.vin, "-"),
            ota.apps(item.vin),
        )
    return Group(shown, Text(_campaign_line(ota)))


def _campaign_line(ota: DemoOta) -> str:
    lines = []
    for p in ota.backend.campaigns.all():
        counts = ", ".join(f"{k} {v}" for k, v in sorted(p.counts.items()))
        reason = f" — {p.reason}" if p.reason else ""
        lines.append(f"OTA campaign {p.id}: {p.state}, stage {p.stage + 1}/{p.stages} ({counts}){reason}")
    return "\n".join(lines)


async def _until_fed(running: list[DemoVehicle], timeout_s: float = 10.0) -> None:
    """Wait (bounded) until every vehicle's first frames reached its broker."""

    async def fed(item: DemoVehicle) -> None:
        await item.broker.changed.wait_until(lambda: item.feeder is None or item.feeder.stats.updates > 0)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(fed(item) for item in running))


async def _demo(
    ctx: typer.Context, duration: float | None, base_port: int, http_port: int, count: int
) -> None:
    from opensdv.demo.cloud import start_demo_cloud
    from opensdv.demo.energy import start_demo_site
    from opensdv.demo.ota import start_demo_ota
    from opensdv.demo.vehicles import start_demo_vehicles, stop_demo_vehicles

    models = component_catalog(ctx).all_vehicles()
    vehicles = [models[n % len(models)] for n in range(count or len(models))]
    running = await start_demo_vehicles(vehicles, base_port)
    scratch = tempfile.TemporaryDirectory(prefix="opensdv-demo-ota-")
    ota_task: asyncio.Task[None] | None = None
    cloud: DemoCloud | None = None
    energy: DemoSite | None = None
    try:
        shown = table(
            "vehicle",
            "VIN",
            "pack",
            "e-axle",
            "broker",
            title="OpenSDV demo fleet: one platform, three brands",
        )
        for item in running:
            v = item.vehicle
            shown.add_row(
                v.title,
                item.vin,
                f"{v.pack.energy_kwh:.1f} kWh {v.pack.voltage_class} {v.pack.module.chemistry}",
                ", ".join(f"{a.position} {a.peak_power_kw:.0f} kW" for a in v.eaxles),
                item.server.target,
            )
        console.print(shown)
        failed = {v.id: [c.rule for c in v.checks() if not c.passed] for v in vehicles}
        verdict = "; ".join(f"{vid}: {', '.join(rules)}" for vid, rules in failed.items() if rules)
        console.print(
            f"compatibility checks: {'[red]' + verdict + '[/red]' if verdict else '[green]all pass[/green]'}"
        )
        read_back = [str((await _read(item, [BRAND]))[BRAND]) for item in running]
        console.print(f"brands read back over kuksa.val gRPC: {', '.join(read_back)}")
        await _until_fed(running)
        brands = sorted({v.definition.brand for v in vehicles})
        modules = {v.pack.module.id for v in vehicles}
        axles = {a.id for v in vehicles for a in v.eaxles}
        console.print(
            f"{len(vehicles)} vehicles of {len(brands)} brands ({', '.join(brands)}) share "
            f"{len(modules)} battery module types and {len(axles)} e-axle types."
        )
        ota = start_demo_ota(running, Path(scratch.name))
        console.print(
            f"OTA: Uptane director + image repository in {scratch.name}; {_campaign_line(ota)}. "
            "Cars install when they stop; the Mitsubishi's inverter is set to fail its health check; "
            "an app set brings the departure-charge app to every car's app runtime."
        )
        ota_task = asyncio.create_task(ota.run())
        energy = await start_demo_site(running)
        cloud = await start_demo_cloud(running, ota, Path(scratch.name), http_port, {"depot": energy.site})
        console.print(
            f"Fleet cloud: dashboard and API on [bold]{cloud.url}/[/bold] (OpenAPI at {cloud.url}/docs), "
            f"MQTT link {cloud.mqtt_url}"
        )
        console.print(
            f"Charging depot: the cars at {len(energy.stations)} OCPP 2.0.1 stations on the CSMS at "
            f"{energy.url}, planned under {energy.site.cap_kw:g} kW "
            f"({sum(s.v2g for s in energy.site.sessions)} V2G), a quarter-hour every 2 s"
        )
        console.print(
            "operators (this run only): "
            + ", ".join(f"{name} / {secret}" for name, secret in cloud.credentials.items()),
            highlight=False,
        )
        await _watch(running, ota, duration)
    finally:
        if cloud is not None:
            await cloud.stop()
        if energy is not None:
            await energy.stop()
        if ota_task is not None:
            ota_task.cancel()
            await asyncio.gather(ota_task, return_exceptions=True)
        await stop_demo_vehicles(running)
        scratch.cleanup()


async def _watch(running: list[DemoVehicle], ota: DemoOta, duration: float | None) -> None:
    """Refresh the live table every second until Ctrl-C or ``duration`` seconds."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    ends = None if duration is None else loop.time() + duration
    if duration is None:
        console.print(
            "twins drive their cycles through their brand CAN adapters; [bold]Ctrl-C[/bold] stops the demo"
        )
    with Live(await _live_table(running, ota), console=console, auto_refresh=False) as live:
        while not stop.is_set() and (ends is None or loop.time() < ends):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), timeout=min(1.0, max(0.0, ends - loop.time())) if ends else 1.0
                )
            live.update(await _live_table(running, ota), refresh=True)


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
) -> None:
    """Run the platform demo: every demo vehicle built from shared standard components, each with
    its own running data broker, and an OTA campaign rolling out to them."""
    asyncio.run(_demo(ctx, duration, base_port, http_port, count))


app = typer.Typer()
app.command(name="demo", epilog=EPILOG)(run)
