"""A whole OTA world for tests: a real back end (signed repositories, SQLite inventory) and
vehicles built from the shipped catalog, talking through a transport that tests may sit in."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn

from opensdv.cloud.fleet.identities import RevokedSubjects
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.mtls import server_config
from opensdv.cloud.ota.backend import OtaBackend
from opensdv.cloud.ota.server import create_app
from opensdv.demo.vehicles import demo_vin
from opensdv.model.vehicles import load_catalog
from opensdv.storage.database import Database
from opensdv.vehicle.ota.primary import Primary
from opensdv.vehicle.ota.setup import EcuSpec, build_vehicle, ecu_key
from opensdv.vehicle.ota.transport import LocalTransport, Transport
from tests.fleet_identities import Fleet

START = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
INVERTERS = ["KDS-INV-110-400-B", "KDS-INV-113-400-R", "HMW-INV-047-400-K"]


class Clock:
    """The trusted time, moved by the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def firmware(name: str, version: str, size: int = 64 * 1024) -> bytes:
    """A deterministic image: mostly shared between versions, like real firmware builds."""
    import random

    body = bytearray(random.Random(name).randbytes(size))
    body[1000 : 1000 + len(version)] = version.encode()
    return bytes(body)


@dataclass
class World:
    path: Path
    clock: Clock
    backend: OtaBackend
    registry: VehicleRegistry
    vehicles: dict[str, Primary] = field(default_factory=dict)
    definitions: dict[str, str] = field(default_factory=dict)
    full_verification: set[str] = field(default_factory=set)  # ECU names that verify fully

    def transport(self) -> LocalTransport:
        return LocalTransport(self.backend.read, self.backend.post)

    def ecus(self, vin: str) -> list[EcuSpec]:
        vehicle = load_catalog().vehicle(self.definitions[vin])
        return [
            EcuSpec(name, f"{vin}-{name}", ecu.hardware_id, name in self.full_verification)
            for name, ecu in vehicle.ecus.items()
        ]

    def add_vehicle(self, definition: str, serial: int, **options: object) -> str:
        catalog = load_catalog()
        vehicle = catalog.vehicle(definition)
        vin = demo_vin(vehicle, serial)
        self.definitions[vin] = definition
        self.registry.register(vin, vehicle, vehicle.definition.markets[0])
        self.vehicles[vin] = self.open(vin, **options)
        keys = {
            e.name: ecu_key(self.path / "cars" / vin / "ecus" / e.serial).public_key for e in self.ecus(vin)
        }
        self.backend.enrol(vin, keys, primary="TCU", rxswin=f"R156-{definition}-1")
        self.vehicles[vin].send_manifest()
        return vin

    def open(self, vin: str, transport: Transport | None = None, **options: object) -> Primary:
        """The vehicle's OTA stack as it comes up after a (re)start."""
        roots = (
            (self.backend.path / "director" / "root" / "1.root.json").read_bytes(),
            (self.backend.path / "image" / "metadata" / "1.root.json").read_bytes(),
        )
        return build_vehicle(
            vin,
            self.ecus(vin),
            "TCU",
            self.path / "cars" / vin,
            *roots,
            transport or self.transport(),
            self.clock,
            **options,  # type: ignore[arg-type]
        )

    def add_image(self, name: str, version: str, counter: int, hardware: list[str] | None = None) -> bytes:
        data = firmware(name.split("-")[0], version)
        self.backend.images.add_image(name, data, hardware or INVERTERS, version, counter)
        return data


def make_world(path: Path, clock: Clock | None = None) -> World:
    clock = clock or Clock()
    database = Database(f"sqlite:///{path / 'ota.db'}")
    database.migrate()
    backend = OtaBackend(path / "cloud", database, clock)
    backend.initialise()
    return World(path, clock, backend, VehicleRegistry(database))


def installed(primary: Primary, ecu_name: str) -> str:
    ecu = next(e for s, e in primary.ecus.items() if s.endswith(f"-{ecu_name}"))
    return ecu.slots.active_image.filename


Check = Callable[[bytes], bool]


@contextmanager
def served_over_tls(backend: OtaBackend, fleet: Fleet) -> Iterator[str]:
    """The back end over real HTTPS (uvicorn, the ``opensdv-ota`` identity, client certificates
    of ``fleet`` required, its revocations followed): the base URL."""
    identity = fleet.ca.provision_service("ota", fleet.directory / "ota-service", hosts=("127.0.0.1",))
    revoked = RevokedSubjects(fleet.ca.revoked_file, recheck_s=0)
    app = create_app(backend, revoked.current)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # listening before the thread starts: early requests wait in the backlog
    server = uvicorn.Server(server_config(app, identity.server_context(fleet.ca.crl_file)))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
