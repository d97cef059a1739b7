"""``kuksa.val.v1.VAL`` (Get, Set, Subscribe, StreamedUpdate, GetServerInfo) over the broker core.

The ``kuksa-client`` package still uses v1 for get/set, so this adapter keeps it working. Errors in
``Get``/``Set`` come back the v1 way: HTTP-like codes (400, 403, 404, 503) in ``error``/``errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from kuksa.val.v1 import types_pb2 as v1
from kuksa.val.v1 import val_pb2 as api
from kuksa.val.v1 import val_pb2_grpc

from opensdv import __version__
from opensdv.model.vss import VssLeaf
from opensdv.vehicle.broker._core import Broker
from opensdv.vehicle.broker._errors import (
    AlreadyExists,
    BrokerError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from opensdv.vehicle.broker._permissions import Action, Permissions
from opensdv.vehicle.broker._subscription import Subscription
from opensdv.vehicle.broker.grpc._convert import read_value, v1_datapoint, v1_metadata
from opensdv.vehicle.broker.grpc._errors import Authenticator, caller_permissions, streaming, unary
from opensdv.vehicle.broker.grpc._v2 import SERVER_NAME

__all__ = ["ValV1"]

_HTTP = {
    NotFound: (404, "not_found"),
    PermissionDenied: (403, "forbidden"),
    Unavailable: (503, "unavailable"),
    AlreadyExists: (409, "conflict"),
}


def _v1_error(error: BrokerError) -> v1.Error:
    code, reason = next(
        (pair for kind, pair in _HTTP.items() if isinstance(error, kind)), (400, "bad_request")
    )
    return v1.Error(code=code, reason=reason, message=str(error))


def _wants(view: int, fields: Iterable[int]) -> tuple[bool, bool, bool]:
    """(current value, actuator target, metadata) asked for by a v1 view and field list."""
    if view in (v1.VIEW_UNSPECIFIED, v1.VIEW_CURRENT_VALUE):
        return True, False, False
    if view == v1.VIEW_TARGET_VALUE:
        return False, True, False
    if view == v1.VIEW_METADATA:
        return False, False, True
    if view == v1.VIEW_ALL:
        return True, True, True
    chosen = set(fields)
    metadata = bool(chosen & {f for f in v1.Field.values() if v1.Field.Name(f).startswith("FIELD_METADATA")})
    return v1.FIELD_VALUE in chosen, v1.FIELD_ACTUATOR_TARGET in chosen, metadata


class ValV1(val_pb2_grpc.VALServicer):  # type: ignore[misc]  # generated, untyped
    def __init__(self, broker: Broker, authenticator: Authenticator) -> None:
        self.broker = broker
        self.auth = authenticator

    def _leaves(self, path: str, permissions: Permissions) -> list[VssLeaf]:
        if path in self.broker.catalog:
            return [self.broker.leaf(path)]
        return self.broker.metadata(path, permissions)

    def _entry(
        self, leaf: VssLeaf, permissions: Permissions, current: bool, target: bool, metadata: bool
    ) -> v1.DataEntry:
        entry = v1.DataEntry(path=leaf.path)
        if current:
            entry.value.CopyFrom(v1_datapoint(leaf, self.broker.get(leaf.path, permissions)))
        if target and leaf.entry_type.value == "actuator":
            entry.actuator_target.CopyFrom(v1_datapoint(leaf, self.broker.get_target(leaf.path, permissions)))
        if metadata:
            permissions.require(Action.READ, leaf.path)
            entry.metadata.CopyFrom(v1_metadata(leaf))
        return entry

    @unary
    async def Get(self, request: api.GetRequest, context: Any) -> api.GetResponse:
        permissions = caller_permissions(self.auth, context)
        response = api.GetResponse()
        for entry_request in request.entries:
            try:
                wants = _wants(entry_request.view, entry_request.fields)
                entries = [
                    self._entry(leaf, permissions, *wants)
                    for leaf in self._leaves(entry_request.path, permissions)
                ]
                response.entries.extend(entries)
            except BrokerError as exc:
                response.errors.add(path=entry_request.path, error=_v1_error(exc))
        if response.errors:
            response.error.CopyFrom(response.errors[0].error)
            del response.entries[:]
        return response

    def _apply(self, updates: Iterable[api.EntryUpdate], permissions: Permissions) -> list[v1.DataEntryError]:
        current: dict[str, Any] = {}
        target: dict[str, Any] = {}
        errors: list[v1.DataEntryError] = []
        for update in updates:
            path = update.entry.path
            try:
                leaf = self.broker.leaf(path)
                fields = set(update.fields)
                if v1.FIELD_VALUE in fields:
                    current[path] = read_value(update.entry.value, "value", leaf)
                if v1.FIELD_ACTUATOR_TARGET in fields:
                    target[path] = read_value(update.entry.actuator_target, "value", leaf)
                if not fields & {v1.FIELD_VALUE, v1.FIELD_ACTUATOR_TARGET}:
                    raise InvalidArgument(f"{path}: only the value and the actuator target can be set")
            except BrokerError as exc:
                errors.append(v1.DataEntryError(path=path, error=_v1_error(exc)))
        if errors:
            return errors
        for values, apply in ((current, self.broker.publish), (target, self.broker.set_target)):
            if values:
                try:
                    apply(values, permissions)
                except BrokerError as exc:
                    culprit = next((p for p in values if p in str(exc)), next(iter(values)))
                    errors.append(v1.DataEntryError(path=culprit, error=_v1_error(exc)))
        return errors

    @unary
    async def Set(self, request: api.SetRequest, context: Any) -> api.SetResponse:
        permissions = caller_permissions(self.auth, context)
        errors = self._apply(request.updates, permissions)
        response = api.SetResponse(errors=errors)
        if errors:
            response.error.CopyFrom(errors[0].error)
        return response

    @streaming
    async def StreamedUpdate(
        self, request_iterator: AsyncIterator[api.StreamedUpdateRequest], context: Any
    ) -> AsyncIterator[api.StreamedUpdateResponse]:
        permissions = caller_permissions(self.auth, context)
        async for request in request_iterator:
            errors = self._apply(request.updates, permissions)
            if errors:
                yield api.StreamedUpdateResponse(error=errors[0].error, errors=errors)

    @streaming
    async def Subscribe(
        self, request: api.SubscribeRequest, context: Any
    ) -> AsyncIterator[api.SubscribeResponse]:
        permissions = caller_permissions(self.auth, context)
        current_paths: list[str] = []
        target_paths: list[str] = []
        for entry in request.entries:
            wants_current, wants_target, _ = _wants(entry.view, entry.fields)
            paths = [leaf.path for leaf in self._leaves(entry.path, permissions)]
            if wants_current:
                current_paths.extend(paths)
            if wants_target:
                target_paths.extend(paths)
        if not current_paths and not target_paths:
            raise InvalidArgument("Subscribe needs at least one entry with a value or target view")
        streams: list[tuple[Subscription, bool]] = []
        try:
            if current_paths:
                streams.append((self.broker.subscribe(current_paths, permissions), False))
            if target_paths:
                streams.append((self.broker.subscribe(target_paths, permissions, targets=True), True))
            async for response in _merge(streams, self.broker):
                yield response
        finally:
            for subscription, _ in streams:
                subscription.close()

    @unary
    async def GetServerInfo(
        self, request: api.GetServerInfoRequest, context: Any
    ) -> api.GetServerInfoResponse:
        caller_permissions(self.auth, context)
        return api.GetServerInfoResponse(name=SERVER_NAME, version=__version__)


async def _merge(
    streams: list[tuple[Subscription, bool]], broker: Broker
) -> AsyncIterator[api.SubscribeResponse]:
    """Interleave current-value and target-value subscriptions into one v1 response stream."""
    pending = {asyncio.ensure_future(sub.wait_update()): (sub, is_target) for sub, is_target in streams}
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                sub, is_target = pending.pop(task)
                try:
                    update = task.result()
                except StopAsyncIteration:
                    continue
                response = api.SubscribeResponse()
                for path, point in update.items():
                    leaf = broker.catalog.leaf(path)
                    entry = v1.DataEntry(path=path)
                    (entry.actuator_target if is_target else entry.value).CopyFrom(v1_datapoint(leaf, point))
                    response.updates.add(
                        entry=entry, fields=[v1.FIELD_ACTUATOR_TARGET if is_target else v1.FIELD_VALUE]
                    )
                yield response
                pending[asyncio.ensure_future(sub.wait_update())] = (sub, is_target)
    finally:
        for task in pending:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await task
