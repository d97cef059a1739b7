"""An asyncio client for ``kuksa.val.v2``: get, subscribe, actuate — what apps need, nothing more.

It speaks only the v2 API (so it works against OpenSDV's broker and Eclipse KUKSA's databroker
alike) and learns each signal's datatype from ``ListMetadata`` instead of shipping a catalog.
Subscriptions survive a broker restart: the stream is opened again with the same paths after a
back-off, and the app sees the values as if nothing happened (plus a ``reconnects`` counter).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from kuksa.val.v2 import types_pb2 as t
from kuksa.val.v2 import val_pb2 as v
from kuksa.val.v2 import val_pb2_grpc

from opensdv.vehicle.apps.errors import (
    AppError,
    BrokerUnreachable,
    SignalDenied,
    SignalNotFound,
    SignalUnavailable,
)

__all__ = ["VehicleClient"]

_SCALAR = {
    "STRING": "string", "BOOLEAN": "bool", "INT8": "int32", "INT16": "int32", "INT32": "int32", "INT64": "int64",
    "UINT8": "uint32", "UINT16": "uint32", "UINT32": "uint32", "UINT64": "uint64", "FLOAT": "float", "DOUBLE": "double",
}  # fmt: skip


def _field(data_type: int) -> str:
    name = t.DataType.Name(data_type).removeprefix("DATA_TYPE_")
    base, array = name.removesuffix("_ARRAY"), name.endswith("_ARRAY")
    if base not in _SCALAR:
        raise AppError(f"data type {name} is not supported by the app SDK")
    return _SCALAR[base] + ("_array" if array else "")


def _read(value: t.Value) -> Any:
    present = value.WhichOneof("typed_value")
    if present is None:
        return None
    raw = getattr(value, present)
    return list(raw.values) if present.endswith("_array") else raw


def _translate(error: grpc.aio.AioRpcError, what: str) -> AppError:
    details = error.details() or ""
    code = error.code()
    kind = dict(error.trailing_metadata() or ()).get("opensdv-error")  # set by OpenSDV's broker
    if code is grpc.StatusCode.NOT_FOUND:
        return SignalNotFound(f"{what}: {details}")
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return SignalDenied(f"{what}: {details}")
    if code is grpc.StatusCode.UNAVAILABLE and kind == "Unavailable":  # the broker has no provider
        return SignalUnavailable(f"{what}: {details}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return BrokerUnreachable(f"{what}: {details or code.name}")
    return AppError(f"{what}: {code.name}: {details}")


class VehicleClient:
    """One channel to one broker; ``token`` (a JWT) is sent with every call when given."""

    def __init__(
        self,
        target: str,
        token: str | None = None,
        *,
        root_certificates: bytes | None = None,
        reconnect_delays_s: Sequence[float] = (0.1, 0.2, 0.5, 1.0, 2.0),
    ) -> None:
        self.target = target
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._tls = root_certificates
        self._delays = tuple(reconnect_delays_s)
        self._channel: grpc.aio.Channel | None = None
        self._types: dict[str, str] = {}
        self.reconnects = 0

    async def __aenter__(self) -> VehicleClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    @property
    def _stub(self) -> val_pb2_grpc.VALStub:
        if self._channel is None:
            self._channel = (
                grpc.aio.secure_channel(self.target, grpc.ssl_channel_credentials(self._tls))
                if self._tls is not None
                else grpc.aio.insecure_channel(self.target)
            )
        return val_pb2_grpc.VALStub(self._channel)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    async def _call(self, what: str, method: str, request: Any) -> Any:
        """A unary call, retried while the broker is unreachable (a restart), then translated."""
        for attempt, delay in enumerate((*self._delays, None)):
            try:
                return await getattr(self._stub, method)(request, metadata=self._metadata)
            except grpc.aio.AioRpcError as error:
                translated = _translate(error, what)
                if not isinstance(translated, BrokerUnreachable) or delay is None:
                    raise translated from None
                self.reconnects += attempt == 0
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def field(self, path: str) -> str:
        """The v2 value field for ``path`` (from ListMetadata, cached)."""
        if path not in self._types:
            reply = await self._call(path, "ListMetadata", v.ListMetadataRequest(root=path))
            exact = [m for m in reply.metadata if m.path == path]
            if not exact:
                raise SignalNotFound(f"{path}: the broker has no such signal")
            self._types[path] = _field(exact[0].data_type)
        return self._types[path]

    async def get(self, *paths: str) -> dict[str, Any]:
        """Current values (None where the signal has none yet)."""
        request = v.GetValuesRequest(signal_ids=[t.SignalID(path=p) for p in paths])
        reply = await self._call(", ".join(paths), "GetValues", request)
        return {
            p: _read(point.value) if point.HasField("value") else None
            for p, point in zip(paths, reply.data_points, strict=True)
        }

    async def actuate(self, path: str, value: Any) -> None:
        """Ask the actuator's provider to move; the safety guard may refuse (``SignalDenied``)."""
        field = await self.field(path)
        message = t.Value()
        if field.endswith("_array"):
            getattr(message, field).values.extend(value)
        else:
            setattr(message, field, value)
        await self._call(path, "Actuate", v.ActuateRequest(signal_id=t.SignalID(path=path), value=message))

    async def subscribe(self, *paths: str) -> AsyncIterator[dict[str, Any]]:
        """Updates (path -> value) as they come; re-subscribes by itself after a broker restart."""
        failures = 0
        while True:
            try:
                call = self._stub.Subscribe(
                    v.SubscribeRequest(signal_paths=list(paths)), metadata=self._metadata
                )
                async for response in call:
                    failures = 0
                    yield {
                        p: _read(point.value) if point.HasField("value") else None
                        for p, point in response.entries.items()
                    }
            except grpc.aio.AioRpcError as error:
                translated = _translate(error, ", ".join(paths))
                if not isinstance(translated, BrokerUnreachable) or failures >= len(self._delays):
                    raise translated from None
                await asyncio.sleep(self._delays[failures])
                failures += 1
                self.reconnects += 1
                continue
            return  # the server ended the stream normally
