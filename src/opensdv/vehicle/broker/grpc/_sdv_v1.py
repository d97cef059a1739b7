"""``sdv.databroker.v1`` (``Broker`` and ``Collector``) over the broker core: the API the Velocitas
SDK speaks, which KUKSA's databroker removed in 0.7.

Semantics follow KUKSA's last implementation of it: ``GetDatapoints`` answers every name, with a
failure value where it cannot (unknown, access denied, no value yet); ``SetDatapoints`` sets actuator
*targets* (through the safety guard, to the provider that claimed the actuator) and refuses sensors
and attributes with ``ACCESS_DENIED``; ``Subscribe`` takes the query language (``opensdv.model.query``) and sends
a row whenever a signal it reads changes and its condition is true; the ``Collector`` publishes
current values by id, all of a request or none. Permissions are the caller's, as on v1 and v2.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from opensdv.model.query import QueryError, compile_query
from opensdv.model.vss import EntryType, VssLeaf
from opensdv.vehicle.broker._core import Broker
from opensdv.vehicle.broker._errors import BrokerError, InvalidArgument, NotFound, PermissionDenied
from opensdv.vehicle.broker._permissions import Action, Permissions
from opensdv.vehicle.broker._subscription import Datapoint
from opensdv.vehicle.broker.grpc._convert import to_timestamp
from opensdv.vehicle.broker.grpc._errors import Authenticator, caller_permissions, streaming, unary
from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2 as api
from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2_grpc, collector_pb2_grpc
from opensdv.vehicle.broker.grpc.sdv_v1 import collector_pb2 as collector
from opensdv.vehicle.broker.grpc.sdv_v1 import types_pb2 as sdv

__all__ = ["SdvBrokerV1", "SdvCollectorV1"]

_SCALAR = {
    "boolean": "bool", "string": "string", "int8": "int32", "int16": "int32", "int32": "int32", "int64": "int64",
    "uint8": "uint32", "uint16": "uint32", "uint32": "uint32", "uint64": "uint64", "float": "float", "double": "double",
}  # fmt: skip
_ENTRY = {
    EntryType.SENSOR: sdv.ENTRY_TYPE_SENSOR,
    EntryType.ACTUATOR: sdv.ENTRY_TYPE_ACTUATOR,
    EntryType.ATTRIBUTE: sdv.ENTRY_TYPE_ATTRIBUTE,
}
_CHANGE = {EntryType.SENSOR: sdv.CONTINUOUS, EntryType.ACTUATOR: sdv.ON_CHANGE, EntryType.ATTRIBUTE: sdv.STATIC}


def _field(leaf: VssLeaf) -> str:
    """The ``Datapoint`` oneof field of a leaf: ``float_value``, ``uint32_array``, ..."""
    return _SCALAR[leaf.datatype.base] + ("_array" if leaf.datatype.is_array else "_value")


def _data_type(leaf: VssLeaf) -> Any:
    name = "BOOL" if leaf.datatype.base == "boolean" else leaf.datatype.base.upper()
    return sdv.DataType.Value(name + ("_ARRAY" if leaf.datatype.is_array else ""))


def _failure(reason: Any) -> sdv.Datapoint:
    return sdv.Datapoint(failure_value=reason)


def _datapoint(leaf: VssLeaf, point: Datapoint | None) -> sdv.Datapoint:
    if point is None:
        return _failure(sdv.Datapoint.NOT_AVAILABLE)
    message = sdv.Datapoint(timestamp=to_timestamp(point.timestamp))
    name = _field(leaf)
    if leaf.datatype.is_array:
        getattr(message, name).values.extend(point.value)
    else:
        setattr(message, name, point.value)
    return message


def _computed(value: bool | int | float | str | None) -> sdv.Datapoint:
    """A query field that is an expression, not a signal: typed by its Python value."""
    if value is None:
        return _failure(sdv.Datapoint.NOT_AVAILABLE)
    if isinstance(value, bool):
        return sdv.Datapoint(bool_value=value)
    if isinstance(value, int):
        return sdv.Datapoint(int64_value=value)
    if isinstance(value, float):
        return sdv.Datapoint(double_value=value)
    return sdv.Datapoint(string_value=value)


def _read(message: sdv.Datapoint, leaf: VssLeaf) -> Any:
    present = message.WhichOneof("value")
    expected = _field(leaf)
    if present != expected:
        raise _TypeMismatch(f"{leaf.path}: a {leaf.datatype} value is sent as '{expected}', not '{present}'")
    raw = getattr(message, present)
    return list(raw.values) if leaf.datatype.is_array else raw


class _TypeMismatch(InvalidArgument):
    pass


def _error_code(error: BrokerError) -> Any:
    if isinstance(error, NotFound):
        return sdv.UNKNOWN_DATAPOINT
    if isinstance(error, PermissionDenied):  # the safety guard's refusals too
        return sdv.ACCESS_DENIED
    if isinstance(error, _TypeMismatch):
        return sdv.INVALID_TYPE
    if isinstance(error, InvalidArgument):  # outside min/max or the allowed values
        return sdv.OUT_OF_BOUNDS
    return sdv.INTERNAL_ERROR


def _culprit(error: BrokerError, keys: Iterable[Any], path_of: Mapping[Any, str]) -> Any:
    """The key whose path an all-or-nothing error names (the first key if it names none)."""
    keys = list(keys)
    return next((key for key in keys if path_of[key] in str(error)), keys[0])


def _metadata(leaf: VssLeaf) -> sdv.Metadata:
    message = sdv.Metadata(
        id=leaf.id, entry_type=_ENTRY[leaf.entry_type], name=leaf.path, data_type=_data_type(leaf),
        change_type=_CHANGE[leaf.entry_type], description=leaf.description,
    )  # fmt: skip
    base = _SCALAR[leaf.datatype.base]
    if leaf.allowed and base != "bool":
        getattr(message.allowed, f"{base}_values").values.extend(leaf.allowed)
    for bound, value in (("min", leaf.min), ("max", leaf.max)):
        if value is not None and base != "bool":
            setattr(getattr(message, bound), base, int(value) if leaf.datatype.is_integer else float(value))
    return message


class SdvBrokerV1(broker_pb2_grpc.BrokerServicer):
    def __init__(self, broker: Broker, authenticator: Authenticator) -> None:
        self.broker = broker
        self.auth = authenticator

    @unary
    async def GetDatapoints(self, request: api.GetDatapointsRequest, context: Any) -> api.GetDatapointsReply:
        permissions = caller_permissions(self.auth, context)
        if not request.datapoints:
            raise InvalidArgument("No datapoints requested")
        reply = api.GetDatapointsReply()
        for name in request.datapoints:
            try:
                point = self.broker.get(name, permissions)
                reply.datapoints[name].CopyFrom(_datapoint(self.broker.leaf(name), point))
            except PermissionDenied:
                reply.datapoints[name].CopyFrom(_failure(sdv.Datapoint.ACCESS_DENIED))
            except (NotFound, InvalidArgument):
                reply.datapoints[name].CopyFrom(_failure(sdv.Datapoint.UNKNOWN_DATAPOINT))
        return reply

    @unary
    async def SetDatapoints(self, request: api.SetDatapointsRequest, context: Any) -> api.SetDatapointsReply:
        permissions = caller_permissions(self.auth, context)
        reply = api.SetDatapointsReply()
        targets: dict[str, Any] = {}
        for path, datapoint in request.datapoints.items():
            try:
                leaf = self.broker.leaf(path)
                if leaf.entry_type is not EntryType.ACTUATOR:
                    raise PermissionDenied(f"{path} is a {leaf.entry_type}: only actuators are set through Broker")
                targets[path] = _read(datapoint, leaf)
            except BrokerError as exc:
                reply.errors[path] = _error_code(exc)
        if targets and not reply.errors:
            try:
                self.broker.set_target(targets, permissions)
            except BrokerError as exc:
                reply.errors[_culprit(exc, targets, {p: p for p in targets})] = _error_code(exc)
        return reply

    @streaming
    async def Subscribe(self, request: api.SubscribeRequest, context: Any) -> AsyncIterator[api.SubscribeReply]:
        permissions = caller_permissions(self.auth, context)
        try:
            query = compile_query(request.query, self.broker.catalog)
        except QueryError as exc:
            raise InvalidArgument(str(exc)) from None
        subscription = self.broker.subscribe(query.paths, permissions)
        current: dict[str, Any] = {}
        stamps: dict[str, Datapoint] = {}
        try:
            async for update in subscription:
                for path, point in update.items():
                    if point is not None:
                        current[path], stamps[path] = point.value, point
                row = query.row(current)
                if row is None:
                    continue
                reply = api.SubscribeReply()
                for name, value in row.items():
                    signal = query.field_path(name)
                    reply.fields[name].CopyFrom(
                        _computed(value) if signal is None else _datapoint(self.broker.leaf(signal), stamps.get(signal))
                    )
                yield reply
        finally:
            subscription.close()

    @unary
    async def GetMetadata(self, request: api.GetMetadataRequest, context: Any) -> api.GetMetadataReply:
        permissions = caller_permissions(self.auth, context)
        leaves = self.broker.catalog if not request.names else (self.broker.catalog.get(n) for n in request.names)
        return api.GetMetadataReply(
            list=[_metadata(leaf) for leaf in leaves if leaf is not None and permissions.allows(Action.READ, leaf.path)]
        )


class SdvCollectorV1(collector_pb2_grpc.CollectorServicer):
    """Providers of the v1 era: register the catalog's signals, get their ids, publish by id."""

    def __init__(self, broker: Broker, authenticator: Authenticator) -> None:
        self.broker = broker
        self.auth = authenticator

    @unary
    async def RegisterDatapoints(
        self, request: collector.RegisterDatapointsRequest, context: Any
    ) -> collector.RegisterDatapointsReply:
        permissions = caller_permissions(self.auth, context)
        reply = collector.RegisterDatapointsReply()
        for registration in request.list:
            leaf = self.broker.catalog.get(registration.name)
            if leaf is None:
                raise InvalidArgument(
                    f"Failed to register {registration.name}: not in the broker's VSS catalog "
                    "(its catalog is fixed: add the signal with an overlay)"
                )
            if registration.data_type != _data_type(leaf):
                raise InvalidArgument(
                    f"Failed to register {registration.name}: it is {sdv.DataType.Name(_data_type(leaf))}, "
                    f"not {sdv.DataType.Name(registration.data_type) if registration.data_type in sdv.DataType.values() else registration.data_type}"
                )
            permissions.require(Action.PROVIDE_DATA, leaf.path)
            reply.results[registration.name] = leaf.id
        return reply

    def _update(self, datapoints: Mapping[int, sdv.Datapoint], permissions: Permissions) -> dict[int, Any]:
        """Publish every value or none; the errors by id."""
        errors: dict[int, Any] = {}
        values: dict[int, Any] = {}
        paths: dict[int, str] = {}
        for leaf_id, datapoint in datapoints.items():
            try:
                leaf = self.broker.leaf_by_id(leaf_id)
                paths[leaf_id] = leaf.path
                values[leaf_id] = _read(datapoint, leaf)
            except BrokerError as exc:
                errors[leaf_id] = _error_code(exc)
        if values and not errors:
            try:
                self.broker.publish({paths[i]: value for i, value in values.items()}, permissions)
            except BrokerError as exc:
                errors[_culprit(exc, values, paths)] = _error_code(exc)
        return errors

    @unary
    async def UpdateDatapoints(
        self, request: collector.UpdateDatapointsRequest, context: Any
    ) -> collector.UpdateDatapointsReply:
        permissions = caller_permissions(self.auth, context)
        return collector.UpdateDatapointsReply(errors=self._update(request.datapoints, permissions))

    @streaming
    async def StreamDatapoints(
        self, request_iterator: AsyncIterator[collector.StreamDatapointsRequest], context: Any
    ) -> AsyncIterator[collector.StreamDatapointsReply]:
        permissions = caller_permissions(self.auth, context)
        async for request in request_iterator:
            errors = self._update(request.datapoints, permissions)
            if errors:  # as KUKSA: a reply only when something was refused
                yield collector.StreamDatapointsReply(errors=errors)
