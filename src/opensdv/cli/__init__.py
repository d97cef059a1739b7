"""``opensdv``: one command, one sub-command per part of the platform.

The sub-commands are listed here by name and summary and imported only when one runs, so
``opensdv --help``, ``--version`` and ``opensdv PART --help`` start at once: none of them imports
gRPC, FastAPI, DuckDB, numpy or the OCPP stack (tests/test_cli_startup.py checks it).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from opensdv import __version__
from opensdv.errors import OpenSDVError

__all__ = ["app", "main"]

SUBCOMMANDS: dict[str, str] = {  # name -> summary; each lives in opensdv.cli.<name> (but see MODULES)
    "vss": "Inspect VSS signal catalogs (the shipped one, official exports, overlays).",
    "components": "Standard battery modules and e-axles: list, show, check compatibility.",
    "vehicles": "Vehicle definitions: brand, model, pack, e-axles, ECUs.",
    "broker": "The vehicle data broker (KUKSA kuksa.val v2 + v1 over gRPC).",
    "can": "Brand adapters: OEM CAN (DBC) <-> VSS signals in the broker.",
    "twin": "Physical twins: consumption, range, pack/e-axle choices and battery ageing.",
    "app": "Vehicle apps: SDK scaffolding, typed model, runtime, packages.",
    "ota": "Over-the-air updates: Uptane director and image repository.",
    "energy": "Energy services: charging stations (OCPP), smart charging and V2G, battery health and passports.",
    "db": "Create or upgrade the platform database and show its state.",
    "config": "Show the effective settings (file, environment and flags applied).",
    "vehicle": "One car's platform on its computer: init a config, run it.",
    "cloud": "The fleet cloud's services (API, ingest, OTA, energy): run them, add operators.",
    "data": "Data collection campaigns on VSS: create, steer, export (through the fleet API).",
    "fleet": "Fleet identities: the CA, cars' and services' certificates, the command key, revocation.",
    "demo": "Run the platform demo: every demo vehicle built from shared standard components.",
}


# where a sub-command's module is named otherwise: a module opensdv.cli.app, once imported, would
# replace this package's ``app`` (the root command) as an attribute of the package
MODULES = {"app": "apps"}


class _LazyGroup(TyperGroup):
    """Imports a sub-command's module when it is resolved; the root help lists summaries only.
    (Contexts are typed ``Any``: typer vendors click and exposes no public name for its types.)"""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(SUBCOMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:  # typer's (vendored) click Command
        if cmd_name not in SUBCOMMANDS:
            return None
        if self._listing:
            return TyperCommand(cmd_name, help=SUBCOMMANDS[cmd_name], short_help=SUBCOMMANDS[cmd_name])
        module = importlib.import_module(f"opensdv.cli.{MODULES.get(cmd_name, cmd_name)}")
        command = typer.main.get_command(module.app)
        command.name = cmd_name
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="opensdv",
    cls=_LazyGroup,
    help="OpenSDV: one software-defined-vehicle platform for every brand.\n\n"
    "Start with [bold]opensdv demo[/bold]; every sub-command has --help with examples.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"opensdv {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    ctx: typer.Context,
    config_file: Path | None = typer.Option(
        None, "--config", help="settings file (default ./opensdv.toml if present)"
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    ctx.obj = config_file  # read when a command needs the settings (cli._common.settings)


def main() -> None:
    """Entry point: turns every ``OpenSDVError`` into one red line and exit status 2."""
    try:
        app()
    except OpenSDVError as exc:
        from rich.markup import escape

        from opensdv.cli._common import error_console

        error_console.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
