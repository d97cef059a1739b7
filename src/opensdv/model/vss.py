"""COVESA Vehicle Signal Specification catalogs.

Reads the JSON that ``vss-tools`` exports (VSS 4.0, 5.1, 6.0) and the same tree written in YAML,
flattens it to leaves, applies overlays (a later file adds branches or overrides fields of existing
nodes, the way OEMs add their own signals), and validates values against a leaf.

A document is a mapping ``name -> node``; a node has ``type`` and, for branches, ``children``.
Keys may be dotted paths (``Vehicle.Cabin.Seat.Row1``), which is how overlays usually name the
node they change; the branches on the way are created when missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from opensdv.model._files import CatalogError, ModelError, read_document

__all__ = [
    "DataType",
    "EntryType",
    "UnknownPathError",
    "VssCatalog",
    "VssLeaf",
    "VssValueError",
    "default_catalog_path",
    "load_default_vss",
    "load_vss",
    "path_pattern",
]

MAX_PATH_LENGTH = 1000  # the KUKSA databroker rejects longer paths; so do we, everywhere


class EntryType(StrEnum):
    SENSOR = "sensor"
    ACTUATOR = "actuator"
    ATTRIBUTE = "attribute"


_INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_FLOAT_LIMITS = {"float": 3.4028234663852886e38, "double": 1.7976931348623157e308}
_BASE_TYPES = frozenset({"boolean", "string", *_INTEGER_RANGES, *_FLOAT_LIMITS})
_NODE_TYPES = ("branch", "sensor", "actuator", "attribute")


@dataclass(frozen=True, slots=True)
class DataType:
    """A VSS datatype such as ``uint8`` or ``float[]``."""

    base: str
    is_array: bool = False

    @classmethod
    def parse(cls, text: object) -> DataType:
        if not isinstance(text, str):
            raise ValueError(f"datatype must be a string, got {text!r}")
        base, is_array = (text[:-2], True) if text.endswith("[]") else (text, False)
        if base not in _BASE_TYPES:
            known = ", ".join(sorted(_BASE_TYPES))
            raise ValueError(f"unknown datatype {text!r} (known: {known}, each optionally with [])")
        return cls(base, is_array)

    @property
    def is_integer(self) -> bool:
        return self.base in _INTEGER_RANGES

    @property
    def is_numeric(self) -> bool:
        return self.base in _INTEGER_RANGES or self.base in _FLOAT_LIMITS

    def __str__(self) -> str:
        return self.base + ("[]" if self.is_array else "")


class VssValueError(ModelError):
    """A value does not fit its signal: wrong type, out of range, or not an allowed value."""

    def __init__(self, path: str, value: object, reason: str) -> None:
        self.path = path
        self.value = value
        self.reason = reason
        super().__init__(f"{path}: {reason} (got {value!r})")


class UnknownPathError(ModelError, KeyError):
    """No leaf with this path in the catalog."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"unknown VSS path {path!r}")

    def __str__(self) -> str:  # KeyError would quote the message again
        return str(self.args[0])


def _check_scalar(datatype: DataType, value: object) -> object:
    """Return ``value`` normalised for ``datatype`` or raise ``ValueError`` saying why not."""
    base = datatype.base
    if base == "boolean":
        if isinstance(value, bool):
            return value
        raise ValueError("expected a boolean")
    if base == "string":
        if isinstance(value, str):
            return value
        raise ValueError("expected a string")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number ({base})")
    if base in _INTEGER_RANGES:
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"expected an integer ({base})")
            value = int(value)
        low, high = _INTEGER_RANGES[base]
        if not low <= value <= high:
            raise ValueError(f"outside the {base} range {low}..{high}")
        return value
    as_float = float(value)
    if math.isnan(as_float):
        raise ValueError(f"NaN is not a valid {base}")
    if abs(as_float) > _FLOAT_LIMITS[base]:
        raise ValueError(f"outside the {base} range")
    return as_float


