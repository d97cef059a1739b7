"""``opensdv can``: brand adapters between CAN buses and the data broker."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import component_catalog, console, settings, table, vss_catalog
from opensdv.errors import OpenSDVError
from opensdv.files import parse_json, read_text

if TYPE_CHECKING:
    import can as python_can

app = typer.Typer(name="can", help=SUBCOMMANDS["can"], no_args_is_help=True)


def _mapping_for(ctx: typer.Context, vehicle: str | None, mapping: Path | None) -> str | Path:
    if mapping is not None:
        return mapping
    if vehicle is None:
        raise OpenSDVError("name a --vehicle (its CAN adapter is used) or a --mapping file")
    adapter = component_catalog(ctx).vehicle(vehicle).definition.can_adapter
    if adapter is None:
        raise OpenSDVError(f"vehicle {vehicle} has no can_adapter in its definition")
    return adapter


def _stats_path(ctx: typer.Context, name: str) -> Path:
    return settings(ctx).data_dir / "can" / f"{name}.json"


async def _until_signal(frames: AsyncIterator[python_can.Message]) -> AsyncIterator[python_can.Message]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    pending = asyncio.ensure_future(stop.wait())
    iterator = frames.__aiter__()
    while True:
        nxt = asyncio.ensure_future(iterator.__anext__())
        done, _ = await asyncio.wait({nxt, pending}, return_when=asyncio.FIRST_COMPLETED)
        if pending in done:
            nxt.cancel()
            return
        try:
            yield nxt.result()
        except StopAsyncIteration:
            pending.cancel()
            return


@app.command(
    epilog="Examples:\n\n"
    "  opensdv can feed --vehicle nissan-leaf-40 --bus socketcan:vcan0\n\n"
    "  opensdv can feed --vehicle honda-e-advance --bus file:drive.log --speed 10 --broker 127.0.0.1:55556\n\n"
    "  opensdv can feed --mapping my_brand.yaml --bus virtual --token-file feeder.token\n\n"
    "Counters (frames, unknown ids, dropped values by reason) go to a stats file every second: see 'opensdv can stats'."
)
def feed(
    ctx: typer.Context,
    vehicle: str | None = typer.Option(None, help="vehicle id; its CAN adapter's mapping is used"),
    mapping: Path | None = typer.Option(None, help="a mapping file instead of the vehicle's"),
    bus: str = typer.Option(
        ..., help="virtual[:CHANNEL], socketcan:vcan0, socketcan:can0, or file:LOG (candump .log, .blf, .asc)"
    ),
    speed: float = typer.Option(
        1.0, min=0, help="replay speed for file: buses (1 original timing, 0 as fast as possible)"
    ),
    broker: str = typer.Option("127.0.0.1:55555", help="kuksa.val.v2 broker address (OpenSDV's or KUKSA's)"),
    token_file: Path | None = typer.Option(
        None, help="file with a bearer token (scope: provide for the mapped signals)"
    ),
    tls_ca: Path | None = typer.Option(None, help="CA certificate: connect with TLS"),
    stats_file: Path | None = typer.Option(
        None, help="where counters go (default: data dir/can/MAPPING.json)"
    ),
) -> None:
    """Feed a vehicle's CAN frames into a broker as a kuksa.val.v2 provider, and its actuation requests back onto the bus."""
    from opensdv.vehicle.can import Adapter, Feeder, GrpcSink, bus_frames, load_mapping, log_frames, open_bus

    resolved = load_mapping(_mapping_for(ctx, vehicle, mapping))
    catalog = vss_catalog(ctx, None)
    adapter = Adapter(resolved, catalog)
    token = token_file.read_text().strip() if token_file else None
    sink = GrpcSink(broker, catalog, token=token, root_certificates=tls_ca)
    stats = stats_file or _stats_path(ctx, resolved.id)

    async def main() -> None:
        if bus.startswith("file:"):
            frames: AsyncIterator[python_can.Message] = log_frames(Path(bus.removeprefix("file:")), speed)
            live = None
        else:
            live = open_bus(bus)
            frames = bus_frames(live)
        console.print(
            f"feeding {resolved.id} from {bus} into {broker} ({len(adapter.signal_paths)} signals, {len(adapter.actuator_paths)} actuators)"
        )
        try:
            result = await Feeder(adapter).run(_until_signal(frames), sink, bus=live, stats_file=stats)
        finally:
            if live is not None:
                live.shutdown()
        console.print(
            f"done: {result.frames} frames, {result.updates} VSS updates, dropped {dict(result.dropped) or 'none'}"
        )

    asyncio.run(main())


