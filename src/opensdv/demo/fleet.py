"""The demo, composed: one ``cloud run`` (``CloudProcess``: API and dashboard, ingest, OTA, CSMS) and
one ``vehicle run`` (``VehicleProcess``) per demo car, as tasks of this process, from ``cloud.toml``
and ``vehicle.toml`` files written under the demo's directory the way an operator writes them.

What the demo adds is simulation only: an embedded MQTT broker standing in for Mosquitto (mutual
TLS, the link's access rules, the fleet CA's revocations), twins driving each car's virtual bus,
and simulated charging stations at the depot. The shipped data collection campaign (cruise-control
disengagements above 80 km/h) is created for every car, as an operator would create it. Provisioning uses the functions the ``opensdv fleet``,
``ota enrol`` and ``cloud operator add`` commands call: a fleet CA of its own gives every car and
service its identity, commands are signed and verified, every car's broker checks tokens.

Operators get fresh random secrets each run: ``platform`` sees every brand and steers campaigns;
``nissan``, ``honda`` and ``mitsubishi`` see their own cars.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from opensdv.cloud.energy.ocpp.credentials import StationCredentials
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.fleet.operators import PLATFORM, Operators
from opensdv.cloud.fleet.registry import VehicleRegistry
from opensdv.cloud.mqtt_broker import embedded_mqtt_broker
from opensdv.cloud.process import CloudProcess, token_key
from opensdv.demo.energy import DemoSite, depot_stations, provision_depot, start_demo_site
from opensdv.demo.ota import publish_demo_updates
from opensdv.demo.vehicles import DemoCar, demo_vin, free_or_any, settings_from_file
from opensdv.model.vehicles import Vehicle
from opensdv.programs import cancel_and_wait
from opensdv.storage import Database
from opensdv.vehicle.apps.bus import in_car_mqtt_broker
from opensdv.vehicle.process import PRIMARY_ECU, VehicleLayout
from opensdv.vehicle.provision import ecu_public_keys, initialise_vehicle

__all__ = ["EXAMPLE_CAMPAIGN_FILE", "OPERATORS", "Demo", "start_demo"]

EXAMPLE_CAMPAIGN_FILE = "cruise-disengagements.yaml"
OPERATORS = {"platform": PLATFORM, "nissan": "Nissan", "honda": "Honda", "mitsubishi": "Mitsubishi"}


log = logging.getLogger(__name__)


@dataclass
class Demo:
    directory: Path
    cloud: CloudProcess
    cars: list[DemoCar]
    credentials: dict[str, str]  # operator -> secret, this run only
    mqtt_url: str
    stop_event: asyncio.Event
    stack: AsyncExitStack
    site: DemoSite | None = None
    cloud_task: asyncio.Task[None] | None = None
    apps_mqtt_url: str | None = None  # the cars' in-car MQTT (Velocitas apps), when they run one

    @property
    def url(self) -> str:
        return self.cloud.addresses["api"]

    def car(self, vehicle_id: str) -> DemoCar:
        return next(car for car in self.cars if car.vehicle.id == vehicle_id)

    async def stop(self, timeout_s: float = 60.0) -> None:
        """Stations first, then the cars (their spools written), the cloud, the broker. A part that
        has not stopped within ``timeout_s`` is logged with where it waits, then cancelled: the demo
        always ends."""
        if self.site is not None:
            await self.site.stop()
        self.stop_event.set()
        await _stopped([car.task for car in self.cars if car.task is not None], timeout_s)
        if self.cloud_task is not None:
            await _stopped([self.cloud_task], timeout_s)
        await self.stack.aclose()
        runner = self.cloud.ota_backend().campaigns.runner
        if self.cloud.settings.cloud.ray_address == "local" and runner is not None:
            runner.shutdown()  # the local Ray this demo started


async def _stopped(tasks: list[asyncio.Task[None]], timeout_s: float) -> None:
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        where = io.StringIO()
        task.print_stack(limit=20, file=where)
        log.error("demo: %s did not stop within %g s; it waits at:\n%s", task.get_name(), timeout_s, where.getvalue())
    await cancel_and_wait(tasks)


def _cloud_config(directory: Path, mqtt_url: str, http_port: int, stations: list[str], ray: bool) -> Path:
    config = directory / "cloud.toml"
    config.write_text(
        f'# opensdv cloud run --config {config}\ndata_dir = "{directory / "cloud"}"\n\n[cloud]\n'
        f'mqtt_url = "{mqtt_url}"\napi_port = {free_or_any(http_port)}\nota_port = 0\ncsms_port = 0\nops_port = 0\n'
        f"stations = {stations!r}\n".replace("'", '"') + ('ray_address = "local"\n' if ray else "")
    )
    return config


def _operators(cloud: CloudProcess) -> dict[str, str]:
    """The demo's operators, as ``opensdv cloud operator add NAME --tenant T --can-command --generate``."""
    settings = cloud.settings
    database = Database(settings.effective_database_url)
    database.migrate()
    operators = Operators(database, token_key(settings.data_dir))
    credentials = {}
    for name, tenant in OPERATORS.items():
        credentials[name] = secrets.token_urlsafe(12)
        operators.add(name, credentials[name], tenant, can_command=True)
    return credentials


