"""The demo's cars: each one a ``vehicle run`` (``VehicleProcess``) from a ``vehicle.toml`` written
the way ``opensdv vehicle init`` writes it, with a twin driving the brand's ECUs on a virtual bus.

What a car's computer would get from its factory — its keys, its fleet identity, its enrolment in
the OTA back end — the demo does with the same functions the ``opensdv`` commands call.
"""

from __future__ import annotations

import asyncio
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path

from opensdv.config import Settings
from opensdv.model.vehicles import Vehicle
from opensdv.vehicle.broker import mint_token
from opensdv.vehicle.process import VehicleLayout, VehicleProcess
from opensdv.vehicle.provision import starting_config

__all__ = ["DEMO_CYCLES", "FAILING_BRAND", "DemoCar", "demo_vin", "free_or_any", "settings_from_file"]

_WMI = {"Nissan": "JN1", "Honda": "JHM", "Mitsubishi": "JA3"}
DEMO_CYCLES = {"Nissan": "udds", "Honda": "wltc_class3b", "Mitsubishi": "wltc_japan"}
FAILING_BRAND = "Mitsubishi"  # the injected failure: its inverters fail their health check after an install


def demo_vin(vehicle: Vehicle, serial: int) -> str:
    """A VIN of valid form (ISO 3779) for a simulated car: brand WMI, model code, serial."""
    wmi = _WMI.get(vehicle.definition.brand, "ZZZ")
    model = re.sub(r"[^A-HJ-NPR-Z0-9]", "", vehicle.id.upper())[:5].ljust(5, "0")  # VDS: 5 + check digit
    return f"{wmi}{model}0{'ABCDEFGHJKLMNPRSTVWXY'[vehicle.definition.model_year % 21]}D{serial:06d}"


def free_or_any(port: int, host: str = "127.0.0.1") -> int:
    """``port`` if nothing listens on it, else 0 (any free port, which the demo prints)."""
    if port == 0:
        return 0
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return 0
    return port


def settings_from_file(path: Path) -> Settings:
    """A generated config exactly as written (the file's keys win over ``OPENSDV_*`` variables)."""
    with path.open("rb") as handle:
        return Settings(**tomllib.load(handle))


@dataclass
class DemoCar:
    """One demo car: its config file and its running vehicle process."""

    vehicle: Vehicle
    vin: str
    config: Path
    process: VehicleProcess
    task: asyncio.Task[None] | None = None

    @property
    def layout(self) -> VehicleLayout:
        return self.process.layout

    @property
    def cycle(self) -> str:
        return self.process.settings.vehicle.bus.simulated_cycle

    def token(self, scope: str, subject: str) -> str:
        """A token for this car's broker, signed with the car's key (as the app runtime gives each app one)."""
        return mint_token(self.layout.jwt_private_key.read_bytes(), scope, subject=subject)

    @classmethod
    def configure(
        cls, vehicle: Vehicle, vin: str, layout: VehicleLayout, *, port: int, mqtt_url: str | None, ota_url: str | None,
        cycle: str | None = None, apps_mqtt_address: str | None = None, app_environments_dir: Path | None = None,
    ) -> DemoCar:  # fmt: skip
        """Write the car's ``vehicle.toml`` (its bus simulated, its brand's demo cycle) and load it."""
        brand = vehicle.definition.brand
        faults = [name for name in vehicle.ecus if name.startswith("EAXLE_")] if brand == FAILING_BRAND else []
        config = layout.root / "vehicle.toml"
        config.write_text(
            starting_config(
                vin, vehicle.id, layout, bus=f"virtual:opensdv-demo-{vin}", simulate=True,
                broker_address=f"127.0.0.1:{free_or_any(port)}", mqtt_url=mqtt_url, ota_url=ota_url,
                simulated_cycle=cycle or DEMO_CYCLES.get(brand, "udds"), simulated_faults=faults, ota_period_s=1.0,
                enable_sdv_v1=True, apps_mqtt_address=apps_mqtt_address, app_environments_dir=app_environments_dir,
            )
        )  # fmt: skip
        return cls(vehicle, vin, config, VehicleProcess(settings_from_file(config)))
