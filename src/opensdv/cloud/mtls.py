"""HTTP over mutual TLS, with the caller's fleet identity in every request.

uvicorn verifies a client certificate against the fleet CA (and its CRL) but does not hand it to
the application. ``PeerIdentityProtocol`` puts the certificate's common name (a VIN, or
``opensdv-<role>``) into the request's state, so a route can answer a car about itself only:
``peer_of(request)``.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import uvicorn
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

from opensdv.link.identity import identity_of

__all__ = ["PeerIdentityProtocol", "peer_of", "server_config"]


class PeerIdentityProtocol(H11Protocol):
    """uvicorn's h11 protocol, adding ``peer`` (the verified certificate's name, or ``None``) to
    the state every request of the connection starts from."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        peer = identity_of(ssl_object.getpeercert()) if ssl_object is not None else None
        self.app_state = {**self.app_state, "peer": peer}  # a copy per connection, never shared


def peer_of(request: Request) -> str | None:
    """The fleet identity that presented a verified certificate on this request's connection."""
    peer = getattr(request.state, "peer", None)
    return peer if isinstance(peer, str) else None


def server_config(app: Any, tls: ssl.SSLContext | None) -> uvicorn.Config:
    """A uvicorn configuration that serves ``app`` over ``tls`` (a context from
    ``IdentityFiles.server_context``: client certificates required) and names each request's peer."""
    options: dict[str, Any] = {"log_level": "warning", "lifespan": "off"}
    if tls is not None:
        options |= {"http": PeerIdentityProtocol, "ssl_context_factory": lambda _config, _default: tls}
    return uvicorn.Config(app, **options)
