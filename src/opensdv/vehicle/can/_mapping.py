"""Mapping files: which DBC signal feeds which VSS path, with transforms, per vehicle model.

A mapping file is YAML validated by pydantic. ``include`` pulls in shared mappings (the
standard-component contract every brand uses); ``extends`` starts from another model's mapping and
overrides entries by VSS path, or ``remove``s them — vehicle complementation is one platform mapping
plus a brand overlay. Adding a brand means adding a DBC and a mapping file, not code.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from opensdv.model._files import CatalogError, describe_validation_error, read_document

__all__ = ["ActuatorMap", "MappingFile", "ResolvedMapping", "SignalMap", "load_mapping", "shipped_mappings"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignalMap(_Record):
    """VSS path <- DBC message.signal (or several signals of one message, combined)."""

    vss: str = Field(min_length=1)
    message: str = Field(min_length=1)
    signal: str | list[str]
    combine: Literal["mean", "min", "max"] | None = None
    unit: str | None = Field(
        default=None, description="unit of the DBC signal when the DBC gives none or a wrong one"
    )
    scale: float = 1.0
    offset: float = 0.0
    values: dict[str | int | float | bool, Any] | None = Field(
        default=None, description="DBC value or choice name -> VSS value"
    )
    min_interval_ms: float = Field(default=0.0, ge=0, description="publish at most this often")
    on_change: bool = Field(default=False, description="publish only when the VSS value changes")
    unavailable: list[float] = Field(
        default=[], max_length=16, description="DBC values that mean 'no value' (255: no set speed): nothing is published"
    )

    @field_validator("signal")
    @classmethod
    def _signals(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("signal list must not be empty")
        return value

    @property
    def signals(self) -> list[str]:
        return [self.signal] if isinstance(self.signal, str) else list(self.signal)


class ActuatorMap(_Record):
    """VSS actuator target -> DBC message.signal; the message's other signals keep their last seen
    or default values."""

    vss: str = Field(min_length=1)
    message: str = Field(min_length=1)
    signal: str = Field(min_length=1)
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    values: dict[str | int | float | bool, Any] | None = Field(
        default=None, description="VSS value -> DBC value or choice name"
    )


class CrossCheck(_Record):
    """A signal published only while a redundant measurement agrees with it (vehicle speed
    against the wheel speeds): a stuck or corrupted sensor then goes unreported, and what reads
    it — the safety guard — sees it stale instead of wrong."""

    vss: str = Field(min_length=1)
    against: list[str] = Field(min_length=1, description="VSS paths whose mean should match")
    tolerance: float = Field(default=5.0, ge=0, description="in the signal's unit")
    tolerance_ratio: float = Field(default=0.1, ge=0, le=1, description="of the redundant value, if larger")
    max_age_ms: float = Field(default=500.0, gt=0, description="redundant values older than this do not count")


class MappingFile(_Record):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    extends: str | None = None
    include: list[str] = Field(default_factory=list)
    dbc: list[str] = Field(default_factory=list, description="opendbc:NAME, an OpenSDV DBC name, or a path")
    cycle_ms: dict[str, float] = Field(
        default_factory=dict, description="message cycle times the DBC does not state"
    )
    signals: list[SignalMap] = Field(default_factory=list)
    actuators: list[ActuatorMap] = Field(default_factory=list)
    remove: list[str] = Field(
        default_factory=list, description="VSS paths an overlay drops from what it extends"
    )
    cross_checks: list[CrossCheck] = Field(default_factory=list)


class ResolvedMapping(BaseModel):
    """A mapping with ``extends`` and ``include`` applied: what the adapter compiles."""

    id: str
    description: str
    dbc: list[str]
    cycle_ms: dict[str, float]
    signals: dict[str, SignalMap]
    actuators: dict[str, ActuatorMap]
    sources: list[str]
    cross_checks: dict[str, CrossCheck] = {}


def _mappings_folder() -> Path:
    return Path(str(resources.files("opensdv.vehicle.can") / "data" / "mappings"))


def shipped_mappings() -> list[str]:
    """The brand mappings OpenSDV ships, by id."""
    return sorted(p.stem for p in _mappings_folder().glob("*.yaml"))


def _read(reference: str | Path, search: list[Path]) -> tuple[MappingFile, Path]:
    path = Path(reference)
    if not path.suffix:
        for folder in search:
            candidate = folder / f"{reference}.yaml"
            if candidate.exists():
                path = candidate
                break
        else:
            raise CatalogError(
                str(reference),
                "",
                f"no mapping named {reference!r} (shipped: {', '.join(shipped_mappings())})",
            )
    document = read_document(path)
    try:
        return MappingFile.model_validate(document), path
    except ValidationError as exc:
        raise CatalogError(path, "mapping", describe_validation_error(exc)) from None


def load_mapping(
    reference: str | Path, search: list[Path] | None = None, _seen: tuple[str, ...] = ()
) -> ResolvedMapping:
    """Load a mapping by id (shipped, or in ``search`` folders) or path, resolving extends/include."""
    folders = [*(search or []), _mappings_folder()]
    mapping, path = _read(reference, folders)
    if mapping.id in _seen:
        raise CatalogError(path, "extends/include", f"cycle: {' -> '.join([*_seen, mapping.id])}")
    if isinstance(reference, Path) or Path(str(reference)).suffix:
        folders.insert(0, path.parent)
    seen = (*_seen, mapping.id)
    parents = ([mapping.extends] if mapping.extends else []) + mapping.include
    dbc: list[str] = []
    cycle: dict[str, float] = {}
    signals: dict[str, SignalMap] = {}
    actuators: dict[str, ActuatorMap] = {}
    sources: list[str] = []
    checks: dict[str, CrossCheck] = {}
    for parent in parents:
        base = load_mapping(parent, folders[:-1], seen)
        dbc += [d for d in base.dbc if d not in dbc]
        cycle.update(base.cycle_ms)
        signals.update(base.signals)
        actuators.update(base.actuators)
        checks.update(base.cross_checks)
        sources += base.sources
    for removed in mapping.remove:
        if removed not in signals and removed not in actuators:
            raise CatalogError(
                path, "remove", f"{removed!r} is not mapped by what this file extends or includes"
            )
        signals.pop(removed, None)
        actuators.pop(removed, None)
        checks.pop(removed, None)
    for check in mapping.cross_checks:
        checks[check.vss] = check
    for entry in mapping.signals:
        signals[entry.vss] = entry
    for actuator in mapping.actuators:
        actuators[actuator.vss] = actuator
    dbc += [d for d in mapping.dbc if d not in dbc]
    cycle.update(mapping.cycle_ms)
    return ResolvedMapping(
        id=mapping.id,
        description=mapping.description,
        dbc=dbc,
        cycle_ms=cycle,
        signals=signals,
        actuators=actuators,
        sources=[*sources, str(path)],
        cross_checks=checks,
    )
