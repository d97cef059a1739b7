"""The two halves stay apart: the vehicle and the cloud share only ``model``, ``physics`` and the
``link`` (and the small root modules); neither imports the other. Only the demo and the CLI
compose them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "opensdv"


def _imports(package: str) -> dict[str, set[str]]:
    """Module file -> the opensdv modules it imports (also inside functions)."""
    found: dict[str, set[str]] = {}
    for path in (SRC / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(SRC))] = {n for n in names if n.startswith("opensdv.")}
    return found


@pytest.mark.parametrize(("half", "other"), [("cloud", "vehicle"), ("vehicle", "cloud")])
def test_one_half_never_imports_the_other(half: str, other: str) -> None:
    crossing = {
        module: sorted(n for n in names if n.startswith(f"opensdv.{other}"))
        for module, names in _imports(half).items()
        if any(n.startswith(f"opensdv.{other}") for n in names)
    }
    assert crossing == {}


@pytest.mark.parametrize("shared", ["model", "physics", "link", "storage"])
def test_shared_parts_import_neither_half(shared: str) -> None:
    crossing = {
        module: sorted(names)
        for module, names in _imports(shared).items()
        if any(n.startswith(("opensdv.vehicle", "opensdv.cloud", "opensdv.demo")) for n in names)
    }
    assert crossing == {}


def test_no_function_is_longer_than_120_lines() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.name} ({node.end_lineno - node.lineno + 1})"  # type: ignore[operator]
        for path in SRC.rglob("*.py")
        if path.name != "vehicle_model.py"  # generated
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 120  # type: ignore[operator]
    ]
    assert long == []
