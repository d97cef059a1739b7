"""Python values <-> kuksa.val protobuf values, by the leaf's VSS datatype."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from kuksa.val.v1 import types_pb2 as v1
from kuksa.val.v2 import types_pb2 as v2

from opensdv.model.vss import EntryType, VssCatalog, VssLeaf
from opensdv.vehicle.broker._errors import InvalidArgument
from opensdv.vehicle.broker._subscription import Datapoint

_FIELD = {
    "boolean": "bool",
    "string": "string",
    "int8": "int32",
    "int16": "int32",
    "int32": "int32",
    "int64": "int64",
    "uint8": "uint32",
    "uint16": "uint32",
    "uint32": "uint32",
    "uint64": "uint64",
    "float": "float",
    "double": "double",
}
_ENTRY_V2 = {
    EntryType.SENSOR: v2.ENTRY_TYPE_SENSOR,
    EntryType.ACTUATOR: v2.ENTRY_TYPE_ACTUATOR,
    EntryType.ATTRIBUTE: v2.ENTRY_TYPE_ATTRIBUTE,
}
_ENTRY_V1 = {
    EntryType.SENSOR: v1.ENTRY_TYPE_SENSOR,
    EntryType.ACTUATOR: v1.ENTRY_TYPE_ACTUATOR,
    EntryType.ATTRIBUTE: v1.ENTRY_TYPE_ATTRIBUTE,
}


def field_name(leaf: VssLeaf) -> str:
    """The protobuf oneof field carrying this leaf's values (``float``, ``uint32_array``, ...)."""
    return _FIELD[leaf.datatype.base] + ("_array" if leaf.datatype.is_array else "")


def data_type_name(leaf: VssLeaf) -> str:
    return f"DATA_TYPE_{'BOOLEAN' if leaf.datatype.base == 'boolean' else leaf.datatype.base.upper()}" + (
        "_ARRAY" if leaf.datatype.is_array else ""
    )


def fill_value(message: Any, leaf: VssLeaf, value: Any) -> None:
    """Set ``value`` on a v2 ``Value`` or a v1 ``Datapoint`` (both carry the same oneof fields)."""
    name = field_name(leaf)
    if leaf.datatype.is_array:
        getattr(message, name).values.extend(value)
    else:
        setattr(message, name, value)


def read_value(message: Any, oneof: str, leaf: VssLeaf) -> Any:
    """The value in a v2 ``Value`` / v1 ``Datapoint``; the field must match the leaf's datatype."""
    present = message.WhichOneof(oneof)
    if present is None:
        raise InvalidArgument(f"{leaf.path}: the request carries no value")
    expected = field_name(leaf)
    if present != expected:
        raise InvalidArgument(
            f"{leaf.path}: a {leaf.datatype} value must be sent as '{expected}', not '{present}'"
        )
    raw = getattr(message, present)
    return list(raw.values) if leaf.datatype.is_array else raw


def to_timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def from_timestamp(stamp: Timestamp) -> float:
    return float(stamp.ToNanoseconds()) / 1e9


# ------------------------------------------------------------------------------------------ v2


class FieldTable:
    """Per-catalog lookup tables for the hot paths (publishing and subscription updates), so that
    a value costs a dict lookup, a oneof check and an attribute access."""

    def __init__(self, catalog: VssCatalog) -> None:
        self.by_id: dict[int, tuple[str, str, bool]] = {}
        self.by_path: dict[str, tuple[str, bool]] = {}
        for leaf in catalog:
            name = field_name(leaf)
            self.by_id[leaf.id] = (leaf.path, name, leaf.datatype.is_array)
            self.by_path[leaf.path] = (name, leaf.datatype.is_array)

    def fill_entries(
        self, entries: Any, update: Mapping[str, Datapoint | None], keys: Mapping[str, Any] | None = None
    ) -> None:
        """Write an update into a response's ``entries`` map (keyed by path, or by ``keys[path]``)."""
        last: float | None = None
        seconds = nanos = 0
        for path, point in update.items():
            entry = entries[keys[path] if keys is not None else path]  # creates the map entry
            if point is None:
                continue
            if point.timestamp != last:
                last = point.timestamp
                whole = int(last)
                seconds, nanos = whole, round((last - whole) * 1e9)
            entry.timestamp.seconds = seconds
            entry.timestamp.nanos = nanos
            name, is_array = self.by_path[path]
            if is_array:
                getattr(entry.value, name).values.extend(point.value)
            else:
                setattr(entry.value, name, point.value)


def v2_value(leaf: VssLeaf, value: Any) -> v2.Value:
    message = v2.Value()
    fill_value(message, leaf, value)
    return message


def v2_datapoint(leaf: VssLeaf, point: Datapoint | None) -> v2.Datapoint:
    if point is None:
        return v2.Datapoint()
    return v2.Datapoint(timestamp=to_timestamp(point.timestamp), value=v2_value(leaf, point.value))


def v2_metadata(leaf: VssLeaf) -> v2.Metadata:
    message = v2.Metadata(
        path=leaf.path,
        id=leaf.id,
        data_type=getattr(v2, data_type_name(leaf)),
        entry_type=_ENTRY_V2[leaf.entry_type],
        description=leaf.description,
        comment=leaf.comment or "",
        deprecation=leaf.deprecation or "",
        unit=leaf.unit or "",
    )
    if leaf.allowed is not None:
        name = _FIELD[leaf.datatype.base] + "_array"
        getattr(message.allowed_values, name).values.extend(leaf.allowed)
    scalar = VssLeaf(leaf.path, leaf.entry_type, type(leaf.datatype)(leaf.datatype.base))
    if leaf.min is not None:
        message.min.CopyFrom(v2_value(scalar, _as_type(leaf, leaf.min)))
    if leaf.max is not None:
        message.max.CopyFrom(v2_value(scalar, _as_type(leaf, leaf.max)))
    return message


def _as_type(leaf: VssLeaf, number: int | float) -> int | float:
    return int(number) if leaf.datatype.is_integer else float(number)


# ------------------------------------------------------------------------------------------ v1


def v1_datapoint(leaf: VssLeaf, point: Datapoint | None) -> v1.Datapoint:
    message = v1.Datapoint()
    if point is not None:
        message.timestamp.CopyFrom(to_timestamp(point.timestamp))
        fill_value(message, leaf, point.value)
    return message


def v1_metadata(leaf: VssLeaf) -> v1.Metadata:
    message = v1.Metadata(
        data_type=getattr(v1, data_type_name(leaf)),
        entry_type=_ENTRY_V1[leaf.entry_type],
        description=leaf.description,
        comment=leaf.comment or "",
        deprecation=leaf.deprecation or "",
        unit=leaf.unit or "",
    )
    {
        EntryType.SENSOR: message.sensor,
        EntryType.ACTUATOR: message.actuator,
        EntryType.ATTRIBUTE: message.attribute,
    }[leaf.entry_type].SetInParent()
    restriction = message.value_restriction
    base = leaf.datatype.base
    if base == "string" and leaf.allowed:
        restriction.string.allowed_values.extend(leaf.allowed)
    elif leaf.datatype.is_numeric and (leaf.min is not None or leaf.max is not None or leaf.allowed):
        kind = (
            "floating_point"
            if base in ("float", "double")
            else ("unsigned" if base.startswith("uint") else "signed")
        )
        target = getattr(restriction, kind)
        if leaf.min is not None:
            target.min = _as_type(leaf, leaf.min)
        if leaf.max is not None:
            target.max = _as_type(leaf, leaf.max)
        if leaf.allowed:
            target.allowed_values.extend(leaf.allowed)
    return message
