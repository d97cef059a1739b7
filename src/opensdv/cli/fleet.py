"""``opensdv fleet``: the fleet's identities — the CA, cars, services, the command key, revocation,
and the Mosquitto configuration that enforces them."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from opensdv.cli import SUBCOMMANDS
from opensdv.cli._common import console, settings, table

app = typer.Typer(name="fleet", help=SUBCOMMANDS["fleet"], no_args_is_help=True)
ca_app = typer.Typer(name="ca", help="The fleet certificate authority.", no_args_is_help=True)
app.add_typer(ca_app)

CA_DIR = typer.Option(
    None, "--ca-dir", envvar="OPENSDV_FLEET_CA_DIR", help="the CA directory; default <data_dir>/fleet-ca"
)


def _ca_dir(ctx: typer.Context, ca_dir: Path | None) -> Path:
    return ca_dir or settings(ctx).data_dir / "fleet-ca"


def _ca(ctx: typer.Context, ca_dir: Path | None):  # type: ignore[no-untyped-def]
    from opensdv.cloud.fleet.identities import FleetCa

    return FleetCa(_ca_dir(ctx, ca_dir))


@ca_app.command("init", epilog="Example:\n\n  opensdv fleet ca init --ca-dir /secure/fleet-ca")
def ca_init(
    ctx: typer.Context, ca_dir: Path | None = CA_DIR, name: str = typer.Option("OpenSDV fleet CA")
) -> None:
    """Create the fleet CA (ECDSA P-256) and its first command-signing key; an existing CA is kept."""
    from opensdv.cloud.fleet.identities import FleetCa

    ca = FleetCa.init(_ca_dir(ctx, ca_dir), name)
    ca.command_key(ca.directory / "command-key")
    console.print(
        f"fleet CA in {ca.directory}: keep ca.key offline; command key in {ca.directory / 'command-key'}"
    )


@app.command(
    epilog="Example:\n\n  opensdv fleet provision JN1NSSAN0DD000001 --vehicle-dir /var/lib/opensdv/vehicle"
)
def provision(
    ctx: typer.Context,
    vin: str,
    vehicle_dir: Path = typer.Option(..., help="the car's state_dir: its identity goes to <state_dir>/link"),
    ca_dir: Path | None = CA_DIR,
) -> None:
    """A car's identity: its key, its certificate (subject: the VIN), the CA and the command signer."""
    files = _ca(ctx, ca_dir).provision(vin, vehicle_dir / "link")
    console.print(f"{vin}: identity in {files.cert_file.parent}")


@app.command(
    "provision-service",
    epilog="Examples:\n\n  opensdv fleet provision-service ingest --out /etc/opensdv/identities\n\n"
    "  opensdv fleet provision-service broker --host fleet.example.com --out /etc/mosquitto/fleet",
)
def provision_service(
    ctx: typer.Context,
    role: str = typer.Argument(..., help="ingest, api, ota, energy or broker"),
    out: Path = typer.Option(..., help="the service's identities_dir"),
    host: list[str] = typer.Option([], help="a host name or address the service listens on; repeat"),
    ca_dir: Path | None = CA_DIR,
) -> None:
    """A service's identity (opensdv-ROLE), with the CA certificate and the revocation files."""
    files = _ca(ctx, ca_dir).provision_service(role, out, host)
    console.print(f"opensdv-{role}: identity in {files.cert_file.parent}")


@app.command(
    "provision-station",
    epilog="Example:\n\n  opensdv fleet provision-station CS-003 --out /secure/CS-003\n\n"
    "  opensdv energy station add CS-003 --certificate --no-password",
)
def provision_station(
    ctx: typer.Context,
    station_id: str = typer.Argument(..., help="the charging station's id (its OCPP identity)"),
    out: Path = typer.Option(..., help="where <station id>.pem, .key and ca.pem go, for the station"),
    ca_dir: Path | None = CA_DIR,
) -> None:
    """A charging station's client certificate (OCPP security profile 3); the CSMS accepts it once
    `opensdv energy station add ID --certificate` allows it."""
    from opensdv.cloud.energy.ocpp.credentials import checked_station_id

    files = _ca(ctx, ca_dir).provision_station(checked_station_id(station_id), out)
    console.print(f"{station_id}: {files.cert_file} and {files.key_file}, trusting {files.ca_file}")


