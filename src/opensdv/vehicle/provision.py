"""A car's first start: its state directory with the keys it owns, and a starting ``vehicle.toml``.

The broker's token-signing key pair (ES256) is made here, so the vehicle's broker checks a token on
every call from the start and the app runtime can give each app a token scoped to its manifest.
Each ECU's Ed25519 key is made here too (a stand-in for a key burnt in at the factory), so the OTA
back end can enrol the car from its public keys (``opensdv ota enrol``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from securesystemslib.signer import Key

from opensdv.durable import write_atomically
from opensdv.model.vehicles import Vehicle
from opensdv.vehicle.broker import generate_key_pair
from opensdv.vehicle.ota.setup import ecu_key
from opensdv.vehicle.process import VehicleLayout, ecu_specs

__all__ = ["ecu_public_keys", "initialise_vehicle", "starting_config"]


def ecu_public_keys(vin: str, vehicle: Vehicle, ota_dir: Path) -> dict[str, Key]:
    """ECU name -> public key, for ``OtaBackend.enrol`` (each key made on first use, then kept)."""
    return {spec.name: ecu_key(ota_dir / "ecus" / spec.serial).public_key for spec in ecu_specs(vin, vehicle)}


def initialise_vehicle(vin: str, vehicle: Vehicle, layout: VehicleLayout) -> None:
    """Make the car's keys under ``layout.root`` (existing keys are kept: a re-run changes nothing)."""
    if not layout.jwt_private_key.exists():
        private, public = generate_key_pair("ES256")
        write_atomically(layout.jwt_public_key, public)
        write_atomically(layout.jwt_private_key, private, private=True)
    ecu_public_keys(vin, vehicle, layout.ota)  # creates each ECU's key once


def starting_config(
    vin: str,
    model: str,
    layout: VehicleLayout,
    *,
    bus: str = "socketcan:can0",
    simulate: bool = False,
    broker_address: str = "127.0.0.1:55555",
    mqtt_url: str | None = None,
    ota_url: str | None = None,
    simulated_cycle: str = "udds",
    simulated_faults: Sequence[str] = (),
    telemetry_period_s: float = 1.0,
    ota_period_s: float = 60.0,
    enable_sdv_v1: bool = False,
    apps_mqtt_address: str | None = None,
    app_environments_dir: Path | None = None,
) -> str:
    """A ``vehicle.toml`` for ``opensdv vehicle run`` (every key documented in docs/deploy.md)."""
    interface, _, channel = bus.partition(":")
    host, _, port = broker_address.rpartition(":")

    def q(value: object) -> str:
        return json.dumps(str(value))  # a TOML basic string

    lines = [
        "# opensdv vehicle run --config vehicle.toml  (every key: OPENSDV_VEHICLE__KEY, OPENSDV_BROKER__KEY, or a flag)",
        "[vehicle]",
        f"vin = {q(vin)}",
        f"model = {q(model)}",
        f"state_dir = {q(layout.root)}",
        f"mqtt_url = {q(mqtt_url)}"
        if mqtt_url
        else '# mqtt_url = "mqtts://fleet.example.com:8883"  (needs opensdv fleet provision)',
        f"ota_url = {q(ota_url)}" if ota_url else '# ota_url = "https://ota.example.com:8081"',
        f"telemetry_period_s = {telemetry_period_s!r}",
        f"ota_period_s = {ota_period_s!r}",
        *([f"simulated_faults = [{', '.join(q(name) for name in simulated_faults)}]"] if simulated_faults else []),
        *([f"apps_mqtt_address = {q(apps_mqtt_address)}"] if apps_mqtt_address else []),
        *([f"app_environments_dir = {q(app_environments_dir)}"] if app_environments_dir else []),
        "",
        "[vehicle.bus]",
        f"interface = {q(interface)}",
        f"channel = {q(channel or 'opensdv')}",
        f"simulate = {'true' if simulate else 'false'}",
        *([f"simulated_cycle = {q(simulated_cycle)}"] if simulate else []),
        "",
        "[broker]",
        f"host = {q(host or '127.0.0.1')}",
        f"port = {int(port or 55555)}",
        f"jwt_public_keys = [{q(layout.jwt_public_key)}]",
        f"enable_sdv_v1 = {'true' if enable_sdv_v1 else 'false'}  # sdv.databroker.v1, for Velocitas apps",
        "# tls_cert = ...  tls_key = ...  tls_client_ca = ...",
        "",
    ]
    return "\n".join(lines)
