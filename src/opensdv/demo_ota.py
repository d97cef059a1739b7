"""The demo's OTA part: an Uptane back end and one OTA client per demo vehicle.

At start the back end signs a new firmware for the standard e-axle inverters and opens a campaign
targeted by their hardware ids — so it reaches every brand at once — in two stages. One failure is
injected on purpose: the Mitsubishi's inverter fails its health check after the install, rolls
back to its old slot, and its report makes the campaign pause itself before stage 2. Vehicles only
install while stopped (their speed comes from their data broker, as in a real car).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.campaigns import CampaignProgress, CampaignSpec
from opensdv.demo import DemoVehicle
from opensdv.storage.database import Database
from opensdv.storage.registry import VehicleRegistry
from opensdv.vehicle.broker import ALLOW_ALL
from opensdv.vehicle.ota.primary import Primary, VehicleConditions
from opensdv.vehicle.ota.setup import EcuSpec, build_vehicle, ecu_key
from opensdv.vehicle.ota.transport import LocalTransport

__all__ = ["DEMO_CAMPAIGN", "DemoOta", "broker_conditions", "start_demo_ota"]

DEMO_IMAGE = "eaxle/inverter-2.4.0.bin"
DEMO_CAMPAIGN = "eaxle-inverter-2-4"
FAILING_BRAND = "Mitsubishi"  # the injected failure
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


def broker_conditions(item: DemoVehicle) -> VehicleConditions:
    """Parked = standing still; energy = state of charge x pack energy, read from the car's broker."""
    speed = item.broker.get(SPEED, ALLOW_ALL)
    soc = item.broker.get(SOC, ALLOW_ALL)
    moving = speed is not None and speed.value is not None and abs(float(speed.value)) > 0.5
    energy = item.vehicle.pack.energy_kwh * (float(soc.value) / 100 if soc and soc.value is not None else 0.0)
    return VehicleConditions(parked=not moving, battery_kwh=energy)


@dataclass
class DemoOta:
    backend: OtaBackend
    vehicles: dict[str, tuple[DemoVehicle, Primary]]
    conditions: Callable[[DemoVehicle], VehicleConditions]
    status: dict[str, str] = field(default_factory=dict)

    def inverter_version(self, vin: str) -> str:
        _item, primary = self.vehicles[vin]
        versions = {
            e.slots.active_image.version
            for s, e in primary.ecus.items()
            if s.split("-", 1)[1].startswith("EAXLE_")
        }
        return ", ".join(sorted(versions))

    def cycle(self, snapshots: dict[str, VehicleConditions]) -> None:
        """One update cycle per vehicle (blocking I/O: run it in a thread)."""
        for vin, (_item, primary) in self.vehicles.items():
            primary.conditions = _fixed(snapshots[vin])
            outcome = primary.update()
            primary.send_manifest()
            if outcome.status != "up-to-date" or vin not in self.status:
                codes = ", ".join(sorted(set(outcome.results.values())))
                self.status[vin] = f"{outcome.status}: {codes}" if outcome.results else outcome.status
                if outcome.detail and not outcome.results:
                    self.status[vin] += f" ({outcome.detail.removeprefix('the vehicle is ')})"

    async def run(self, period_s: float = 1.0) -> None:
        while True:
            snapshots = {vin: self.conditions(item) for vin, (item, _p) in self.vehicles.items()}
            await asyncio.to_thread(self.cycle, snapshots)
            await asyncio.sleep(period_s)

    def progress(self) -> CampaignProgress:
        return self.backend.campaigns.progress(DEMO_CAMPAIGN)


def _fixed(conditions: VehicleConditions) -> Callable[[], VehicleConditions]:
    return lambda: conditions


def _firmware(size: int = 256 * 1024) -> bytes:
    return random.Random("standard e-axle inverter firmware").randbytes(size)


def start_demo_ota(
    running: list[DemoVehicle],
    directory: Path,
    conditions: Callable[[DemoVehicle], VehicleConditions] = broker_conditions,
) -> DemoOta:
    """Back end, enrolled vehicles, the image and the campaign, all in ``directory``."""
    database = Database(f"sqlite:///{directory / 'ota.db'}")
    database.migrate()
    backend = OtaBackend(directory / "cloud", database)
    backend.initialise()
    registry = VehicleRegistry(database)
    director_root = (backend.path / "director" / "root" / "1.root.json").read_bytes()
    image_root = backend.images.repo.file("1.root.json").read_bytes()
    transport = LocalTransport(backend.read, backend.post)
    vehicles: dict[str, tuple[DemoVehicle, Primary]] = {}
    inverters: set[str] = set()
    for item in running:
        vehicle = item.vehicle
        registry.register(item.vin, vehicle, vehicle.definition.markets[0])
        ecus = [EcuSpec(name, f"{item.vin}-{name}", ecu.hardware_id) for name, ecu in vehicle.ecus.items()]
        inverters |= {e.hardware_id for e in ecus if e.name.startswith("EAXLE_")}
        storage = directory / "cars" / item.vin
        behaviour: dict[str, tuple[Callable[[bytes], bool], Callable[[bytes], bool]]] = {}
        if vehicle.definition.brand == FAILING_BRAND:
            behaviour = {
                e.name: (lambda _i: True, lambda _i: False) for e in ecus if e.name.startswith("EAXLE_")
            }
        keys = {e.name: ecu_key(storage / "ecus" / e.serial).public_key for e in ecus}
        backend.enrol(item.vin, keys, primary="TCU", rxswin=f"R156-{vehicle.id}-1")
        primary = build_vehicle(
            item.vin,
            ecus,
            "TCU",
            storage,
            director_root,
            image_root,
            transport,
            backend.clock,
            behaviour=behaviour,
        )
        primary.send_manifest()
        vehicles[item.vin] = (item, primary)
    backend.images.add_image(DEMO_IMAGE, _firmware(), sorted(inverters), "2.4.0", 24)
    backend.campaigns.create(
        CampaignSpec(
            id=DEMO_CAMPAIGN,
            image=DEMO_IMAGE,
            stages=[50, 100],
            error_threshold=0.2,
            mode="forced",
            energy_kwh=1.0,
            rxswin_after="R156-EAXLE-INV-24",
        )
    )
    return DemoOta(backend, vehicles, conditions)
