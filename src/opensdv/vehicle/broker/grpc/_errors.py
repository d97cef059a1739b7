"""Broker errors -> gRPC status codes, and the permission of the caller of one RPC."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import grpc
from grpc import aio

from opensdv.vehicle.broker._errors import (
    AlreadyExists,
    BrokerError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from opensdv.vehicle.broker._permissions import ALLOW_ALL, Permissions

_STATUS: dict[type[BrokerError], grpc.StatusCode] = {
    NotFound: grpc.StatusCode.NOT_FOUND,
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
}


ERROR_KIND_KEY = "opensdv-error"  # trailing metadata: which BrokerError, for clients that tell them apart


def status_of(error: BrokerError) -> grpc.StatusCode:
    for kind in type(error).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return grpc.StatusCode.INTERNAL


class Authenticator(Protocol):
    def permissions(self, authorization: str | None) -> Permissions: ...


class AllowAll:
    """No authorization configured: every caller may do everything (as KUKSA without --jwt-public-key)."""

    def permissions(self, authorization: str | None) -> Permissions:
        return ALLOW_ALL


class FixedPermissions:
    """One client's listener: every call has these permissions, token or not. For clients that
    cannot send a token (Velocitas apps), on a listener only that client is told of."""

    def __init__(self, permissions: Permissions) -> None:
        self._permissions = permissions

    def permissions(self, authorization: str | None) -> Permissions:
        return self._permissions


def caller_permissions(authenticator: Authenticator, context: aio.ServicerContext[Any, Any]) -> Permissions:
    authorization = None
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            authorization = value if isinstance(value, str) else value.decode()
            break
    return authenticator.permissions(authorization)


R = TypeVar("R")
S = TypeVar("S")


def unary(handler: Callable[[Any, Any, Any], Awaitable[R]]) -> Callable[[Any, Any, Any], Awaitable[R]]:
    """Abort the call with the status code of a ``BrokerError``."""

    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: Any) -> R:
        try:
            return await handler(self, request, context)
        except BrokerError as exc:
            await abort_with(context, exc)
            raise  # abort raises; this line is never reached

    return wrapper


def streaming(
    handler: Callable[[Any, Any, Any], AsyncIterator[S]],
) -> Callable[[Any, Any, Any], AsyncIterator[S]]:
    @functools.wraps(handler)
    async def wrapper(self: Any, request: Any, context: Any) -> AsyncIterator[S]:
        try:
            async for item in handler(self, request, context):
                yield item
        except BrokerError as exc:
            await abort_with(context, exc)

    return wrapper


async def abort_with(context: Any, error: BrokerError) -> None:
    """End the call with the error's status code, naming its kind in the trailing metadata (a
    refused actuation and an unreachable broker are both UNAVAILABLE to gRPC)."""
    context.set_trailing_metadata(((ERROR_KIND_KEY, type(error).__name__),))
    await context.abort(status_of(error), str(error))