@dataclass(frozen=True, slots=True)
class VssLeaf:
    """One signal: a sensor, actuator or attribute, with the rules its values must follow."""

    path: str
    entry_type: EntryType
    datatype: DataType
    description: str = ""
    unit: str | None = None
    min: int | float | None = None
    max: int | float | None = None
    allowed: tuple[Any, ...] | None = None
    default: Any = None
    comment: str | None = None
    deprecation: str | None = None
    id: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self, value: object) -> Any:
        """Return the value normalised (ints for integer types, floats, lists for arrays) or raise
        ``VssValueError`` naming the path, the value and the broken rule."""
        if self.datatype.is_array:
            if not isinstance(value, list | tuple):
                raise VssValueError(self.path, value, f"expected an array of {self.datatype.base}")
            return [self._validate_element(v, f"element {i}: ") for i, v in enumerate(value)]
        return self._validate_element(value, "")

    def bounds(self) -> tuple[int | float, int | float] | None:
        """The inclusive range a scalar number must fall in (datatype range and min/max together);
        ``None`` for non-numeric, array or enumerated leaves."""
        base = self.datatype.base
        if self.datatype.is_array or self.allowed is not None or not self.datatype.is_numeric:
            return None
        if base in _INTEGER_RANGES:
            low, high = _INTEGER_RANGES[base]
            low = max(low, math.ceil(self.min)) if self.min is not None else low
            high = min(high, math.floor(self.max)) if self.max is not None else high
            return low, high
        limit = _FLOAT_LIMITS[base]
        flow = -limit if self.min is None else max(-limit, float(self.min))
        fhigh = limit if self.max is None else min(limit, float(self.max))
        return flow, fhigh

    def checker(self) -> Callable[[Any], Any]:
        """A function equivalent to ``validate`` with a fast path for well-typed values in range.

        Anything off the fast path (wrong type, out of range, NaN, arrays, allowed lists) goes
        through ``validate``, so both always agree; the broker calls this once per value.
        """
        validate = self.validate
        bounds = self.bounds()
        if bounds is not None:
            low: Any = bounds[0]
            high: Any = bounds[1]
            kind: type = int if self.datatype.is_integer else float  # exact ints: uint64 does not fit a float

            def check_number(value: Any) -> Any:
                return value if type(value) is kind and low <= value <= high else validate(value)

            return check_number
        if self.datatype.is_array or self.allowed is not None:
            return validate
        plain: type = bool if self.datatype.base == "boolean" else str

        def check_plain(value: Any) -> Any:
            return value if type(value) is plain else validate(value)

        return check_plain

    def _validate_element(self, value: object, where: str) -> Any:
        try:
            checked = _check_scalar(self.datatype, value)
        except ValueError as exc:
            raise VssValueError(self.path, value, f"{where}{exc}") from None
        if self.min is not None and checked < self.min:  # type: ignore[operator]
            raise VssValueError(self.path, value, f"{where}below the minimum {self.min}")
        if self.max is not None and checked > self.max:  # type: ignore[operator]
            raise VssValueError(self.path, value, f"{where}above the maximum {self.max}")
        if self.allowed is not None and checked not in self.allowed:
            raise VssValueError(
                self.path, value, f"{where}not one of the allowed values {list(self.allowed)}"
            )
        return checked


def path_pattern(pattern: str) -> re.Pattern[str]:
    """KUKSA path patterns: ``*`` is one path element, ``**`` any number of them; a pattern without
    wildcards names a leaf or every leaf below a branch."""
    parts = []
    for element in pattern.split("."):
        if element == "**":
            parts.append(r"(?:[^.]+(?:\.[^.]+)*)")
        else:
            parts.append("[^.]+".join(re.escape(piece) for piece in element.split("*")))
    body = r"\.".join(parts)
    return re.compile(rf"{body}(?:\..+)?" if "*" not in pattern else body)