@app.command(
    name="map",
    epilog="Examples:\n\n  opensdv can map --check\n\n  opensdv can map --vehicle mitsubishi-ek-x-ev\n\n  opensdv can map --check --mapping my_brand.yaml",
)
def map_(
    ctx: typer.Context,
    vehicle: str | None = typer.Option(None, help="show (or check) this vehicle's mapping"),
    mapping: Path | None = typer.Option(None, help="show (or check) a mapping file"),
    check: bool = typer.Option(
        False,
        "--check",
        help="verify every mapping: DBC messages and signals exist, VSS paths exist, units convert",
    ),
) -> None:
    """Show a vehicle's DBC <-> VSS mapping, or check mappings (all shipped ones by default)."""
    from opensdv.vehicle.can import Adapter, CanMappingError, load_mapping, shipped_mappings

    catalog = vss_catalog(ctx, None)
    if check:
        references: list[str | Path] = (
            [_mapping_for(ctx, vehicle, mapping)] if (vehicle or mapping) else list(shipped_mappings())
        )
        failed = False
        for reference in references:
            try:
                adapter = Adapter(load_mapping(reference), catalog)
                console.print(
                    f"[green]ok[/green] {adapter.mapping.id}: {len(adapter.signal_paths)} signals, {len(adapter.actuator_paths)} actuators, DBC {', '.join(adapter.mapping.dbc)}"
                )
            except CanMappingError as exc:
                failed = True
                console.print(f"[bold red]FAIL[/bold red] {escape(str(exc))}")
        raise typer.Exit(1 if failed else 0)
    resolved = load_mapping(_mapping_for(ctx, vehicle, mapping))
    shown = table(
        "VSS path",
        "direction",
        "DBC message.signal",
        "transform",
        title=f"{resolved.id}: {', '.join(resolved.dbc)}",
    )
    for path, entry in resolved.signals.items():
        transform = (
            "values"
            if entry.values
            else (f"x{entry.scale:g}+{entry.offset:g}" if (entry.scale, entry.offset) != (1.0, 0.0) else "")
        )
        shown.add_row(path, "<- sensor", f"{entry.message}.{'+'.join(entry.signals)}", transform)
    for path, actuator in resolved.actuators.items():
        shown.add_row(
            path, "-> actuator", f"{actuator.message}.{actuator.signal}", "values" if actuator.values else ""
        )
    console.print(shown)


@app.command(
    epilog="Examples:\n\n  opensdv can stats\n\n  opensdv can stats --file /var/lib/opensdv/can/nissan-leaf-2018.json"
)
def stats(
    ctx: typer.Context,
    file: list[Path] | None = typer.Option(
        None, help="stats file(s) (default: every feeder's in the data dir)"
    ),
) -> None:
    """Show the feeders' counters: frames, unknown ids, VSS updates, and dropped values by reason."""
    files = file or sorted((settings(ctx).data_dir / "can").glob("*.json"))
    if not files:
        raise OpenSDVError(
            f"no feeder stats in {settings(ctx).data_dir / 'can'}: start 'opensdv can feed' first"
        )
    for path in files:
        data = parse_json(read_text(path), path)
        if not isinstance(data, dict):
            raise OpenSDVError(f"{path}: feeder stats are a JSON object")
        shown = table("counter", "value", title=f"{data.get('vehicle', path.stem)} ({path})")
        for key in (
            "frames",
            "unknown_ids",
            "mapped_frames",
            "updates",
            "throttled",
            "actuations",
            "actuation_frames",
        ):
            shown.add_row(key, str(data.get(key, 0)))
        for reason, count in (data.get("dropped") or {}).items():
            shown.add_row(
                f"dropped: {reason}", f"{count}  (last: {data.get('last_drop', {}).get(reason, '')})"
            )
        console.print(shown)
