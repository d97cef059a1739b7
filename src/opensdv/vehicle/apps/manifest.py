"""``app.toml``: what an app is, what it may read and actuate, and what hardware it needs.

The runtime turns ``reads``/``actuates`` into the app's token scope and nothing more (least
privilege), and refuses to start an app whose ``requires`` the vehicle does not meet.

    name = "charge-limit"
    version = "1.0.0"
    publisher = "Nissan Motor Co."
    entry = "app:ChargeLimitApp"          # module:class inside the app directory
    reads = ["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"]
    actuates = ["Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"]

    [requires]
    pack_voltage_class = "400V"
    eaxle_positions = ["front"]

    [limits]
    memory_mb = 256
    max_restarts = 3

A Velocitas app (``kind = "velocitas"``) runs unchanged: its ``script`` in a Python environment of
its own, built from ``[environment] requirements`` (each pinned with ``==``, wheels only)::

    kind = "velocitas"
    script = "src/main.py"
    [environment]
    requirements = ["velocitas-sdk==0.15.7"]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from opensdv.files import FileFormatError, parse_toml, read_text
from opensdv.model._files import CatalogError, describe_validation_error
from opensdv.model.vehicles import Vehicle

__all__ = ["APP_NAME_RULE", "AppManifest", "Environment", "Limits", "Requirements", "check_app_name", "load_manifest"]

MAX_MANIFEST_BYTES = 64 * 1024  # an app.toml is a few hundred bytes
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,40}$")
APP_NAME_RULE = "2 to 41 characters: a lower-case letter, then lower-case letters, digits or '-'"
_PATH = re.compile(r"Vehicle(\.[A-Za-z0-9_*]+)*")
_PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9.+!_-]+$")
_SCRIPT = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[\w./-]+\.py$")


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Requirements(_Manifest):
    brands: list[str] = []
    pack_voltage_class: Literal["400V", "800V"] | None = None
    chemistries: list[str] = []
    eaxle_positions: list[Literal["front", "rear"]] = []


class Limits(_Manifest):
    memory_mb: int = Field(default=256, ge=32, le=4096)
    cpu_seconds: int | None = Field(default=None, gt=0, description="CPU time before the app is killed")
    max_restarts: int = Field(default=3, ge=0, description="restarts after a crash before giving up")


class Environment(_Manifest):
    """The app's own Python environment: what the runtime installs into it (and caches)."""

    requirements: list[str] = Field(min_length=1, max_length=50)

    @field_validator("requirements")
    @classmethod
    def _pinned(cls, requirements: list[str]) -> list[str]:
        loose = [r for r in requirements if not _PINNED.fullmatch(r.strip())]
        if loose:
            raise ValueError(f"pin each requirement to one version, as name==1.2.3 (no URLs, no options): {loose}")
        return [r.strip() for r in requirements]


class AppManifest(_Manifest):
    name: str = Field(pattern=APP_NAME.pattern)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    publisher: str = Field(min_length=1)
    entry: str = Field(default="app:App", pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    description: str = ""
    reads: list[str] = []
    actuates: list[str] = []
    requires: Requirements = Requirements()
    limits: Limits = Limits()
    settings: dict[str, Any] = Field(default={}, description="handed to the app as self.settings")
    kind: Literal["opensdv", "velocitas"] = "opensdv"
    script: str | None = Field(default=None, description="velocitas: the app's main script, relative to its directory")
    environment: Environment | None = None

    @model_validator(mode="after")
    def _velocitas(self) -> AppManifest:
        if self.kind == "velocitas" and (self.script is None or self.environment is None):
            raise ValueError("a velocitas app names its script and its [environment] requirements")
        if self.kind == "opensdv" and self.script is not None:
            raise ValueError("script is for velocitas apps; an OpenSDV app names its class in entry")
        if self.script is not None and not _SCRIPT.fullmatch(self.script):
            raise ValueError(f"script {self.script!r} must be a relative path to a .py file inside the app")
        return self

    @field_validator("reads", "actuates")
    @classmethod
    def _vss_paths(cls, paths: list[str]) -> list[str]:
        bad = [p for p in paths if not _PATH.fullmatch(p)]
        if bad:
            raise ValueError(f"not VSS paths or patterns: {bad}")
        return paths

    def scope(self) -> str:
        """The token scope: exactly what the manifest declares (``actuate`` includes reading it)."""
        return " ".join([*(f"read:{p}" for p in self.reads), *(f"actuate:{p}" for p in self.actuates)])

    def unmet(self, vehicle: Vehicle) -> list[str]:
        """Why ``vehicle`` cannot run this app (empty if it can)."""
        r, problems = self.requires, []
        if r.brands and vehicle.definition.brand not in r.brands:
            problems.append(f"brand {vehicle.definition.brand} is not one of {r.brands}")
        if r.pack_voltage_class and vehicle.pack.voltage_class != r.pack_voltage_class:
            problems.append(f"pack is {vehicle.pack.voltage_class}, the app needs {r.pack_voltage_class}")
        if r.chemistries and vehicle.pack.module.chemistry not in r.chemistries:
            problems.append(f"cell chemistry {vehicle.pack.module.chemistry} is not one of {r.chemistries}")
        positions = {a.position for a in vehicle.eaxles}
        missing = [p for p in r.eaxle_positions if p not in positions]
        if missing:
            problems.append(
                f"no standard e-axle at {', '.join(missing)} (has {', '.join(sorted(positions))})"
            )
        return problems


def check_app_name(name: str) -> str:
    """``name`` if an app may be called that, else an error that spells the rule out."""
    if APP_NAME.fullmatch(name) is None:
        hint = name.lower().replace("_", "-")
        suggestion = f" (e.g. {hint!r}; its Python module is then {hint.replace('-', '_')!r})" if APP_NAME.fullmatch(hint) else ""
        raise CatalogError("app name", repr(name), f"{APP_NAME_RULE}{suggestion}")
    return name


def load_manifest(directory: Path) -> AppManifest:
    """An app's ``app.toml``, validated; errors name the file and the field."""
    file = directory / "app.toml"
    if not file.is_file():
        raise CatalogError(file, "", "no app.toml (is this an app directory?)")
    try:
        document = parse_toml(read_text(file, MAX_MANIFEST_BYTES), file)
    except FileFormatError as exc:
        raise CatalogError(file, exc.where, exc.problem) from None
    try:
        return AppManifest.model_validate(document)
    except ValidationError as exc:
        raise CatalogError(file, "", describe_validation_error(exc)) from None