class VssCatalog:
    """The leaves of a VSS tree, by path and by numeric id (ids number leaves in catalog order)."""

    def __init__(self, leaves: Iterable[VssLeaf], branches: Mapping[str, str] | None = None) -> None:
        self._leaves: dict[str, VssLeaf] = {leaf.path: leaf for leaf in leaves}
        self._by_id: dict[int, VssLeaf] = {leaf.id: leaf for leaf in self._leaves.values()}
        self._checkers: dict[str, Callable[[Any], Any]] = {}
        self.branches: Mapping[str, str] = dict(branches or {})

    def __len__(self) -> int:
        return len(self._leaves)

    def __iter__(self) -> Iterator[VssLeaf]:
        return iter(self._leaves.values())

    def __contains__(self, path: object) -> bool:
        return path in self._leaves

    def get(self, path: str) -> VssLeaf | None:
        return self._leaves.get(path)

    def leaf(self, path: str) -> VssLeaf:
        """The leaf at ``path``; ``UnknownPathError`` if there is none."""
        try:
            return self._leaves[path]
        except KeyError:
            raise UnknownPathError(path) from None

    def leaf_by_id(self, leaf_id: int) -> VssLeaf:
        try:
            return self._by_id[leaf_id]
        except KeyError:
            raise UnknownPathError(f"#{leaf_id}") from None

    def matching(self, pattern: str) -> list[VssLeaf]:
        """Leaves named by a path, a branch, or a KUKSA wildcard pattern (``*``, ``**``)."""
        if pattern in self._leaves:
            return [self._leaves[pattern]]
        regex = path_pattern(pattern)
        return [leaf for path, leaf in self._leaves.items() if regex.fullmatch(path)]

    def checker(self, path: str) -> Callable[[Any], Any] | None:
        """The leaf's cached fast validator (see ``VssLeaf.checker``); ``None`` for unknown paths."""
        check = self._checkers.get(path)
        if check is None:
            leaf = self._leaves.get(path)
            if leaf is None:
                return None
            check = self._checkers[path] = leaf.checker()
        return check

    def validate(self, path: str, value: object) -> Any:
        """``leaf(path).validate(value)``, through the leaf's cached fast checker."""
        check = self.checker(path)
        if check is None:
            raise UnknownPathError(path)
        return check(value)


# ---------------------------------------------------------------------------------------- loading

_LEAF_FIELDS = ("description", "unit", "min", "max", "allowed", "default", "comment", "deprecation")


@dataclass
class _RawNode:
    fields: dict[str, Any]
    source: str


def _flatten(document: object, source: str, into: dict[str, _RawNode]) -> None:
    if not isinstance(document, dict):
        raise CatalogError(
            source, "", f"expected a mapping of VSS nodes at the top, got {type(document).__name__}"
        )

    def visit(name: str, node: object, parent: str) -> None:
        if not isinstance(name, str) or not name or any(not part for part in name.split(".")):
            raise CatalogError(source, parent or "(top)", f"invalid node name {name!r}")
        path = f"{parent}.{name}" if parent else name
        if len(path) > MAX_PATH_LENGTH:
            raise CatalogError(source, path[:60] + "...", f"path longer than {MAX_PATH_LENGTH} characters")
        if not isinstance(node, dict):
            raise CatalogError(source, path, f"expected a mapping describing the node, got {node!r}")
        # dotted names create (or reuse) the branches on the way
        elements = path.split(".")
        for depth in range(1, len(elements)):
            ancestor = ".".join(elements[:depth])
            if ancestor not in into:
                into[ancestor] = _RawNode({"type": "branch"}, source)
        if "instances" in node:
            raise CatalogError(
                source,
                path,
                "instances are not expanded (a vss-tools --no-expand export?): export with vss-tools' default "
                "expansion instead; a --no-expand export drops 'instantiate: false', so the tree cannot be expanded "
                "as vss-tools would",
            )
        fields = {k: v for k, v in node.items() if k != "children"}
        children = node.get("children", {})
        if children is None:
            children = {}
        if not isinstance(children, dict):
            raise CatalogError(source, f"{path}.children", f"expected a mapping, got {children!r}")
        if children and "type" not in fields:
            fields["type"] = "branch"
        existing = into.get(path)
        if existing is None:
            if "type" not in fields:
                raise CatalogError(
                    source, path, "new node needs a 'type' (branch, sensor, actuator, attribute)"
                )
            into[path] = _RawNode(fields, source)
        else:
            old_type, new_type = existing.fields.get("type"), fields.get("type", existing.fields.get("type"))
            if (old_type == "branch") != (new_type == "branch"):
                raise CatalogError(source, path, f"cannot change node type from {old_type!r} to {new_type!r}")
            existing.fields.update(fields)
            existing.source = source
        for child_name, child in children.items():
            visit(child_name, child, path)

    for name, node in document.items():
        visit(name, node, "")


def _number_field(raw: _RawNode, path: str, name: str, datatype: DataType) -> int | float | None:
    value = raw.fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CatalogError(raw.source, f"{path}.{name}", f"expected a number, got {value!r}")
    if not datatype.is_numeric:
        raise CatalogError(
            raw.source, f"{path}.{name}", f"{name} is only allowed on numeric datatypes, not {datatype}"
        )
    try:
        _check_scalar(DataType(datatype.base), value)
    except ValueError as exc:
        raise CatalogError(raw.source, f"{path}.{name}", f"{value!r}: {exc}") from None
    return value


