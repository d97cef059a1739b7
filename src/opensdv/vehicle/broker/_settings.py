"""A broker server as its settings say: TLS and mutual TLS from certificate files, JWT authorisation
from public keys (``opensdv broker serve`` and ``opensdv vehicle run`` build it the same way)."""

from __future__ import annotations

from typing import Any

from opensdv.config import BrokerSettings
from opensdv.vehicle.broker._auth import TokenVerifier
from opensdv.vehicle.broker._core import Broker
from opensdv.vehicle.broker._errors import BrokerError
from opensdv.vehicle.broker.grpc._server import BrokerServer, TlsConfig


def tls_config(config: BrokerSettings) -> TlsConfig | None:
    if config.tls_cert is None and config.tls_key is None:
        if config.tls_client_ca is not None:
            raise BrokerError("a client CA (--tls-client-ca, [broker] tls_client_ca) needs a certificate and a key: mutual TLS runs over TLS")
        return None
    if config.tls_cert is None or config.tls_key is None:
        raise BrokerError("TLS needs both a certificate and a key (--tls-cert and --tls-key; [broker] tls_cert, tls_key)")
    return TlsConfig(config.tls_cert, config.tls_key, config.tls_client_ca)


def token_verifier(config: BrokerSettings) -> TokenVerifier | None:
    if not config.jwt_public_keys:
        return None
    keys = []
    for path in config.jwt_public_keys:
        try:
            keys.append(path.read_bytes())
        except OSError as exc:
            raise BrokerError(f"{path}: cannot read JWT public key: {exc.strerror}") from None
    return TokenVerifier(keys, audience=config.jwt_audience or None)


def viss_from_settings(broker: Broker, config: BrokerSettings) -> Any:
    """The VISS v3 server for ``broker`` on ``config.viss_address`` (``None`` when not configured),
    with the broker's TLS certificate and JWT keys: one set of credentials for every API."""
    if config.viss_address is None:
        return None
    from opensdv.vehicle.broker.grpc._errors import AllowAll
    from opensdv.vehicle.viss import VissServer, VissService

    verifier = token_verifier(config)
    service = VissService(broker, verifier or AllowAll(), requires_token=verifier is not None)
    return VissServer(service, config.viss_address, tls_cert=config.tls_cert, tls_key=config.tls_key)


def server_from_settings(broker: Broker, config: BrokerSettings) -> BrokerServer:
    """The gRPC server for ``broker`` on ``config.host:port`` with its TLS and JWT settings."""
    return BrokerServer(
        broker,
        f"{config.host}:{config.port}",
        authenticator=token_verifier(config),
        tls=tls_config(config),
        enable_v1=not config.disable_v1,
        enable_sdv_v1=config.enable_sdv_v1,
    )
