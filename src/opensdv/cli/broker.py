"""``opensdv broker``: serve the vehicle data broker, mint tokens, make keys and test certificates."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings, vss_catalog
from opensdv.durable import write_atomically
from opensdv.errors import OpenSDVError

if TYPE_CHECKING:
    from opensdv.vehicle.broker import Broker, BrokerServer, StateFile

DEFAULT_AUDIENCE = "kuksa.val"  # the broker's; written out so that --help needs no gRPC (a test checks)

app = typer.Typer(name="broker", help=SUBCOMMANDS["broker"], no_args_is_help=True)


def _split(files: list[Path] | None) -> list[Path]:
    """``--vss a.json,b.yaml`` and ``--vss a.json --vss b.yaml`` mean the same."""
    return [Path(part) for f in files or [] for part in str(f).split(",") if part]


async def _serve(broker: Broker, server: BrokerServer, state: StateFile | None, viss: Any = None) -> None:
    await server.start()
    if viss is not None:
        await viss.start()
    gc.freeze()  # the catalog and start-up objects are permanent: keep them out of GC passes (shorter pauses)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    saver = asyncio.create_task(state.run()) if state else None
    security = ("mutual TLS" if server.tls and server.tls.client_ca else "TLS") if server.tls else "plaintext"
    console.print(
        f"[bold green]broker[/bold green] serving {len(broker.catalog)} signals on {server.target} "
        f"({security}; kuksa.val.v2 + v1{' + sdv.databroker.v1' if server.enable_sdv_v1 else ''})"
        + (f", VISS v3 on {viss.url}" if viss is not None else "") + "; Ctrl-C stops"
    )
    await stop.wait()
    if saver:
        saver.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saver
    if viss is not None:
        await viss.stop()
    await server.stop()


@app.command(
    epilog="Examples:\n\n"
    "  opensdv broker serve --jwt-public-key keys/jwt.pub\n\n"
    "  opensdv broker serve --allow-anonymous   (a bench: no tokens, loopback only)\n\n"
    "  opensdv broker serve --address 0.0.0.0:55555 --tls-cert server.pem --tls-key server.key --jwt-public-key jwt.pub --vss vss_6.0.json,oem_overlay.yaml --state /var/lib/opensdv/state.json\n\n"
    "  opensdv broker serve --tls-cert server.pem --tls-key server.key --tls-client-ca ca.pem --jwt-public-key jwt.pub\n\n"
    "Every flag also reads from opensdv.toml ([broker] table) and OPENSDV_BROKER__* variables."
)
def serve(
    ctx: typer.Context,
    address: str | None = typer.Option(None, help="host:port to listen on (default 127.0.0.1:55555)"),
    vss: list[Path] | None = typer.Option(
        None, "--vss", help="VSS files, comma-separated or repeated: base, then overlays"
    ),
    state: Path | None = typer.Option(
        None, "--state", help="keep last values and attributes in this file across restarts"
    ),
    tls_cert: Path | None = typer.Option(None, help="server certificate (PEM): enables TLS"),
    tls_key: Path | None = typer.Option(None, help="server private key (PEM)"),
    tls_client_ca: Path | None = typer.Option(None, help="CA for client certificates: enables mutual TLS"),
    jwt_public_key: list[Path] | None = typer.Option(
        None, help="public key (PEM) for RS256/ES256 tokens: enables authorization"
    ),
    jwt_audience: str | None = typer.Option(None, help=f"required 'aud' claim (default {DEFAULT_AUDIENCE})"),
    stale_after: float | None = typer.Option(
        None, help="seconds after which an un-updated signal counts as stale"
    ),
    safety_policy: Path | None = typer.Option(
        None, help="safety policy for actuations (default: the platform policy shipped with OpenSDV)"
    ),
    no_safety_guard: bool = typer.Option(
        False, "--no-safety-guard", help="forward actuations without the safety guard (bench rigs only)"
    ),
    enable_sdv_v1: bool = typer.Option(
        False, "--enable-sdv-v1", help="also serve sdv.databroker.v1 (what Velocitas apps speak; KUKSA 0.7 removed it)"
    ),
    viss: str | None = typer.Option(
        None, "--viss", help="host:port for VISS v3 (WebSocket and HTTP) with the same TLS and tokens"
    ),
    allow_anonymous: bool = typer.Option(
        False, "--allow-anonymous", help="serve without tokens: every client reads and writes everything (benches only)"
    ),
    allow_plaintext: bool = typer.Option(
        False, "--allow-plaintext", help="serve without TLS on an address other machines reach (benches only)"
    ),
) -> None:
    """Serve the data broker until Ctrl-C (or SIGTERM)."""
    from opensdv.vehicle.broker import Broker, StateFile, server_from_settings, viss_from_settings
    from opensdv.vehicle.safety import ActuationGuard, load_policy

    base = settings(ctx).broker
    host, port = base.host, base.port
    if address is not None:
        host, _, port_text = address.rpartition(":")
        if not host or not port_text.isdigit():
            raise OpenSDVError(f"--address must be host:port, got {address!r}")
        port = int(port_text)
    config = base.model_copy(
        update={
            key: value
            for key, value in {
                "state_file": state,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "tls_client_ca": tls_client_ca,
                "jwt_public_keys": jwt_public_key or None,
                "jwt_audience": jwt_audience,
                "stale_after_s": stale_after,
                "enable_sdv_v1": enable_sdv_v1 or None,
                "viss_address": viss,
            }.items()
            if value is not None
        }
    )
    if not config.jwt_public_keys and not allow_anonymous:
        raise OpenSDVError(
            "refusing to serve every signal to anyone: give --jwt-public-key (opensdv broker keygen makes a key pair) "
            "or, for a bench, --allow-anonymous"
        )
    if config.tls_cert is None and host not in ("127.0.0.1", "localhost", "::1") and not allow_plaintext:
        raise OpenSDVError(
            f"refusing plaintext on {host}, which other machines reach: give --tls-cert and --tls-key "
            "(opensdv broker certs makes a throwaway set), or, for a bench, --allow-plaintext"
        )
    guard = None if no_safety_guard else ActuationGuard(load_policy(safety_policy), time.time)
    broker = Broker(
        vss_catalog(ctx, _split(vss)), stale_after=config.stale_after_s, guard=guard,
        max_subscriptions=config.max_subscriptions, max_subscriptions_per_client=config.max_subscriptions_per_client,
    )  # fmt: skip
    state_file = None
    if config.state_file is not None:
        state_file = StateFile(config.state_file, broker)
        for note in state_file.load():
            console.print(f"[yellow]state file:[/yellow] skipped {note}")
    server = server_from_settings(broker, config.model_copy(update={"host": host, "port": port}))
    asyncio.run(_serve(broker, server, state_file, viss_from_settings(broker, config)))


@app.command(
    epilog="Examples:\n\n"
    "  opensdv broker token --key jwt.key --scope 'read actuate:Vehicle.Powertrain.TractionBattery.Charging'\n\n"
    "  opensdv broker token --key jwt.key --scope 'provide:data:Vehicle.Speed' --lifetime 600 --subject can-feeder"
)
def token(
    key: Path = typer.Option(..., help="private key (PEM, RSA for RS256 or EC P-256 for ES256)"),
    scope: str = typer.Option(
        ...,
        help="space-separated KUKSA scopes: read, actuate, provide[:data|:actuation], create, each [:PATH]",
    ),
    audience: str = typer.Option(DEFAULT_AUDIENCE, help="'aud' claim"),
    subject: str = typer.Option("opensdv", help="'sub' and 'client_id' claims"),
    lifetime: float = typer.Option(3600, min=1, help="seconds until the token expires"),
) -> None:
    """Mint an RFC 9068 access token for the broker (for tests and tooling)."""
    from opensdv.vehicle.broker import mint_token

    try:
        private = key.read_bytes()
    except OSError as exc:
        raise OpenSDVError(f"{key}: cannot read private key: {exc.strerror}") from None
    typer.echo(mint_token(private, scope, audience=audience, subject=subject, lifetime_s=lifetime))


@app.command(epilog="Examples:\n\n  opensdv broker keygen --out keys/ --algorithm ES256")
def keygen(
    out: Path = typer.Option(Path("."), help="folder for jwt.key (private) and jwt.pub (public)"),
    algorithm: str = typer.Option("RS256", help="RS256 or ES256"),
) -> None:
    """Make a key pair for signing (jwt.key) and verifying (jwt.pub) access tokens."""
    from opensdv.vehicle.broker import generate_key_pair

    private, public = generate_key_pair(algorithm)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "jwt.key", private, private=True)
    write_atomically(out / "jwt.pub", public)
    console.print(f"wrote {out / 'jwt.key'} and {out / 'jwt.pub'} ({algorithm})")


@app.command(epilog="Examples:\n\n  opensdv broker certs --out pki/ --host localhost --host 127.0.0.1")
def certs(
    out: Path = typer.Option(Path("pki"), help="folder for ca.pem, server.pem/.key, client.pem/.key"),
    host: list[str] | None = typer.Option(
        None, help="name or IP the server certificate is valid for (repeat)"
    ),
) -> None:
    """Make a throwaway CA with server and client certificates, for TLS and mutual-TLS testing."""
    from opensdv.vehicle.broker import write_dev_pki

    pki = write_dev_pki(out, tuple(host or ("localhost", "127.0.0.1")))
    console.print(
        f"wrote {pki.ca_cert}, {pki.server_cert}, {pki.server_key}, {pki.client_cert}, {pki.client_key}"
    )
