"""The demo's OTA part: an Uptane back end and one OTA client per demo vehicle.

At start the back end signs an app set with the departure-charge example app for every car's
app runtime (the ``APPS`` ECU), and a new firmware for the standard e-axle inverters and opens a campaign
targeted by their hardware ids — so it reaches every brand at once — in two stages. One failure is
injected on purpose: the Mitsubishi's inverter fails its health check after the install, rolls
back to its old slot, and its report makes the campaign pause itself before stage 2. Vehicles only
install while stopped (their speed comes from their data broker, as in a real car).
"""

from __future__ import annotations

import asyncio
import functools
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.campaigns import CampaignProgress, CampaignSpec
from opensdv.demo.vehicles import DemoVehicle
from opensdv.model.vehicles import APP_RUNTIME_HARDWARE_ID, Vehicle
from opensdv.programs import to_thread_to_the_end
from opensdv.storage.database import Database
from opensdv.vehicle.apps.errors import AppError
from opensdv.vehicle.apps.examples import EXAMPLES
from opensdv.vehicle.apps.package import app_set, check_app_set
from opensdv.vehicle.apps.runtime import AppRuntime
from opensdv.vehicle.broker import Permissions
from opensdv.vehicle.ota.primary import Primary, VehicleConditions
from opensdv.vehicle.ota.setup import EcuSpec, build_vehicle, ecu_key
from opensdv.vehicle.ota.transport import LocalTransport

__all__ = ["APP_CAMPAIGN", "DEMO_CAMPAIGN", "DemoOta", "broker_conditions", "start_demo_ota"]

DEMO_IMAGE = "eaxle/inverter-2.4.0.bin"
DEMO_CAMPAIGN = "eaxle-inverter-2-4"
DEMO_APP = "departure-charge"
DEMO_APP_SET = "apps/app-set-1.0.0.tar.gz"
APP_CAMPAIGN = "apps-departure-charge"
FAILING_BRAND = "Mitsubishi"  # the injected failure
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"


OTA_CONDITIONS = Permissions.from_scope(f"read:{SPEED} read:{SOC}", subject="ota-primary")


def broker_conditions(item: DemoVehicle) -> VehicleConditions:
    """Parked = standing still; energy = state of charge x pack energy, read from the car's broker."""
    speed = item.broker.get(SPEED, OTA_CONDITIONS)
    soc = item.broker.get(SOC, OTA_CONDITIONS)
    moving = speed is not None and speed.value is not None and abs(float(speed.value)) > 0.5
    energy = item.vehicle.pack.energy_kwh * (float(soc.value) / 100 if soc and soc.value is not None else 0.0)
    return VehicleConditions(parked=not moving, battery_kwh=energy)


@dataclass
class DemoOta:
    backend: OtaBackend
    vehicles: dict[str, tuple[DemoVehicle, Primary]]
    conditions: Callable[[DemoVehicle], VehicleConditions]
    runtimes: dict[str, AppRuntime]
    app_dir: Path
    status: dict[str, str] = field(default_factory=dict)
    _app_sets: dict[str, str] = field(default_factory=dict)  # VIN -> sha256 of the set running

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

    async def sync_apps(self) -> None:
        """Each car's runtime runs the app set its APPS ECU has active (after an install or rollback)."""
        for vin, (_item, primary) in self.vehicles.items():
            apps = primary.ecus[f"{vin}-APPS"].slots
            digest = apps.active_image.hashes["sha256"]
            if self._app_sets.get(vin) != digest:
                await self.runtimes[vin].apply_set(apps.read(apps.state.active), self.app_dir / vin)
                self._app_sets[vin] = digest

    def apps(self, vin: str) -> str:
        return ", ".join(f"{s.name} ({s.state})" for s in self.runtimes[vin].statuses()) or "-"

    async def run(self, period_s: float = 1.0) -> None:
        try:
            while True:
                snapshots = {vin: self.conditions(item) for vin, (item, _p) in self.vehicles.items()}
                await to_thread_to_the_end(functools.partial(self.cycle, snapshots))
                await self.sync_apps()
                await asyncio.sleep(period_s)
        finally:
            for runtime in self.runtimes.values():
                await runtime.stop_all()

    def progress(self) -> CampaignProgress:
        return self.backend.campaigns.progress(DEMO_CAMPAIGN)


def _always(_image: bytes) -> bool:
    return True


def _never(_image: bytes) -> bool:
    return False


def _app_set_check(vehicle: Vehicle, scratch: Path) -> Callable[[bytes], bool]:
    """The APPS ECU's health check: every app of the set loads and this car can run it."""

    def healthy(data: bytes) -> bool:
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            check_app_set(data, scratch, vehicle)
        except AppError:
            return False
        return True

    return healthy


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
    runtimes: dict[str, AppRuntime] = {}
    inverters: set[str] = set()
    for item in running:
        vehicle = item.vehicle
        registry.register(item.vin, vehicle, vehicle.definition.markets[0])
        ecus = [EcuSpec(name, f"{item.vin}-{name}", ecu.hardware_id) for name, ecu in vehicle.ecus.items()]
        inverters |= {e.hardware_id for e in ecus if e.name.startswith("EAXLE_")}
        storage = directory / "cars" / item.vin
        behaviour: dict[str, tuple[Callable[[bytes], bool], Callable[[bytes], bool]]] = {
            "APPS": (_always, _app_set_check(vehicle, storage / "app-check"))
        }
        if vehicle.definition.brand == FAILING_BRAND:
            behaviour |= {e.name: (_always, _never) for e in ecus if e.name.startswith("EAXLE_")}
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
        runtimes[item.vin] = AppRuntime(vehicle, item.server.target, item.token_key, storage / "app-logs")
    backend.images.add_image(DEMO_IMAGE, _firmware(), sorted(inverters), "2.4.0", 24)
    backend.images.add_image(
        DEMO_APP_SET, app_set([EXAMPLES / DEMO_APP]), [APP_RUNTIME_HARDWARE_ID], "1.0.0", 1
    )
    backend.campaigns.create(CampaignSpec(id=APP_CAMPAIGN, image=DEMO_APP_SET, stages=[100], mode="forced"))
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
    return DemoOta(backend, vehicles, conditions, runtimes, directory / "apps")
