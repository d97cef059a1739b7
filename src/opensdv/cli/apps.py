"""``opensdv app``: write, check, run and package vehicle apps."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import textwrap
from pathlib import Path

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import component_catalog, console, table, vss_catalog
from opensdv.errors import OpenSDVError

app = typer.Typer(name="app", help=SUBCOMMANDS["app"], no_args_is_help=True)

_MANIFEST = """\
name = "{name}"
version = "0.1.0"
publisher = "{publisher}"
entry = "{module}:{cls}"
description = "What {name} does for the driver."
reads = ["Vehicle.Speed"]
actuates = []

[settings]
report_every_s = 5.0
"""
_CODE = '''\
"""{name}: a vehicle app. Runs unchanged on every brand the platform supports."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from opensdv.vehicle.apps import VehicleApp, every, on_change

log = logging.getLogger("{name}")


class {cls}(VehicleApp):
    top_speed: float = 0.0
    updated: asyncio.Event | None = None  # set on every speed update (tests wait on it)

    async def on_start(self) -> None:
        self.updated = asyncio.Event()

    @on_change("Vehicle.Speed")
    async def speed_changed(self, values: Mapping[str, Any]) -> None:
        self.top_speed = max(self.top_speed, values["Vehicle.Speed"] or 0.0)
        if self.updated is not None:
            self.updated.set()

    @every(5.0)
    async def report(self) -> None:
        log.info("top speed so far: %.1f km/h", self.top_speed)
'''
_TEST = '''\
"""Run {name} against a real broker in this process."""

import asyncio

from opensdv.vehicle.apps import VehicleClient
from opensdv.vehicle.apps.testing import app_broker
from opensdv.vehicle.broker import ALLOW_ALL
from {module} import {cls}


async def test_top_speed() -> None:
    async with app_broker() as server:
        app = {cls}(VehicleClient(server.target))
        running = asyncio.create_task(app.run())
        server.broker.publish({{"Vehicle.Speed": 88.0}}, ALLOW_ALL)
        async with asyncio.timeout(10):
            while app.top_speed < 88.0:
                if app.updated is None:
                    await asyncio.sleep(0)  # on_start has not run yet
                    continue
                await app.updated.wait()
                app.updated.clear()
        app.stop()
        await running
        assert app.top_speed == 88.0
