"""What every sub-command shares: consoles and the settings the root command resolved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Column, Table

if TYPE_CHECKING:
    from opensdv.config import Settings
    from opensdv.model import Catalog, VssCatalog

console = Console()
error_console = Console(stderr=True, soft_wrap=True)


def settings(ctx: typer.Context) -> Settings:
    """The settings, read when a command first needs them (``--help`` reads none): the root command
    leaves the ``--config`` path (or None) in its context object."""
    from opensdv.config import Settings, load_settings

    root = ctx.find_root()
    if not isinstance(root.obj, Settings):  # a Path or None from the root; a sub-app run on its own
        root.obj = load_settings(root.obj if isinstance(root.obj, Path) else None)
    return root.obj


def vss_catalog(ctx: typer.Context, files: list[Path] | None) -> VssCatalog:
    """``--vss`` files if given, else the configured ones, else the shipped catalog."""
    from opensdv.model import load_vss
    from opensdv.model.vss import load_default_vss

    chosen = files or settings(ctx).vss
    return load_vss(*chosen) if chosen else load_default_vss()


def component_catalog(ctx: typer.Context, extra: list[Path] | None = None) -> Catalog:
    from opensdv.model import load_catalog

    return load_catalog([*settings(ctx).catalog, *(extra or [])])


VSS_OPTION = typer.Option(None, "--vss", help="VSS file(s): base first, then overlays; repeat the flag")
CATALOG_OPTION = typer.Option(
    None, "--catalog", help="extra module / e-axle / vehicle file(s); repeat the flag"
)


def table(*headers: str, title: str | None = None, show_header: bool = True) -> Table:
    """A rich table whose cells fold instead of being cut with '...' (ids must stay readable)."""
    return Table(*(Column(h, overflow="fold") for h in headers), title=title, show_header=show_header)
