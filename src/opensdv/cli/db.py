"""``opensdv db``: the platform's database (SQLite file by default, PostgreSQL by URL)."""

from __future__ import annotations

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings

app = typer.Typer(name="db", help=SUBCOMMANDS["db"], no_args_is_help=True)

URL_OPTION = typer.Option(
    None, "--url", help="SQLAlchemy URL (default: settings' database_url, else a SQLite file)"
)


@app.command(
    epilog="Examples:\n\n  opensdv db upgrade\n\n  opensdv db upgrade --url postgresql+psycopg://opensdv:secret@localhost/opensdv"
)
def upgrade(ctx: typer.Context, url: str | None = URL_OPTION) -> None:
    """Apply every pending migration (safe to run again)."""
    from opensdv.storage import Database

    database = Database(url or settings(ctx).effective_database_url)
    database.migrate()
    console.print(f"{database.url}: schema at revision {database.current_revision()}")


@app.command(
    epilog="Examples:\n\n  opensdv db status\n\n  OPENSDV_DATABASE_URL=sqlite:///fleet.db opensdv db status"
)
def status(ctx: typer.Context, url: str | None = URL_OPTION) -> None:
    """Show the database URL (password hidden), its schema revision and the newest one."""
    from opensdv.storage import Database

    database = Database(url or settings(ctx).effective_database_url)
    current, head = database.current_revision(), database.head_revision()
    state = (
        "up to date" if current == head else f"behind: run [bold]opensdv db upgrade[/bold] (newest is {head})"
    )
    console.print(f"{database.url}: revision {current or 'none'} ({state})")