'''


@app.command(epilog="Examples:\n\n  opensdv app new seat-heater --publisher 'Honda Motor Co.'")
def new(
    name: str = typer.Argument(..., help="lower-case, digits and '-'"),
    publisher: str = typer.Option("me", help="who signs and supports the app"),
    directory: Path = typer.Option(Path("."), "--dir", help="where the app directory is created"),
) -> None:
    """Create an app directory: app.toml, the app module and a test."""
    from opensdv.vehicle.apps.manifest import check_app_name, load_manifest

    target = directory / check_app_name(name)  # before anything is written
    if target.exists():
        raise OpenSDVError(f"{target} already exists")
    module = name.replace("-", "_")
    cls = "".join(part.capitalize() for part in name.split("-"))
    target.mkdir(parents=True)
    values = {"name": name, "publisher": publisher, "module": module, "cls": cls}
    (target / "app.toml").write_text(_MANIFEST.format(**values))
    (target / f"{module}.py").write_text(_CODE.format(**values))
    (target / f"test_{module}.py").write_text(_TEST.format(**values))
    load_manifest(target)  # what we wrote must be valid
    console.print(f"created {target}: app.toml, {module}.py, test_{module}.py")
    console.print(
        textwrap.dedent(f"""\
        next: cd {target} && python -m pytest        (runs the app against a real broker)
              opensdv demo --duration 60 &           (cars with brokers on 127.0.0.1:55555 and up)
              opensdv app run {target} --broker 127.0.0.1:55555 --vehicle nissan-leaf-40""")
    )


@app.command(
    epilog="Examples:\n\n  opensdv app model -o my_model.py\n\n  opensdv app model --vss vss_6.0.json -o vss6.py"
)
def model(
    ctx: typer.Context,
    output: Path = typer.Option(..., "-o", "--output", help="Python module to write"),
    vss: list[Path] | None = typer.Option(None, help="VSS catalog files (default: the shipped catalog)"),
) -> None:
    """Write a typed Python model of a VSS catalog (what `self.vehicle` offers in apps)."""
    from opensdv.vehicle.apps.model import generate_model

    catalog = vss_catalog(ctx, vss)
    output.write_text(generate_model(catalog, ", ".join(map(str, vss)) if vss else "the shipped catalog"))
    console.print(f"wrote {output}: {len(catalog)} signals")


@app.command(name="list", epilog="Examples:\n\n  opensdv app list\n\n  opensdv app list ./my-app")
def list_apps(
    directories: list[Path] | None = typer.Argument(None, help="app directories (default: the examples)"),
) -> None:
    """Show apps: version, publisher, what they read and actuate, what hardware they need."""
    from opensdv.vehicle.apps.examples import EXAMPLES
    from opensdv.vehicle.apps.manifest import load_manifest

    shown = table("app", "version", "publisher", "reads", "actuates", "requires")
    for directory in directories or sorted(p for p in EXAMPLES.iterdir() if (p / "app.toml").exists()):
        m = load_manifest(directory)
        needs = ", ".join(f"{k}={v}" for k, v in m.requires.model_dump().items() if v) or "-"
        shown.add_row(
            m.name, m.version, m.publisher, "\n".join(m.reads) or "-", "\n".join(m.actuates) or "-", needs
        )
    console.print(shown)


@app.command(epilog="Examples:\n\n  opensdv app package ./my-app -o my-app-0.1.0.tar.gz\n\n"
             "  opensdv ota add-image my-app-0.1.0.tar.gz --name apps/my-app-0.1.0.tar.gz --version 0.1.0 "
             "--release-counter 1 --hardware OPENSDV-APP-RUNTIME-1")  # fmt: skip
def package(
    directories: list[Path] = typer.Argument(..., help="app directories to put in one app set"),
    output: Path = typer.Option(..., "-o", "--output"),
) -> None:
    """Build a reproducible app set (.tar.gz): the image an OTA campaign installs on the APPS ECU."""
    from opensdv.vehicle.apps.package import app_set

    data = app_set(directories)
    output.write_bytes(data)
    console.print(f"wrote {output}: {len(data)} bytes, {len(directories)} app(s)")


async def _run(
    vehicle_id: str | None, ctx: typer.Context, directory: Path, broker: str, key: Path | None
) -> None:
    from opensdv.vehicle.apps.runtime import AppRuntime
    from opensdv.vehicle.broker import generate_key_pair

    vehicle = (
        component_catalog(ctx).vehicle(vehicle_id) if vehicle_id else component_catalog(ctx).all_vehicles()[0]
    )
    private = key.read_bytes() if key else generate_key_pair("ES256")[0]
    runtime = AppRuntime(vehicle, broker, private, directory.parent / ".logs")
    status = await runtime.start(directory)
    if status.state == "refused":
        raise OpenSDVError(f"{status.name} cannot run on {vehicle.id}: {status.detail}")
    console.print(
        f"{status.name} {status.version} running as pid {status.pid}; log: {runtime.log_file(status.name)}"
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(runtime.stop(status.name)))
    final = await runtime.wait(status.name)
    console.print(f"{final.name}: {final.state}" + (f" ({final.detail})" if final.detail else ""))
    if final.state in ("crashed", "failed"):
        raise OpenSDVError(
            f"{final.name} {final.state}" + (f": {final.detail}" if final.detail else "")
            + f"; its log: {runtime.log_file(final.name)}"
        )


@app.command(epilog="Examples:\n\n  opensdv app run ./my-app --broker 127.0.0.1:55555 --vehicle honda-e-advance\n\n"
             "  opensdv app run ./my-app --broker car:55555 --jwt-key jwt.key   (broker with authorization)")  # fmt: skip
def run(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., exists=True, file_okay=False),
    broker: str = typer.Option("127.0.0.1:55555", help="kuksa.val v2 broker host:port"),
    vehicle: str | None = typer.Option(
        None, help="vehicle definition to check the app's hardware needs against"
    ),
    jwt_key: Path | None = typer.Option(
        None, help="private key the broker trusts: the app's token is minted with it"
    ),
) -> None:
    """Run one app under the runtime (own process, manifest-scoped token, restarts) until Ctrl-C."""
    asyncio.run(_run(vehicle, ctx, directory, broker, jwt_key))


@app.command(epilog="Examples:\n\n  opensdv app logs ./my-app")
def logs(directory: Path = typer.Argument(..., exists=True, file_okay=False)) -> None:
    """Print the log of an app run with `opensdv app run`."""
    from opensdv.vehicle.apps.manifest import load_manifest

    name = load_manifest(directory).name
    file = directory.parent / ".logs" / f"{name}.log"
    if not file.exists():
        raise OpenSDVError(f"no log for {name} yet ({file})")
    with contextlib.suppress(BrokenPipeError):
        console.print(file.read_text(), highlight=False, markup=False)
