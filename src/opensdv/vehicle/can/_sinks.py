"""Where decoded values go: the broker core in-process, or any kuksa.val.v2 broker over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import grpc
from grpc import aio
from kuksa.val.v2 import types_pb2 as t
from kuksa.val.v2 import val_pb2 as v
from kuksa.val.v2 import val_pb2_grpc

from opensdv.model.vss import VssCatalog
from opensdv.vehicle.broker import ALLOW_ALL, Broker, BrokerError, Permissions
from opensdv.vehicle.broker.grpc._convert import v2_value
from opensdv.vehicle.can._errors import SinkError

__all__ = ["BrokerSink", "GrpcSink", "Sink"]


class Sink(Protocol):
    async def start(self, actuators: list[str]) -> None: ...
    async def publish(self, values: Mapping[str, Any]) -> dict[str, str]: ...
    async def wait_actuation(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class BrokerSink:
    """The broker core in the same process (the demo, the twin, tests)."""

    def __init__(
        self, broker: Broker, permissions: Permissions = ALLOW_ALL, name: str = "can-feeder"
    ) -> None:
        self._provider = broker.register_provider(permissions, name)

    async def start(self, actuators: list[str]) -> None:
        try:
            self._provider.claim(actuators)
        except BrokerError as exc:
            raise SinkError(f"cannot claim the mapped actuators: {exc}") from None

    async def publish(self, values: Mapping[str, Any]) -> dict[str, str]:
        return {path: str(error) for path, error in self._provider.publish_each(values).items()}

    async def wait_actuation(self) -> dict[str, Any]:
        return await self._provider.wait_actuation()

    async def close(self) -> None:
        self._provider.close()


class GrpcSink:
    """A kuksa.val.v2 provider over ``OpenProviderStream``: works with OpenSDV's broker and KUKSA's."""

    def __init__(
        self,
        address: str,
        catalog: VssCatalog,
        *,
        token: str | None = None,
        root_certificates: Path | None = None,
    ) -> None:
        self._catalog = catalog
        self._address = address
        self._root_certificates = root_certificates
        self._channel: aio.Channel | None = None
        self._stub: Any = None
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._outbox: asyncio.Queue[v.OpenProviderStreamRequest | None] = asyncio.Queue()
        self._actuations: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._claimed = asyncio.Event()
        self._errors: dict[str, str] = {}
        self._ids: dict[str, int] = {}
        self._paths: dict[int, str] = {}
        self._reader: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._request_id = 0

    async def _requests(self) -> AsyncIterator[v.OpenProviderStreamRequest]:
        while True:
            item = await self._outbox.get()
            if item is None:
                return
            yield item

    async def start(self, actuators: list[str]) -> None:
        """Connect (on the running event loop), learn the signal ids, open the provider stream."""
        if self._root_certificates is not None:
            try:
                credentials = grpc.ssl_channel_credentials(self._root_certificates.read_bytes())
            except OSError as exc:
                raise SinkError(
                    f"{self._root_certificates}: cannot read CA certificate: {exc.strerror}"
                ) from None
            self._channel = aio.secure_channel(self._address, credentials)
        else:
            self._channel = aio.insecure_channel(self._address)
        self._stub = val_pb2_grpc.VALStub(self._channel)
        try:
            listed = await self._stub.ListMetadata(
                v.ListMetadataRequest(root="Vehicle"), metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise SinkError(f"cannot list the broker's signals: {exc.code().name} {exc.details()}") from None
        self._ids = {m.path: m.id for m in listed.metadata}
        self._paths = {i: p for p, i in self._ids.items()}
        call = self._stub.OpenProviderStream(self._requests(), metadata=self._metadata)
        self._reader = asyncio.create_task(self._read(call))
        if actuators:
            ids = [t.SignalID(path=p) for p in actuators]
            self._outbox.put_nowait(
                v.OpenProviderStreamRequest(
                    provide_actuation_request=v.ProvideActuationRequest(actuator_identifiers=ids)
                )
            )
            await asyncio.wait(
                {asyncio.ensure_future(self._claimed.wait()), self._reader},
                return_when=asyncio.FIRST_COMPLETED,
            )
            if self._failure is not None or not self._claimed.is_set():
                raise SinkError(f"the broker refused the actuator claim: {self._failure}")

    async def _read(self, call: Any) -> None:
        try:
            async for response in call:
                action = response.WhichOneof("action")
                if action == "provide_actuation_response":
                    self._claimed.set()
                elif action == "publish_values_response":
                    for signal_id, error in response.publish_values_response.status.items():
                        self._errors[self._paths.get(signal_id, f"#{signal_id}")] = error.message
                elif action == "batch_actuate_stream_request":
                    request = {}
                    for item in response.batch_actuate_stream_request.actuate_requests:
                        which = item.signal_id.WhichOneof("signal")
                        path = (
                            item.signal_id.path if which == "path" else self._paths.get(item.signal_id.id, "")
                        )
                        leaf = self._catalog.get(path)
                        if leaf is None:
                            continue
                        field = item.value.WhichOneof("typed_value")
                        raw = getattr(item.value, field) if field else None
                        request[path] = (
                            list(raw.values) if leaf.datatype.is_array and raw is not None else raw
                        )
                    self._actuations.put_nowait(request)
        except grpc.RpcError as exc:
            self._failure = SinkError(f"{exc.code().name}: {exc.details()}")
        except asyncio.CancelledError:
            raise

    async def publish(self, values: Mapping[str, Any]) -> dict[str, str]:
        if self._failure is not None:
            raise self._failure
        self._request_id += 1
        request = v.PublishValuesRequest(request_id=self._request_id)
        refused: dict[str, str] = {}
        for path, value in values.items():
            signal_id = self._ids.get(path)
            if signal_id is None:
                refused[path] = "the broker does not serve this signal"
                continue
            request.data_points[signal_id].value.CopyFrom(v2_value(self._catalog.leaf(path), value))
        if request.data_points:
            self._outbox.put_nowait(v.OpenProviderStreamRequest(publish_values_request=request))
        refused.update(self._errors)  # refusals reported since the last call
        self._errors.clear()
        return refused

    async def wait_actuation(self) -> dict[str, Any]:
        return await self._actuations.get()

    async def close(self, drain_timeout: float = 5.0) -> None:
        """Half-close the stream and wait for the broker to end it, so every value already sent
        has been applied before the channel goes (a cancelled call would drop the last ones)."""
        self._outbox.put_nowait(None)
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), drain_timeout)
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._channel is not None:
            await self._channel.close()
