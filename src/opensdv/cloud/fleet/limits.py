"""Bounds on what one request may make the API do: the size of a body, the number of live
streams an operator holds, the shortest period of a stream, the span of a time series.

The body limit is a plain ASGI middleware: it refuses a declared ``Content-Length`` over the limit
before anything is read, and stops a chunked body once it passes it, so no handler (the token
endpoint reads its form before it knows who is calling) ever holds more than the limit."""

from __future__ import annotations

import json
import math
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_LIVE_STREAMS",
    "MAX_SERIES_POINTS",
    "MIN_LIVE_PERIOD_S",
    "BodyLimit",
    "LiveStream",
    "LiveStreams",
    "finite",
]

MAX_BODY_BYTES = 64 * 1024  # a command, a campaign, a login: a few hundred bytes each
MAX_LIVE_STREAMS = 8  # per operator: a few dashboards open at once
MIN_LIVE_PERIOD_S = 0.5
MAX_SERIES_POINTS = 100_000

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """413 for a request body over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        refused = started = False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    refused = True  # the app hears the client leave; the client hears 413
                    return {"type": "http.disconnect"}
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if refused:
                return  # whatever the app answers to a body it could not read, the 413 goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except Exception:
            if not refused:
                raise
        if refused and not started:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"the request body is over {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


class LiveStream:
    """One open stream: a handle the stream's generator holds (when it is dropped, so is the place)."""


class LiveStreams:
    """How many live streams each operator holds; past ``limit`` a new one is refused (429). A
    stream gives its place back when it ends, or when its response is dropped before it started."""

    def __init__(self, limit: int = MAX_LIVE_STREAMS) -> None:
        self.limit = limit
        self._held: dict[str, weakref.WeakSet[LiveStream]] = {}

    def open(self, operator: str) -> LiveStream:
        held = self._held.setdefault(operator, weakref.WeakSet())
        if len(held) >= self.limit:
            raise HTTPException(429, f"operator {operator} has {len(held)} live streams open, the most allowed")
        stream = LiveStream()
        held.add(stream)
        return stream

    def close(self, operator: str, stream: LiveStream) -> None:
        self._held.get(operator, weakref.WeakSet()).discard(stream)

    def held(self, operator: str) -> int:
        return len(self._held.get(operator, ()))


def finite(name: str, value: float | None, low: float = -math.inf, high: float = math.inf) -> None:
    """422 naming the parameter unless ``value`` is a number in [low, high] (NaN and inf are not)."""
    if value is not None and not (math.isfinite(value) and low <= value <= high):
        span = "" if (low, high) == (-math.inf, math.inf) else f" in [{low:g}, {high:g}]"
        raise HTTPException(422, f"{name} must be a finite number{span}")
