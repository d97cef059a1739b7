"""``opensdv vss``: look into VSS catalogs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.tree import Tree

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import VSS_OPTION, console, table, vss_catalog

if TYPE_CHECKING:
    from opensdv.model import VssCatalog

app = typer.Typer(
    name="vss",
    help=SUBCOMMANDS["vss"],
    no_args_is_help=True,
)


@app.command(
    epilog="Examples:\n\n"
    "  opensdv vss tree --depth 3\n\n"
    "  opensdv vss tree --root Vehicle.Powertrain.TractionBattery\n\n"
    "  opensdv vss tree --vss vss_6.0.json --vss my_overlay.yaml"
)
def tree(
    ctx: typer.Context,
    vss: list[Path] | None = VSS_OPTION,
    root: str = typer.Option("Vehicle", help="branch to start from"),
    depth: int = typer.Option(2, min=1, help="branch levels to show below the root"),
) -> None:
    """Show the branch tree with the number of leaves below each branch."""
    from opensdv.model.vss import UnknownPathError

    catalog = vss_catalog(ctx, vss)
    leaves = catalog.matching(root)
    if not leaves:
        raise UnknownPathError(root)
    counts: dict[str, int] = {}
    for leaf in leaves:
        parts = leaf.path.split(".")
        for i in range(1, len(parts)):
            counts[".".join(parts[:i])] = counts.get(".".join(parts[:i]), 0) + 1
    base_depth = root.count(".")
    top = Tree(f"[bold]{root}[/bold] ({len(leaves)} leaves)")
    nodes = {root: top}
    for branch in sorted(counts):
        level = branch.count(".") - base_depth
        parent = branch.rpartition(".")[0]
        if 0 < level <= depth and parent in nodes:
            nodes[branch] = nodes[parent].add(f"{branch.rpartition('.')[2]} [dim]({counts[branch]})[/dim]")
    console.print(top)


@app.command(
    epilog="Examples:\n\n"
    "  opensdv vss show Vehicle.Speed\n\n"
    "  opensdv vss show Vehicle.Powertrain.TractionBattery.Charging\n\n"
    "  opensdv vss show 'Vehicle.Cabin.Door.*.*.IsOpen'"
)
def show(
    ctx: typer.Context,
    path: str = typer.Argument(
        ..., help="a leaf, a branch, or a pattern with * (one level) and ** (any levels)"
    ),
    vss: list[Path] | None = VSS_OPTION,
) -> None:
    """Show the metadata of one signal, or a table of every signal below a branch."""
    from opensdv.model.vss import UnknownPathError

    catalog = vss_catalog(ctx, vss)
    leaves = catalog.matching(path)
    if not leaves:
        raise UnknownPathError(path)
    if len(leaves) == 1 and leaves[0].path == path:
        leaf = leaves[0]
        shown = table("field", "value", show_header=False, title=leaf.path)
        for name, value in (
            ("type", leaf.entry_type),
            ("datatype", leaf.datatype),
            ("unit", leaf.unit),
            ("min", leaf.min),
            ("max", leaf.max),
            ("allowed", ", ".join(map(str, leaf.allowed)) if leaf.allowed else None),
            ("default", leaf.default),
            ("description", leaf.description),
            ("comment", leaf.comment),
            ("deprecation", leaf.deprecation),
            ("id", leaf.id),
        ):
            if value is not None:
                shown.add_row(name, str(value))
        console.print(shown)
        return
    shown = table(
        "path", "type", "datatype", "unit", "range / allowed", title=f"{len(leaves)} signals matching {path}"
    )
    for leaf in leaves:
        limits = (
            ", ".join(map(str, leaf.allowed))
            if leaf.allowed
            else ("" if leaf.min is None and leaf.max is None else f"{leaf.min}..{leaf.max}")
        )
        shown.add_row(leaf.path, str(leaf.entry_type), str(leaf.datatype), leaf.unit or "", limits)
    console.print(shown)


def summary(catalog: VssCatalog) -> Table:
    from opensdv.model import EntryType

    shown = table("entry type", "leaves", title=f"{len(catalog)} leaves, {len(catalog.branches)} branches")
    for entry_type in EntryType:
        shown.add_row(str(entry_type), str(sum(1 for leaf in catalog if leaf.entry_type is entry_type)))
    return shown


@app.command(
    epilog="Examples:\n\n"
    "  opensdv vss validate ../shared/vss/vss_6.0.json\n\n"
    "  opensdv vss validate vss_6.0.json oem_overlay.yaml   [dim]# base, then overlay[/dim]"
)
def validate(files: list[Path] = typer.Argument(..., help="catalog file, then overlay files")) -> None:
    """Check catalog files (types, datatypes, limits, allowed values, defaults) and count leaves.

    Exits 2 with the file, path and field of the first problem.
    """
    from opensdv.model import load_vss

    catalog = load_vss(*files)
    console.print(summary(catalog))
    console.print(f"[green]valid:[/green] {', '.join(map(str, files))}")
