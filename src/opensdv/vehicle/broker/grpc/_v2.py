"""``kuksa.val.v2.VAL`` over the broker core, with KUKSA's semantics and status codes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from kuksa.val.v2 import types_pb2 as v2
from kuksa.val.v2 import val_pb2 as api
from kuksa.val.v2 import val_pb2_grpc

from opensdv import __version__
from opensdv.model.vss import VssLeaf
from opensdv.vehicle.broker._core import Broker, Provider
from opensdv.vehicle.broker._errors import BrokerError, InvalidArgument, NotFound
from opensdv.vehicle.broker.grpc._convert import (
    FieldTable,
    from_timestamp,
    read_value,
    v2_datapoint,
    v2_metadata,
    v2_value,
)
from opensdv.vehicle.broker.grpc._errors import (
    Authenticator,
    abort_with,
    caller_permissions,
    status_of,
    streaming,
    unary,
)

__all__ = ["IGNORE_UNKNOWN_HEADER", "SERVER_NAME", "UNKNOWN_PATHS_HEADER", "ValV2"]

SERVER_NAME = "opensdv-databroker"
IGNORE_UNKNOWN_HEADER = "x-opensdv-ignore-unknown"  # opt-in: subscribe to the known paths only
UNKNOWN_PATHS_HEADER = "x-opensdv-unknown-paths"  # ... and hear which were unknown

_ERROR_CODE = {
    "NOT_FOUND": v2.ERROR_CODE_NOT_FOUND,
    "PERMISSION_DENIED": v2.ERROR_CODE_PERMISSION_DENIED,
}


def _wants_partial(context: Any) -> bool:
    return any(
        k == IGNORE_UNKNOWN_HEADER and str(v).lower() in ("1", "true", "yes")
        for k, v in context.invocation_metadata() or ()
    )


class ValV2(val_pb2_grpc.VALServicer):  # type: ignore[misc]  # generated, untyped
    def __init__(self, broker: Broker, authenticator: Authenticator) -> None:
        self.broker = broker
        self.auth = authenticator
        self.fields = FieldTable(broker.catalog)

    def _leaf(self, signal_id: v2.SignalID) -> VssLeaf:
        which = signal_id.WhichOneof("signal")
        if which == "path":
            return self.broker.leaf(signal_id.path)
        if which == "id":
            return self.broker.leaf_by_id(signal_id.id)
        raise InvalidArgument("the signal id names neither a path nor an id")

    # ---------------------------------------------------------------------------- reading

    @unary
    async def GetValue(self, request: api.GetValueRequest, context: Any) -> api.GetValueResponse:
        permissions = caller_permissions(self.auth, context)
        leaf = self._leaf(request.signal_id)
        return api.GetValueResponse(data_point=v2_datapoint(leaf, self.broker.get(leaf.path, permissions)))

    @unary
    async def GetValues(self, request: api.GetValuesRequest, context: Any) -> api.GetValuesResponse:
        permissions = caller_permissions(self.auth, context)
        if not request.signal_ids:
            raise InvalidArgument("GetValues needs at least one signal")
        leaves = [self._leaf(signal) for signal in request.signal_ids]
        points = [v2_datapoint(leaf, self.broker.get(leaf.path, permissions)) for leaf in leaves]
        return api.GetValuesResponse(data_points=points)

    @unary
    async def ListMetadata(self, request: api.ListMetadataRequest, context: Any) -> api.ListMetadataResponse:
        permissions = caller_permissions(self.auth, context)
        return api.ListMetadataResponse(
            metadata=[v2_metadata(leaf) for leaf in self.broker.metadata(request.root, permissions)]
        )

    @unary
    async def GetServerInfo(
        self, request: api.GetServerInfoRequest, context: Any
    ) -> api.GetServerInfoResponse:
        caller_permissions(self.auth, context)
        return api.GetServerInfoResponse(name=SERVER_NAME, version=__version__, commit_hash="")

    # -------------------------------------------------------------------------- subscribing

    @streaming
    async def Subscribe(
        self, request: api.SubscribeRequest, context: Any
    ) -> AsyncIterator[api.SubscribeResponse]:
        permissions = caller_permissions(self.auth, context)
        if not request.signal_paths:
            raise InvalidArgument("Subscribe needs at least one path")
        subscription = self.broker.subscribe(
            request.signal_paths, permissions, request.buffer_size, ignore_unknown=_wants_partial(context)
        )
        if subscription.unknown_paths:
            await context.send_initial_metadata(
                ((UNKNOWN_PATHS_HEADER, ",".join(subscription.unknown_paths)),)
            )
        try:
            async for update in subscription:
                response = api.SubscribeResponse()
                self.fields.fill_entries(response.entries, update)
                yield response
        finally:
            subscription.close()

    @streaming
    async def SubscribeById(
        self, request: api.SubscribeByIdRequest, context: Any
    ) -> AsyncIterator[api.SubscribeByIdResponse]:
        permissions = caller_permissions(self.auth, context)
        if not request.signal_ids:
            raise InvalidArgument("SubscribeById needs at least one id")
        leaves = {self.broker.leaf_by_id(i).path: self.broker.leaf_by_id(i) for i in request.signal_ids}
        subscription = self.broker.subscribe(leaves, permissions, request.buffer_size)
        try:
            ids = {path: leaf.id for path, leaf in leaves.items()}
            async for update in subscription:
                response = api.SubscribeByIdResponse()
                self.fields.fill_entries(response.entries, update, ids)
                yield response
        finally:
            subscription.close()

    # ---------------------------------------------------------------------------- actuating

    def _actuation(self, requests: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for request in requests:
            leaf = self._leaf(request.signal_id)
            values[leaf.path] = read_value(request.value, "typed_value", leaf)
        return values

    @unary
    async def Actuate(self, request: api.ActuateRequest, context: Any) -> api.ActuateResponse:
        permissions = caller_permissions(self.auth, context)
        self.broker.actuate(self._actuation([request]), permissions)
        return api.ActuateResponse()

    @unary
    async def BatchActuate(self, request: api.BatchActuateRequest, context: Any) -> api.BatchActuateResponse:
        permissions = caller_permissions(self.auth, context)
        self.broker.actuate(self._actuation(request.actuate_requests), permissions)
        return api.BatchActuateResponse()

    @unary
    async def ActuateStream(
        self, request_iterator: AsyncIterator[api.ActuateRequest], context: Any
    ) -> api.ActuateResponse:
        permissions = caller_permissions(self.auth, context)
        async for request in request_iterator:
            self.broker.actuate(self._actuation([request]), permissions)
        return api.ActuateResponse()

    # ---------------------------------------------------------------------------- providing

    @unary
    async def PublishValue(self, request: api.PublishValueRequest, context: Any) -> api.PublishValueResponse:
        permissions = caller_permissions(self.auth, context)
        leaf = self._leaf(request.signal_id)
        value = read_value(request.data_point.value, "typed_value", leaf)
        self.broker.publish({leaf.path: value}, permissions, timestamp=_timestamp(request.data_point))
        return api.PublishValueResponse()

    async def OpenProviderStream(
        self, request_iterator: AsyncIterator[api.OpenProviderStreamRequest], context: Any
    ) -> AsyncIterator[api.OpenProviderStreamResponse]:
        """One provider per stream: it claims actuators, publishes values, receives actuations.

        Claims are strict (a failure ends the stream with its status code); publishing is
        permissive (refused values come back in a ``PublishValuesResponse``, accepted ones are
        silent). Ending the stream releases the claims and marks the published signals stale.
        """
        try:
            permissions = caller_permissions(self.auth, context)
        except BrokerError as exc:
            await abort_with(context, exc)
            return
        provider = self.broker.register_provider(permissions, name=context.peer())
        outbox: asyncio.Queue[api.OpenProviderStreamResponse | BrokerError | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read_provider(provider, request_iterator, outbox))
        forwarder = asyncio.create_task(_forward_actuations(provider, self.broker, outbox))
        try:
            while True:
                item = await outbox.get()
                if item is None:
                    return
                if isinstance(item, BrokerError):
                    await abort_with(context, item)
                    return
                yield item
        finally:
            provider.close()
            forwarder.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.gather(reader, forwarder)

    async def _read_provider(
        self,
        provider: Provider,
        request_iterator: AsyncIterator[api.OpenProviderStreamRequest],
        outbox: asyncio.Queue[api.OpenProviderStreamResponse | BrokerError | None],
    ) -> None:
        try:
            async for request in request_iterator:
                action = request.WhichOneof("action")
                if action == "publish_values_request":
                    response = self._publish_values(provider, request.publish_values_request)
                    if response is not None:
                        outbox.put_nowait(api.OpenProviderStreamResponse(publish_values_response=response))
                elif action == "provide_actuation_request":
                    provider.claim(
                        self._leaf(s).path for s in request.provide_actuation_request.actuator_identifiers
                    )
                    outbox.put_nowait(
                        api.OpenProviderStreamResponse(
                            provide_actuation_response=api.ProvideActuationResponse()
                        )
                    )
                elif action == "provide_signal_request":
                    for signal_id in request.provide_signal_request.signals_sample_intervals:
                        self.broker.leaf_by_id(signal_id)
                    outbox.put_nowait(
                        api.OpenProviderStreamResponse(provide_signal_response=api.ProvideSignalResponse())
                    )
                # batch_actuate_stream_response, update_filter_response, get_provider_value_response and
                # provider_error_indication are acknowledgements the broker does not need to act on.
        except BrokerError as exc:
            outbox.put_nowait(exc)
            return
        outbox.put_nowait(None)

    def _publish_values(
        self, provider: Provider, request: api.PublishValuesRequest
    ) -> api.PublishValuesResponse | None:
        values: dict[str, Any] = {}
        errors: dict[int, BrokerError] = {}
        by_path: dict[str, int] = {}
        stamp: float | None = None
        by_id = self.fields.by_id
        for signal_id, point in request.data_points.items():
            known = by_id.get(signal_id)
            if known is None:
                errors[signal_id] = NotFound(f"unknown signal id {signal_id}")
                continue
            path, name, is_array = known
            value = point.value
            if value.WhichOneof("typed_value") != name:
                try:
                    read_value(value, "typed_value", self.broker.catalog.leaf(path))
                except BrokerError as exc:
                    errors[signal_id] = exc
                continue
            raw = getattr(value, name)
            values[path] = list(raw.values) if is_array else raw
            by_path[path] = signal_id
            if stamp is None and point.HasField("timestamp"):
                stamp = from_timestamp(point.timestamp)
        for path, refused in provider.publish_each(values, timestamp=stamp).items():
            errors[by_path[path]] = refused
        if not errors:
            return None
        response = api.PublishValuesResponse(request_id=request.request_id)
        for signal_id, error in errors.items():
            code = _ERROR_CODE.get(status_of(error).name, v2.ERROR_CODE_INVALID_ARGUMENT)
            response.status[signal_id].CopyFrom(v2.Error(code=code, message=str(error)))
        return response


def _timestamp(point: v2.Datapoint) -> float | None:
    return from_timestamp(point.timestamp) if point.HasField("timestamp") else None


async def _forward_actuations(
    provider: Provider,
    broker: Broker,
    outbox: asyncio.Queue[api.OpenProviderStreamResponse | BrokerError | None],
) -> None:
    while True:
        request = await provider.wait_actuation()
        message = api.BatchActuateStreamRequest()
        for path, value in request.items():
            message.actuate_requests.add(
                signal_id=v2.SignalID(path=path), value=v2_value(broker.catalog.leaf(path), value)
            )
        outbox.put_nowait(api.OpenProviderStreamResponse(batch_actuate_stream_request=message))
