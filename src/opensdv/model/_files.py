"""Reading catalog files (JSON or YAML) and turning pydantic errors into messages naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from opensdv.errors import OpenSDVError


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
    """Parse a ``.json``, ``.yaml`` or ``.yml`` file; syntax errors name the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(path, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(path, "", f"cannot read file: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(path, f"line {exc.lineno}", f"invalid JSON: {exc.msg}") from None
    if path.suffix.lower() in {".yaml", ".yml"}:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else ""
            raise CatalogError(path, where, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    raise CatalogError(path, "", f"unsupported file type {path.suffix!r} (use .json, .yaml or .yml)")


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