def _build_leaf(path: str, raw: _RawNode, leaf_id: int) -> VssLeaf:
    node_type = raw.fields.get("type")
    if node_type not in _NODE_TYPES:
        raise CatalogError(
            raw.source,
            f"{path}.type",
            f"unknown node type {node_type!r} (expected one of {', '.join(_NODE_TYPES)})",
        )
    if "datatype" not in raw.fields:
        raise CatalogError(raw.source, path, f"{node_type} needs a 'datatype'")
    try:
        datatype = DataType.parse(raw.fields["datatype"])
    except ValueError as exc:
        raise CatalogError(raw.source, f"{path}.datatype", str(exc)) from None
    minimum = _number_field(raw, path, "min", datatype)
    maximum = _number_field(raw, path, "max", datatype)
    if minimum is not None and maximum is not None and minimum > maximum:
        raise CatalogError(raw.source, path, f"min {minimum} is greater than max {maximum}")
    allowed_raw = raw.fields.get("allowed")
    element = VssLeaf(path, EntryType(node_type), DataType(datatype.base), min=minimum, max=maximum)
    allowed: tuple[Any, ...] | None = None
    if allowed_raw is not None:
        if not isinstance(allowed_raw, list) or not allowed_raw:
            raise CatalogError(
                raw.source, f"{path}.allowed", f"expected a non-empty list, got {allowed_raw!r}"
            )
        try:
            allowed = tuple(element.validate(v) for v in allowed_raw)
        except VssValueError as exc:
            raise CatalogError(raw.source, f"{path}.allowed", exc.reason + f" (got {exc.value!r})") from None
    for text_field in ("description", "unit", "comment", "deprecation"):
        text = raw.fields.get(text_field)
        if text is not None and not isinstance(text, str):
            raise CatalogError(raw.source, f"{path}.{text_field}", f"expected a string, got {text!r}")
    leaf = VssLeaf(
        path=path,
        entry_type=EntryType(node_type),
        datatype=datatype,
        description=raw.fields.get("description") or "",
        unit=raw.fields.get("unit"),
        min=minimum,
        max=maximum,
        allowed=allowed,
        comment=raw.fields.get("comment"),
        deprecation=raw.fields.get("deprecation"),
        id=leaf_id,
        extra={k: v for k, v in raw.fields.items() if k not in (*_LEAF_FIELDS, "type", "datatype")},
    )
    if raw.fields.get("default") is not None:
        try:
            default = leaf.validate(raw.fields["default"])
        except VssValueError as exc:
            raise CatalogError(raw.source, f"{path}.default", exc.reason + f" (got {exc.value!r})") from None
        leaf = VssLeaf(**{**_as_kwargs(leaf), "default": default})
    return leaf


def _as_kwargs(leaf: VssLeaf) -> dict[str, Any]:
    return {name: getattr(leaf, name) for name in VssLeaf.__slots__}


def build_catalog(documents: Sequence[tuple[object, str]]) -> VssCatalog:
    """Merge already-parsed documents (base first, overlays after) into a catalog."""
    nodes: dict[str, _RawNode] = {}
    for document, source in documents:
        _flatten(document, source, nodes)
    leaves: list[VssLeaf] = []
    branches: dict[str, str] = {}
    for path, raw in nodes.items():
        parent = path.rpartition(".")[0]
        if parent and nodes[parent].fields.get("type") != "branch":
            raise CatalogError(
                raw.source, path, f"parent {parent!r} is a {nodes[parent].fields.get('type')}, not a branch"
            )
        if raw.fields.get("type") == "branch":
            branches[path] = str(raw.fields.get("description") or "")
        else:
            leaves.append(_build_leaf(path, raw, len(leaves) + 1))
    return VssCatalog(leaves, branches)


def load_vss(*paths: str | Path) -> VssCatalog:
    """Load a catalog from one file or several (the first is the base, the rest are overlays)."""
    if not paths:
        raise ValueError("load_vss needs at least one file")
    return build_catalog([(read_document(Path(p)), str(p)) for p in paths])


def default_catalog_path() -> Path:
    """The catalog OpenSDV ships: the standard VSS 6.0 signals the platform uses."""
    return Path(str(resources.files("opensdv.model") / "data" / "vss_opensdv.yaml"))


@cache
def load_default_vss() -> VssCatalog:
    return load_vss(default_catalog_path())
