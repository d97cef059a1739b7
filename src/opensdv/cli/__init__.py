"""``opensdv``: one command, one sub-command per part of the platform."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from opensdv import __version__
from opensdv.cli import app as app_cli
from opensdv.cli import broker, can, components, config, db, demo, energy, ota, twin, vehicles, vss
from opensdv.cli._common import console, error_console
from opensdv.config import load_settings
from opensdv.errors import OpenSDVError

__all__ = ["app", "main"]

app = typer.Typer(
    name="opensdv",
    help="OpenSDV: one software-defined-vehicle platform for every brand.\n\n"
    "Start with [bold]opensdv demo[/bold]; every sub-command has --help with examples.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for module in (vss, components, vehicles, broker, can, twin, app_cli, ota, energy, db, config):
    app.add_typer(module.app)
app.command(name="demo", epilog=demo.EPILOG)(demo.run)


def _version(value: bool) -> None:
    if value:
        console.print(f"opensdv {__version__}")
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
    ctx.obj = load_settings(config_file)


def main() -> None:
    """Entry point: turns every ``OpenSDVError`` into one red line and exit status 2."""
    try:
        app()
    except OpenSDVError as exc:
        error_console.print(f"[bold red]error:[/bold red] {exc}", highlight=False)
        sys.exit(2)
