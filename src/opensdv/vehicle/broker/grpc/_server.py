"""Serving the broker core over gRPC: kuksa.val v2 and v1, sdv.databroker.v1 if enabled; plain TCP,
TLS or mutual TLS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc import aio
from kuksa.val.v1 import val_pb2_grpc as v1_grpc
from kuksa.val.v2 import val_pb2_grpc as v2_grpc

from opensdv.vehicle.broker._core import Broker
from opensdv.vehicle.broker._errors import InvalidArgument
from opensdv.vehicle.broker.grpc._errors import AllowAll, Authenticator
from opensdv.vehicle.broker.grpc._sdv_v1 import SdvBrokerV1, SdvCollectorV1
from opensdv.vehicle.broker.grpc._v1 import ValV1
from opensdv.vehicle.broker.grpc._v2 import ValV2
from opensdv.vehicle.broker.grpc.sdv_v1 import broker_pb2_grpc as sdv_broker
from opensdv.vehicle.broker.grpc.sdv_v1 import collector_pb2_grpc as sdv_collector

__all__ = ["BrokerServer", "TlsConfig"]


@dataclass(frozen=True)
class TlsConfig:
    """Server certificate and key; with ``client_ca`` every client must show a certificate it signed."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        try:
            key, cert = self.key.read_bytes(), self.cert.read_bytes()
            client_ca = self.client_ca.read_bytes() if self.client_ca else None
        except OSError as exc:
            raise InvalidArgument(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
        )


class BrokerServer:
    """``async with BrokerServer(broker, "127.0.0.1:0") as server: server.port``"""

    def __init__(
        self,
        broker: Broker,
        address: str = "127.0.0.1:55555",
        *,
        authenticator: Authenticator | None = None,
        tls: TlsConfig | None = None,
        enable_v1: bool = True,
        enable_sdv_v1: bool = False,
        enable_v2: bool = True,
    ) -> None:
        self.broker = broker
        self.address = address
        self.tls = tls
        self._auth = authenticator or AllowAll()
        self._enable_v1 = enable_v1
        self.enable_sdv_v1 = enable_sdv_v1
        self._enable_v2 = enable_v2
        self._server: aio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        server = aio.server(options=[("grpc.so_reuseport", 0)])
        if self._enable_v2:
            v2_grpc.add_VALServicer_to_server(ValV2(self.broker, self._auth), server)
        if self._enable_v1:
            v1_grpc.add_VALServicer_to_server(ValV1(self.broker, self._auth), server)
        if self.enable_sdv_v1:
            sdv_broker.add_BrokerServicer_to_server(SdvBrokerV1(self.broker, self._auth), server)  # type: ignore[no-untyped-call]
            sdv_collector.add_CollectorServicer_to_server(SdvCollectorV1(self.broker, self._auth), server)  # type: ignore[no-untyped-call]
        try:
            if self.tls is None:
                self.port = server.add_insecure_port(self.address)
            else:
                self.port = server.add_secure_port(self.address, self.tls.credentials())
        except RuntimeError as exc:
            raise InvalidArgument(f"cannot listen on {self.address}: {exc}") from None
        await server.start()
        self._server = server

    @property
    def target(self) -> str:
        """``host:port`` a client connects to."""
        host = self.address.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def stop(self, grace: float | None = 1.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> BrokerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
