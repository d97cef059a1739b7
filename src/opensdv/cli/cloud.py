"""``opensdv cloud``: the fleet cloud's services as programs for a server, and their operators."""

from __future__ import annotations

from pathlib import Path

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings, table
from opensdv.cli.cloud_jobs import app as jobs_app

app = typer.Typer(name="cloud", help=SUBCOMMANDS["cloud"], no_args_is_help=True)
operator_app = typer.Typer(name="operator", help="Operator accounts of the fleet API.", no_args_is_help=True)
app.add_typer(operator_app)
app.add_typer(jobs_app)


@app.command(
    epilog="Examples:\n\n  opensdv cloud run --config cloud.toml\n\n"
    "  opensdv cloud run --config cloud.toml --only api,ingest\n\n"
    "  opensdv cloud run --config cloud.toml --only ota --log-format json\n\n"
    "Every key also reads from OPENSDV_CLOUD__* variables; ops endpoints on [cloud] ops_port."
)
def run(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="the cloud's cloud.toml"),
    only: str = typer.Option("api,ingest,ota,energy", help="the services this process runs, comma-separated"),
    log_format: str = typer.Option("text", help="text, or json (one object a line)"),
    ray_address: str | None = typer.Option(
        None, help="fleet jobs on Ray: local, auto or ray://host:10001 (overrides cloud.ray_address)"
    ),
) -> None:
    """Run the cloud's services until SIGTERM: API and dashboard, ingest, OTA, energy (CSMS)."""
    import asyncio

    from opensdv.cloud.process import CloudProcess
    from opensdv.config import load_settings
    from opensdv.programs import configure_logging, run_until_signalled

    configure_logging(log_format)
    flags = {"cloud": {"ray_address": ray_address}} if ray_address else {}
    chosen = load_settings(config, **flags) if config or flags else settings(ctx)
    process = CloudProcess(chosen, frozenset(s.strip() for s in only.split(",") if s.strip()))

    console.print(f"cloud: {', '.join(sorted(process.only))}; data in {chosen.data_dir}")
    asyncio.run(run_until_signalled(process.run))


def _operators(ctx: typer.Context, config: Path | None):  # type: ignore[no-untyped-def]
    from opensdv.cloud.fleet.operators import Operators
    from opensdv.cloud.process import token_key
    from opensdv.config import load_settings
    from opensdv.storage import Database

    chosen = load_settings(config) if config else settings(ctx)
    database = Database(chosen.effective_database_url)
    database.migrate()
    return Operators(database, token_key(chosen.data_dir))


CONFIG_OPTION = typer.Option(None, "--config", help="the cloud's cloud.toml (for its database)")


@operator_app.command(
    name="add",
    epilog="Examples:\n\n  opensdv cloud operator add nissan-ops --tenant Nissan --can-command\n\n"
    "  opensdv cloud operator add platform --tenant '*'\n\n"
    "The secret is read from OPENSDV_OPERATOR_SECRET or asked for; --generate makes and prints one.",
)
def operator_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the operator's login name"),
    tenant: str = typer.Option(..., help="the brand it sees ('*': every brand)"),
    can_command: bool = typer.Option(False, help="may send remote commands to cars"),
    generate: bool = typer.Option(False, help="generate a random secret and print it once"),
    secret: str | None = typer.Option(None, envvar="OPENSDV_OPERATOR_SECRET", hidden=True),
    config: Path | None = CONFIG_OPTION,
) -> None:
    """Create an operator of the fleet API."""
    import secrets as random

    if generate:
        secret = random.token_urlsafe(18)
    elif secret is None:
        secret = typer.prompt("secret", hide_input=True, confirmation_prompt=True)
    _operators(ctx, config).add(name, secret, tenant, can_command=can_command)
    console.print(f"operator {name} added (tenant {tenant}{', may command' if can_command else ''})")
    if generate:
        console.print(f"secret (shown once): {secret}", highlight=False)


@operator_app.command(name="list", epilog="Examples:\n\n  opensdv cloud operator list")
def operator_list(ctx: typer.Context, config: Path | None = CONFIG_OPTION) -> None:
    """List the operators (never their secrets)."""
    shown = table("name", "tenant", "may command")
    for operator in _operators(ctx, config).all():
        shown.add_row(operator.name, operator.tenant, "yes" if operator.can_command else "no")
    console.print(shown)


@operator_app.command(name="remove", epilog="Examples:\n\n  opensdv cloud operator remove nissan-ops")
def operator_remove(ctx: typer.Context, name: str, config: Path | None = CONFIG_OPTION) -> None:
    """Remove an operator: its bearer tokens stop working at once."""
    _operators(ctx, config).remove(name)
    console.print(f"operator {name} removed; its tokens no longer work")
