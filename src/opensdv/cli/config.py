"""``opensdv config``: what the settings resolve to."""

from __future__ import annotations

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings

app = typer.Typer(
    name="config",
    help=SUBCOMMANDS["config"],
    no_args_is_help=True,
)


@app.command(
    epilog="Examples:\n\n  opensdv config show\n\n  OPENSDV_BROKER__PORT=55556 opensdv --config site.toml config show"
)
def show(ctx: typer.Context) -> None:
    """Print the settings every part will use, as JSON."""
    console.print_json(settings(ctx).model_dump_json())
