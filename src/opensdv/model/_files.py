"""Reading catalog files (JSON or YAML) and turning pydantic errors into messages naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opensdv.errors import OpenSDVError
from opensdv.files import FileFormatError, parse_json, parse_yaml, read_text


class ModelError(OpenSDVError):
    """The root of the model's errors: catalogs, signals and their values."""


class CatalogError(ModelError):
    """A catalog file is unreadable or a record in it breaks a rule.

    The message always names the file, the record or field, and the offending value.
    """

    def __init__(self, source: str | Path, where: str, problem: str) -> None:
        self.source = str(source)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")


def read_document(path: Path) -> Any:
    """Parse a ``.json``, ``.yaml`` or ``.yml`` file within ``opensdv.files``' bounds; errors name
    the file (and the line where the syntax says one)."""
    suffix = path.suffix.lower()
    if suffix not in {".json", ".yaml", ".yml"}:
        raise CatalogError(path, "", f"unsupported file type {path.suffix!r} (use .json, .yaml or .yml)")
    try:
        text = read_text(path)
        return parse_json(text, path) if suffix == ".json" else parse_yaml(text, path)
    except FileFormatError as exc:
        raise CatalogError(path, exc.where, exc.problem) from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per failed field: ``field.path: message (got VALUE)``."""
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(record)"
        message = error["msg"].removeprefix("Value error, ")
        got = error.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        parts.append(f"{field}: {message}{shown}")
    return "; ".join(parts)
