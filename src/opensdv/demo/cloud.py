"""The demo's fleet cloud: the embedded MQTT broker, telemetry ingest into DuckDB, the REST API and
dashboard on http://127.0.0.1:8000, and one vehicle agent per demo car linking it to them.

Operators are created with fresh random secrets each run (printed by the CLI): ``platform`` sees
every brand and steers campaigns; ``nissan``, ``honda`` and ``mitsubishi`` see their own cars.

The demo runs as securely as a deployment: a fleet CA of its own gives every car and service its
identity, the link is mutual TLS with the link's access rules, and commands are signed and verified.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from opensdv.cloud.energy.site import ChargingSite
from opensdv.cloud.fleet.api import FleetCloud, create_api
from opensdv.cloud.fleet.commands import CommandSender
from opensdv.cloud.fleet.identities import FleetCa, RevokedSubjects
from opensdv.cloud.fleet.operators import PLATFORM, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.mqtt_broker import embedded_mqtt_broker
from opensdv.cloud.telemetry.ingest import Ingest
from opensdv.cloud.telemetry.store import TelemetryStore
from opensdv.demo.ota import DemoOta
from opensdv.demo.vehicles import DemoVehicle
from opensdv.link.fleet import VehicleStatus
from opensdv.link.mqtt import MqttConnector
from opensdv.link.signing import CommandSigner, CommandVerifier
from opensdv.vehicle.agent.agent import VehicleAgent
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from opensdv.vehicle.ota.primary import Primary
from opensdv.vehicle.safety import ActuationGuard

__all__ = ["DemoCloud", "start_demo_cloud"]


@dataclass
class DemoCloud:
    url: str
    mqtt_url: str
    store: TelemetryStore
    ingest: Ingest
    agents: dict[str, VehicleAgent]
    credentials: dict[str, str]
    stack: AsyncExitStack
    server: uvicorn.Server
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def stop(self) -> None:
        self.server.should_exit = True  # uvicorn shuts down cleanly (a cancel would log its lifespan)
        await asyncio.wait_for(self.tasks[0], 10)
        for task in self.tasks[1:]:
            task.cancel()
        await asyncio.gather(*self.tasks[1:], return_exceptions=True)
        await self.stack.aclose()
        self.store.close()


def _software(primary: Primary) -> dict[str, str]:
    return {serial.split("-", 1)[1]: ecu.slots.active_image.version for serial, ecu in primary.ecus.items()}


async def _report_software(ota: DemoOta, agents: dict[str, VehicleAgent], period_s: float = 1.0) -> None:
    """After an OTA install (or rollback) each car's status carries its new versions to the cloud."""
    while True:
        for vin, (_item, primary) in ota.vehicles.items():
            agents[vin].uplink.set_software(_software(primary))
        await asyncio.sleep(period_s)


def _command_key(ca: FleetCa, directory: Path) -> tuple[Path, Path]:
    ca.command_key(directory)
    return directory / "command-signer.key", directory / "command-signer.pem"


def _listener(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one) handed to uvicorn, so the URL is known before it runs."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.bind((host, 0))  # 8000 is taken: any free port, printed by the CLI
    sock.listen(64)
    return sock


async def start_demo_cloud(
    running: list[DemoVehicle],
    ota: DemoOta,
    directory: Path,
    http_port: int = 8000,
    sites: dict[str, ChargingSite] | None = None,
) -> DemoCloud:
    """Start the demo's cloud (embedded MQTT, ingest, API) and one agent per demo car."""
    stack = AsyncExitStack()
    ca = FleetCa.init(directory / "fleet-ca")
    services = directory / "identities"
    broker_identity = ca.provision_service("broker", services, hosts=("127.0.0.1", "localhost"))
    revoked = RevokedSubjects(ca.revoked_file)
    mqtt_url = await stack.enter_async_context(
        embedded_mqtt_broker(broker_identity, crl_file=ca.crl_file, revoked_file=ca.revoked_file)
    )
    store = TelemetryStore(directory / "telemetry.duckdb")
    ingest = Ingest(MqttConnector(mqtt_url, ca.provision_service("ingest", services)), store, revoked=revoked.current)
    operators = Operators(ota.backend.database, secrets.token_bytes(32))
    credentials = {}
    for name, tenant in (
        ("platform", PLATFORM),
        ("nissan", "Nissan"),
        ("honda", "Honda"),
        ("mitsubishi", "Mitsubishi"),
    ):
        credentials[name] = secrets.token_urlsafe(12)
        operators.add(name, credentials[name], tenant, can_command=True)
    signer = CommandSigner(*_command_key(ca, services))
    send_command = CommandSender(MqttConnector(mqtt_url, ca.provision_service("api", services)), signer)
    cloud = FleetCloud(
        VehicleRegistry(ota.backend.database), store, operators, send_command, ota.backend, sites or {}
    )
    sock = _listener("127.0.0.1", http_port)
    server = uvicorn.Server(uvicorn.Config(create_api(cloud), log_level="warning"))
    stack.callback(sock.close)
    agents = {}
    for item in running:
        _car, primary = ota.vehicles[item.vin]
        software = _software(primary)
        status = VehicleStatus(
            vin=item.vin, online=True, at=time.time(), brand=item.vehicle.definition.brand,
            model=item.vehicle.definition.model, software=software,
        )  # fmt: skip
        identity = ca.provision(item.vin, directory / "cars" / item.vin)
        uplink = Uplink(MqttConnector(mqtt_url, identity), status, Spool(directory / "spool" / f"{item.vin}.db"))
        verifier = CommandVerifier(item.vin, identity.ca_file, directory / "cars" / item.vin / "seen-commands.json")
        agent = VehicleAgent(item.broker, uplink, verifier=verifier)
        if isinstance(item.broker.guard, ActuationGuard):
            item.broker.guard.audit.add_listener(agent.audit)
        agents[item.vin] = agent
    demo = DemoCloud(
        f"http://127.0.0.1:{sock.getsockname()[1]}",
        mqtt_url,
        store,
        ingest,
        agents,
        credentials,
        stack,
        server,
    )
    demo.tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
    demo.tasks.append(asyncio.create_task(ingest.run()))
    demo.tasks += [asyncio.create_task(agent.run()) for agent in agents.values()]
    demo.tasks.append(asyncio.create_task(_report_software(ota, agents)))
    return demo
