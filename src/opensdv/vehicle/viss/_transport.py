"""VISS v3 over WebSocket (sub-protocol ``VISSv3``) and HTTP (GET reads, POST writes; the path in
the URL with slashes), as the transport specification maps them; TLS where the broker has it."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from opensdv.vehicle.broker._errors import InvalidArgument
from opensdv.vehicle.viss._protocol import MAX_MESSAGE_BYTES, VissError, timestamp
from opensdv.vehicle.viss._service import VissService

__all__ = ["SUBPROTOCOL", "VissServer", "viss_app"]

SUBPROTOCOL = "VISSv3"


def viss_app(service: VissService) -> Starlette:
    """The ASGI application: ``/`` for WebSocket sessions, ``/Vehicle/...`` for HTTP."""

    async def websocket(ws: WebSocket) -> None:
        offered = ws.scope.get("subprotocols", [])
        if offered and SUBPROTOCOL not in offered:
            await ws.close(code=1002, reason=f"this server speaks the {SUBPROTOCOL} sub-protocol")
            return
        await ws.accept(subprotocol=SUBPROTOCOL if offered else None)
        lock = asyncio.Lock()

        async def send(message: dict[str, Any]) -> None:
            async with lock:
                await ws.send_text(json.dumps(message))

        session = service.session(send)
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                received = message.get("text") if message.get("text") is not None else message.get("bytes", b"")
                await send(await session.handle(received))
        except WebSocketDisconnect:
            pass
        finally:
            await session.close()

    def error(problem: VissError) -> JSONResponse:
        body = {"error": problem.as_json(), "ts": timestamp(service.clock.time())}
        return JSONResponse(body, status_code=int(problem.number), headers=_challenge(body))

    async def http(request: Request) -> JSONResponse:
        path = request.path_params["path"].strip("/").replace("/", ".")
        message: dict[str, Any] = {"path": path}
        token = request.headers.get("authorization")
        if token:
            message["authorization"] = token
        if request.method == "GET":
            message["action"] = "get"
            if "filter" in request.query_params:
                try:
                    message["filter"] = json.loads(request.query_params["filter"])
                except ValueError:
                    return error(VissError("400", "bad_request", "the filter query parameter is not JSON"))
        else:
            body = await request.body()
            if len(body) > MAX_MESSAGE_BYTES:
                return error(VissError("400", "bad_request", f"a request is at most {MAX_MESSAGE_BYTES} bytes"))
            try:
                sent = json.loads(body)
            except ValueError:
                return error(VissError("400", "bad_request", 'the body is {"value": ...} in JSON'))
            if not isinstance(sent, dict) or set(sent) != {"value"}:
                return error(VissError("400", "bad_request", 'the body is {"value": ...}'))
            message |= {"action": "set", "value": sent["value"]}

        async def no_events(_: dict[str, Any]) -> None:  # HTTP has no subscriptions
            return None

        response = await service.session(no_events).handle(message)
        response.pop("action", None)
        if "error" in response:
            return JSONResponse(response, status_code=int(response["error"]["number"]), headers=_challenge(response))
        return JSONResponse(response)

    return Starlette(
        routes=[WebSocketRoute("/", websocket), Route("/{path:path}", http, methods=["GET", "POST"])],
    )


def _challenge(response: dict[str, Any]) -> dict[str, str]:
    if response["error"]["number"] != "401":
        return {}
    return {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="the access token is missing, invalid or expired"'}


class VissServer:
    """``await VissServer(service, "127.0.0.1:8090").start()``: serves until ``stop()``."""

    def __init__(self, service: VissService, address: str, *, tls_cert: Path | None = None, tls_key: Path | None = None) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidArgument(f"VISS address must be host:port, got {address!r}")
        self.service, self.host, self.port = service, host, int(port)
        self.tls = None
        if tls_cert is not None and tls_key is not None:
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(tls_cert, tls_key)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise InvalidArgument(f"VISS cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = sock.getsockname()[1]
        sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        options: dict[str, Any] = {"log_level": "warning", "lifespan": "off", "ws_max_size": MAX_MESSAGE_BYTES}
        if self.tls is not None:
            tls = self.tls
            options["ssl_context_factory"] = lambda _config, _default: tls
        self._server = uvicorn.Server(uvicorn.Config(viss_app(self.service), **options))
        self._sock = sock
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
            self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