def _enrol(
    cloud: CloudProcess, ca: FleetCa, vehicles: list[Vehicle], cars_dir: Path, velocitas: bool
) -> dict[str, VehicleLayout]:
    """Each car's keys, fleet identity and OTA enrolment (``vehicle init``, ``fleet provision``, ``ota enrol``)."""
    backend = cloud.ota_backend()
    registry = VehicleRegistry(backend.database)
    layouts = {}
    for serial, vehicle in enumerate(vehicles, start=1):
        vin = demo_vin(vehicle, serial)
        layout = layouts[vin] = VehicleLayout(cars_dir / vin)
        initialise_vehicle(vin, vehicle, layout)
        ca.provision(vin, layout.link)
        registry.register(vin, vehicle, vehicle.definition.markets[0])
        backend.enrol(vin, ecu_public_keys(vin, vehicle, layout.ota), PRIMARY_ECU, rxswin=f"R156-{vehicle.id}-1")
        layout.trust(*backend.trusted_roots())
    publish_demo_updates(backend, vehicles, velocitas=velocitas)
    return layouts


async def _started(event: asyncio.Event, task: asyncio.Task[None], what: str, timeout_s: float = 60) -> None:
    """Until ``event`` is set; if ``task`` ends first its error is raised (a port taken, a bad key)."""
    waiting = asyncio.create_task(event.wait())
    done, _ = await asyncio.wait({waiting, task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task in done:
        task.result()
        raise RuntimeError(f"{what} stopped while starting")
    if waiting not in done:
        raise TimeoutError(f"{what} did not start within {timeout_s:g} s")


async def start_demo(
    directory: Path,
    vehicles: list[Vehicle],
    *,
    base_port: int = 55555,
    http_port: int = 8000,
    cycle: str | None = None,
    tick_s: float = 2.0,
    velocitas: bool = False,
    ray: bool = False,
) -> Demo:
    """Provision, configure and start the cloud and every car under ``directory``; ``cycle``
    overrides every car's drive cycle (``parked``: they stand still, so they install at once);
    ``velocitas`` adds Velocitas's seat-adjuster to the cars' apps (its SDK from PyPI, built once
    for all cars) and the cars' in-car MQTT (``Demo.apps_mqtt_url``); ``ray``: the cloud's fleet
    jobs (the OTA campaigns' signing) on a local Ray, as ``cloud.ray_address = "local"`` does."""
    stack = AsyncExitStack()
    ca = FleetCa.init(directory / "fleet-ca")
    identities = directory / "cloud" / "identities"
    broker_identity = ca.provision_service("broker", directory / "broker", hosts=("127.0.0.1", "localhost"))
    for role in ("ingest", "api"):
        ca.provision_service(role, identities)
    for role in ("ota", "energy"):  # HTTPS and WSS listeners: their certificates name the host
        ca.provision_service(role, identities, hosts=("127.0.0.1", "localhost"))
    ca.command_key(identities)
    ca.publish(identities)
    demo: Demo | None = None
    try:
        mqtt_url = await stack.enter_async_context(
            embedded_mqtt_broker(broker_identity, crl_file=ca.crl_file, revoked_file=ca.revoked_file)
        )
        apps_mqtt = await stack.enter_async_context(in_car_mqtt_broker()) if velocitas else None
        stations = depot_stations(len(vehicles))
        cloud = CloudProcess(settings_from_file(_cloud_config(directory, mqtt_url, http_port, stations, ray)))
        demo = Demo(directory, cloud, [], _operators(cloud), mqtt_url, asyncio.Event(), stack, apps_mqtt_url=apps_mqtt)
        layouts = _enrol(cloud, ca, vehicles, directory / "cars", velocitas)
        logins = provision_depot(ca, StationCredentials(cloud.database()), stations, directory / "stations")
        demo.cloud_task = asyncio.create_task(cloud.run(demo.stop_event), name="the cloud")
        await _started(cloud.started, demo.cloud_task, "the cloud")
        for index, (vehicle, (vin, layout)) in enumerate(zip(vehicles, layouts.items(), strict=True)):
            car = DemoCar.configure(
                vehicle, vin, layout, port=base_port + index if base_port else 0, mqtt_url=mqtt_url,
                ota_url=cloud.addresses["ota"], cycle=cycle, apps_mqtt_address=apps_mqtt,
                app_environments_dir=directory / "app-environments",  # one build for every car
            )  # fmt: skip
            demo.cars.append(car)
            car.task = asyncio.create_task(car.process.run(demo.stop_event), name=f"vehicle {vin}")
            await _started(car.process.started, car.task, f"vehicle {vin}")
        await _until_fed(demo.cars)
        await _start_example_campaign(cloud)
        demo.site = await start_demo_site(demo.cars, cloud.csms, cloud.addresses["energy"], logins, tick_s)
        cloud.sites["depot"] = demo.site.site
    except BaseException:
        with contextlib.suppress(Exception):
            await (demo.stop() if demo is not None else stack.aclose())
        raise
    return demo


async def _start_example_campaign(cloud: CloudProcess) -> None:
    """The shipped "cruise-control disengagements above 80 km/h" for every car, as the platform
    operator creates it through the API (``opensdv data campaign create``)."""
    from importlib import resources

    from opensdv.cloud.fleet.operators import Operator
    from opensdv.model._files import read_document
    from opensdv.model.campaigns import parse_campaign

    with resources.as_file(resources.files("opensdv.model") / "data" / "campaigns" / EXAMPLE_CAMPAIGN_FILE) as file:
        campaign = parse_campaign(read_document(file), str(file))
    await cloud.data_campaigns.create(campaign, Operator("platform", PLATFORM, can_command=True))


async def _until_fed(cars: list[DemoCar], timeout_s: float = 10.0) -> None:
    """Wait (bounded) until every car's first frames reached its broker."""

    async def fed(car: DemoCar) -> None:
        feeder = car.process.feeder
        await car.process.broker.changed.wait_until(lambda: feeder is None or feeder.stats.updates > 0)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(fed(car) for car in cars))