@app.command(
    "command-key", epilog="Example (a rotation):\n\n  opensdv fleet command-key --out /etc/opensdv/identities"
)
def command_key(
    ctx: typer.Context,
    out: Path = typer.Option(..., help="the API's identities_dir"),
    ca_dir: Path | None = CA_DIR,
) -> None:
    """Issue a new command-signing key: cars trust it because the CA signed it (no re-provisioning)."""
    cert = _ca(ctx, ca_dir).command_key(out)
    console.print(f"command key: {cert} (and its .key); restart the API to sign with it")


@app.command(epilog="Example:\n\n  opensdv fleet revoke JN1NSSAN0DD000001 --publish /etc/opensdv/identities")
def revoke(
    ctx: typer.Context,
    subject: str = typer.Argument(..., help="a VIN, or opensdv-ROLE"),
    publish: list[Path] = typer.Option(
        [], help="copy crl.pem and revoked.json here too (broker, cloud); repeat"
    ),
    ca_dir: Path | None = CA_DIR,
) -> None:
    """Revoke every certificate of SUBJECT: the broker refuses it, the cloud drops what it sent."""
    ca = _ca(ctx, ca_dir)
    serials = ca.revoke(subject)
    for directory in publish:
        ca.publish(directory)
    console.print(f"{subject}: {len(serials)} certificate(s) revoked; reload Mosquitto (SIGHUP) to load the new CRL")


@app.command(epilog="Example (from cron, monthly):\n\n  opensdv fleet crl --publish /etc/opensdv/identities")
def crl(ctx: typer.Context, publish: list[Path] = typer.Option([]), ca_dir: Path | None = CA_DIR) -> None:
    """Re-sign the CRL before its next update (90 days): an expired CRL fails every handshake."""
    ca = _ca(ctx, ca_dir)
    ca.renew_crl()
    for directory in publish:
        ca.publish(directory)
    console.print(f"CRL renewed: {ca.crl_file}")


@app.command("list")
def list_identities(ctx: typer.Context, ca_dir: Path | None = CA_DIR) -> None:
    """Every certificate the CA issued, revoked ones marked."""
    rows = table("subject", "usage", "serial", "valid until", "revoked")
    for entry in _ca(ctx, ca_dir).issued():
        rows.add_row(
            entry.subject, entry.usage, f"{entry.serial:x}"[:16], entry.not_after[:10], entry.revoked_at or ""
        )
    console.print(rows)


@app.command(
    "mosquitto-config",
    epilog="Example:\n\n  opensdv fleet provision-service broker --host fleet.example.com --out /etc/mosquitto/fleet\n\n"
    "  opensdv fleet mosquitto-config --identity-dir /etc/mosquitto/fleet --out /etc/mosquitto/conf.d",
)
def mosquitto_config(
    identity_dir: Path = typer.Option(..., help="where provision-service broker wrote the broker's identity"),
    out: Path = typer.Option(..., help="where mosquitto.conf and fleet.acl go"),
    port: int = typer.Option(8883),
    bind: str = typer.Option("0.0.0.0"),
    run_as: str | None = typer.Option(
        None, help="the user Mosquitto runs as (default: mosquitto); 'me': this user"
    ),
) -> None:
    """Mosquitto 2: mutual TLS only, the CRL, identity as username, the link's pattern ACL."""
    from opensdv.cloud.fleet.mosquitto import write_mosquitto_config
    from opensdv.link.identity import IdentityFiles

    identity = IdentityFiles.under(identity_dir, "opensdv-broker")
    user = getpass.getuser() if run_as == "me" else run_as
    files = write_mosquitto_config(out, identity, identity_dir / "crl.pem", port=port, bind=bind, run_as=user)
    console.print(f"wrote {files.config} and {files.acl}: mosquitto -c {files.config}")
