"""``opensdv vehicle run``: one car's platform on its computer, from its settings.

It runs the data broker (TLS/mTLS and JWT as configured, its values kept in a state file), the
brand adapter's feeder on the car's bus (any python-can interface, a log replay, or a virtual bus a
twin drives), the safety guard on every actuation, the cloud agent (uplink and spool), the Uptane
primary with its secondaries, and the app runtime running the app set the APPS ECU has installed.

Everything it keeps lives under ``state_dir`` (see ``VehicleLayout``), so a restart resumes: the
spool's unconfirmed telemetry, the A/B slots, the broker's last values, the installed apps. SIGTERM
stops it cleanly (an OTA install under way finishes first; the spool and the state file are
written). It writes a health file a supervisor can watch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import can

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.config import Settings
from opensdv.durable import write_atomically
from opensdv.errors import OpenSDVError
from opensdv.link.fleet import VehicleStatus
from opensdv.link.identity import IdentityFiles
from opensdv.link.mqtt import MqttConnector
from opensdv.link.signing import CommandVerifier
from opensdv.model._files import CatalogError
from opensdv.model.vehicles import Vehicle, load_catalog
from opensdv.model.vss import load_default_vss, load_vss
from opensdv.programs import cancel_and_wait, to_thread_to_the_end
from opensdv.vehicle.agent.agent import VehicleAgent
from opensdv.vehicle.agent.campaign_set import CarFacts, CloudCampaigns
from opensdv.vehicle.agent.campaigns import CampaignEngine, feed_campaigns, load_campaign_files, record_sender
from opensdv.vehicle.agent.spool import Spool
from opensdv.vehicle.agent.uplink import Uplink
from opensdv.vehicle.attributes import vehicle_attributes
from opensdv.vehicle.broker import (
    Broker,
    BrokerServer,
    Permissions,
    StateFile,
    server_from_settings,
    vehicle_source,
    viss_from_settings,
)
from opensdv.vehicle.can import (
    Adapter,
    BrokerSink,
    EcuSimulator,
    Feeder,
    bus_frames,
    load_mapping,
    log_frames,
)
from opensdv.vehicle.safety import ActuationGuard, load_policy
from opensdv.vehicle.twin import TwinRuntime, drive_bus

__all__ = ["PRIMARY_ECU", "VehicleLayout", "VehicleProcess", "VehicleProcessError"]

log = logging.getLogger("opensdv.vehicle")
Job = Callable[[], Coroutine[Any, Any, object]]
PRIMARY_ECU = "TCU"  # the ECU that talks to the cloud: the Uptane primary
SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
# each part of the process calls the broker with its own scope (least privilege in the car too)
ATTRIBUTES = Permissions.from_scope("provide:data", subject="vehicle-attributes")
FEEDER = vehicle_source("provide", subject="can-feeder")  # provides, actuates nothing; the guard believes it
OTA_CONDITIONS = Permissions.from_scope(f"read:{SPEED} read:{SOC}", subject="ota-primary")


class VehicleProcessError(OpenSDVError):
    """The vehicle's settings or provisioning do not allow it to start (the message says which)."""


@dataclass(frozen=True)
class VehicleLayout:
    """Where one car keeps its state, under one directory."""

    root: Path

    @property
    def spool(self) -> Path:
        return self.root / "spool.db"

    @property
    def broker_state(self) -> Path:
        return self.root / "broker-state.json"

    @property
    def jwt_private_key(self) -> Path:
        return self.root / "keys" / "broker-jwt.pem"

    @property
    def jwt_public_key(self) -> Path:
        return self.root / "keys" / "broker-jwt.pub"

    @property
    def link(self) -> Path:
        """The car's identity on the fleet link (``opensdv fleet provision`` writes it)."""
        return self.root / "link"

    @property
    def link_identity(self) -> IdentityFiles:
        return IdentityFiles.under(self.link, "vehicle")

    @property
    def seen_commands(self) -> Path:
        return self.link / "seen-commands.json"

    @property
    def cloud_campaigns(self) -> Path:
        return self.link / "campaigns.json"

    @property
    def ota(self) -> Path:
        return self.root / "ota"

    @property
    def director_root(self) -> Path:
        return self.ota / "director-root.json"

    @property
    def image_root(self) -> Path:
        return self.ota / "image-root.json"

    def trust(self, director_root: bytes, image_root: bytes) -> None:
        """Keep the OTA repositories' first roots, given at enrolment (``opensdv ota enrol``)."""
        write_atomically(self.director_root, director_root)
        write_atomically(self.image_root, image_root)

    @property
    def apps(self) -> Path:
        return self.root / "apps"

    @property
    def health(self) -> Path:
        return self.root / "health.json"


def resolve_vehicle(settings: Settings) -> tuple[str, Vehicle, VehicleLayout]:
    """The VIN, the catalog's vehicle and the state layout the settings name (errors name the key)."""
    config = settings.vehicle
    if config.vin is None:
        raise VehicleProcessError("vehicle.vin is not set (opensdv vehicle init writes it)")
    if config.model is None:
        raise VehicleProcessError("vehicle.model is not set (a vehicle id: opensdv vehicles list)")
    vehicle = load_catalog(settings.catalog).vehicle(config.model)  # CatalogError names an unknown one
    root = config.state_dir or settings.data_dir / "vehicle" / config.vin
    return config.vin, vehicle, VehicleLayout(root)


@dataclass
class VehicleProcess:
    settings: Settings
    clock: Clock = SYSTEM_CLOCK
    vin: str = field(init=False)
    vehicle: Vehicle = field(init=False)
    layout: VehicleLayout = field(init=False)
    broker: Broker = field(init=False)
    server: BrokerServer = field(init=False)
    feeder: Feeder | None = field(init=False, default=None)
    agent: VehicleAgent | None = field(init=False, default=None)
    ota_status: str = field(init=False, default="off")
    started: asyncio.Event = field(init=False, default_factory=asyncio.Event)  # the broker serves
    _buses: list[can.BusABC] = field(init=False, default_factory=list)
    _ota: Any = field(init=False, default=None)
    _ota_transport: Any = field(init=False, default=None)
    _apps: Any = field(init=False, default=None)
    _app_set: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.vin, self.vehicle, self.layout = resolve_vehicle(self.settings)
        if unknown := sorted(set(self.settings.vehicle.simulated_faults) - set(self.vehicle.ecus)):
            raise VehicleProcessError(
                f"vehicle.simulated_faults: {', '.join(unknown)} is not an ECU of {self.vehicle.id} "
                f"(its ECUs: {', '.join(sorted(self.vehicle.ecus))})"
            )

    # ------------------------------------------------------------------------------ start-up

    def _start_broker(self) -> StateFile:
        catalog = load_vss(*self.settings.vss) if self.settings.vss else load_default_vss()
        config = self.settings.broker
        self.broker = Broker(
            catalog, stale_after=config.stale_after_s, guard=ActuationGuard(load_policy(), time.time),
            max_subscriptions=config.max_subscriptions, max_subscriptions_per_client=config.max_subscriptions_per_client,
        )  # fmt: skip
        state = StateFile(self.settings.broker.state_file or self.layout.broker_state, self.broker)
        for note in state.load():
            log.warning("state file: skipped %s", note)
        self.broker.publish(vehicle_attributes(self.vehicle, self.vin), ATTRIBUTES)
        self.server = server_from_settings(self.broker, self.settings.broker)
        self.viss = viss_from_settings(self.broker, self.settings.broker)
        return state

    def _bus_tasks(self) -> list[Job]:
        """The feeder on the car's bus (and, when simulating, a twin driving the brand's ECUs)."""
        mapping = self.vehicle.definition.can_adapter
        if mapping is None:
            return []
        bus_config = self.settings.vehicle.bus
        adapter = Adapter(load_mapping(mapping), self.broker.catalog)
        self.feeder = feeder = Feeder(adapter)
        sink = BrokerSink(self.broker, FEEDER)
        if bus_config.log_file is not None:
            return [lambda: feeder.run(log_frames(bus_config.log_file), sink)]  # type: ignore[arg-type]
        if bus_config.simulate and bus_config.interface != "virtual":
            raise VehicleProcessError("vehicle.bus.simulate needs vehicle.bus.interface = 'virtual'")
        try:
            bus = can.Bus(interface=bus_config.interface, channel=bus_config.channel, receive_own_messages=False)
        except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as exc:
            raise VehicleProcessError(
                f"vehicle.bus: cannot open {bus_config.interface}:{bus_config.channel}: {exc}"
            ) from None
        self._buses.append(bus)
        tasks: list[Job] = [lambda: feeder.run(bus_frames(bus), sink, bus=bus)]
        if bus_config.simulate:
            ecus = can.Bus(interface="virtual", channel=bus_config.channel)
            self._buses.append(ecus)
            twin = TwinRuntime(self.vehicle, bus_config.simulated_cycle, start_s=200.0)
            tasks.append(lambda: drive_bus(twin, ecus, EcuSimulator(adapter), clock=self.clock))
        return tasks

    def _start_agent(self) -> VehicleAgent | None:
        url = self.settings.vehicle.mqtt_url
        if url is None:
            return None
        status = VehicleStatus(
            vin=self.vin, online=True, at=self.clock.time(), brand=self.vehicle.definition.brand,
            model=self.vehicle.definition.model, software=self.software(),
        )  # fmt: skip
        identity = self.layout.link_identity
        if missing := identity.missing():
            raise VehicleProcessError(
                f"vehicle.mqtt_url is set but {missing[0]} is missing: provision the car first "
                f"(opensdv fleet provision {self.vin} --vehicle-dir {self.layout.root})"
            )
        verifier = CommandVerifier(self.vin, identity.ca_file, self.layout.seen_commands, clock=self.clock)
        uplink = Uplink(MqttConnector(url, identity), status, Spool(self.layout.spool), clock=self.clock)
        agent = VehicleAgent(
            self.broker, uplink, batch_s=self.settings.vehicle.telemetry_period_s, clock=self.clock, verifier=verifier
        )  # fmt: skip
        guard = self.broker.guard
        if isinstance(guard, ActuationGuard):
            guard.audit.add_listener(agent.audit)
        return agent

    def _start_ota(self) -> None:
        """The Uptane primary and its secondaries, if the car was enrolled (``opensdv ota enrol``)."""
        url = self.settings.vehicle.ota_url
        if url is None:
            return
        if not (self.layout.director_root.exists() and self.layout.image_root.exists()):
            raise VehicleProcessError(
                f"vehicle.ota_url is set but {self.layout.ota} holds no trusted roots: "
                f"enrol the car first (opensdv ota enrol {self.vin} --vehicle-dir {self.layout.root})"
            )
        identity = self.layout.link_identity
        if missing := identity.missing():
            raise VehicleProcessError(
                f"vehicle.ota_url is set but {missing[0]} is missing: the OTA back end knows the car by its "
                f"fleet certificate (opensdv fleet provision {self.vin} --vehicle-dir {self.layout.root})"
            )
        from opensdv.vehicle.ota.primary import VehicleConditions
        from opensdv.vehicle.ota.setup import build_vehicle
        from opensdv.vehicle.ota.transport import HttpTransport

        def conditions() -> VehicleConditions:
            speed, soc = self.broker.get(SPEED, OTA_CONDITIONS), self.broker.get(SOC, OTA_CONDITIONS)
            moving = speed is not None and speed.value is not None and abs(float(speed.value)) > 0.5
            level = float(soc.value) / 100 if soc is not None and soc.value is not None else 0.0
            return VehicleConditions(parked=not moving, battery_kwh=self.vehicle.pack.energy_kwh * level)

        self._ota_transport = HttpTransport(url, tls=identity.client_context())
        self._ota = build_vehicle(
            self.vin,
            ecu_specs(self.vin, self.vehicle),
            PRIMARY_ECU,
            self.layout.ota,
            self.layout.director_root.read_bytes(),
            self.layout.image_root.read_bytes(),
            self._ota_transport,
            lambda: datetime.fromtimestamp(self.clock.time(), UTC),
            conditions=conditions,
            behaviour=self._ecu_behaviour(),
        )
        self._ota.resume()  # an install a crash or power cut interrupted is finished or rolled back
        self.ota_status = "enrolled"

    def _ecu_behaviour(self) -> dict[str, tuple[Callable[[bytes], bool], Callable[[bytes], bool]]]:
        """How the in-process secondaries judge an install: the APPS ECU keeps an app set only if
        every app of it loads and this car can run it; a simulated fault fails its health check."""
        from opensdv.vehicle.apps.errors import AppError
        from opensdv.vehicle.apps.package import check_app_set

        def always(_image: bytes) -> bool:
            return True

        def never(_image: bytes) -> bool:
            return False

        def app_set_loads(image: bytes) -> bool:
            scratch = self.layout.root / "app-check"
            shutil.rmtree(scratch, ignore_errors=True)
            try:
                check_app_set(image, scratch, self.vehicle)
            except AppError as exc:
                log.warning("OTA: the app set fails its check: %s", exc)
                return False
            return True

        behaviour = {"APPS": (always, app_set_loads)}
        return behaviour | dict.fromkeys(self.settings.vehicle.simulated_faults, (always, never))

    def software(self) -> dict[str, str]:
        """ECU name -> the version of its active image (empty while the car is not enrolled)."""
        if self._ota is None:
            return {}
        return {s.split("-", 1)[1]: ecu.slots.active_image.version for s, ecu in self._ota.ecus.items()}

    def app_statuses(self) -> list[Any]:
        """The app runtime's view of each app of the installed set (empty before one is installed)."""
        return [] if self._apps is None else list(self._apps.statuses())

    # ------------------------------------------------------------------------------ running

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop every part in order."""
        state = self._start_broker()
        self._start_ota()
        self.agent = self._start_agent()
        self.campaigns, self.cloud_campaigns = self._start_campaigns()
        bus_jobs = self._bus_tasks()
        await self.server.start()
        if self.viss is not None:
            await self.viss.start()
        self.started.set()
        log.info("vehicle %s (%s): broker on %s", self.vin, self.vehicle.id, self.server.target)
        tasks = [asyncio.create_task(job()) for job in bus_jobs]
        tasks.append(asyncio.create_task(state.run()))
        if self.agent is not None:
            tasks.append(asyncio.create_task(self.agent.run()))
            if self.campaigns is not None and self.cloud_campaigns is not None:
                cloud = self.cloud_campaigns
                feed = feed_campaigns(self.broker, self.campaigns, self.clock, cloud.changed, cloud.refresh)
                tasks.append(asyncio.create_task(feed))
        if self._ota is not None:
            tasks.append(asyncio.create_task(self._update_every(self.settings.vehicle.ota_period_s)))
        tasks.append(asyncio.create_task(self._report_health(self.settings.vehicle.health_period_s)))
        try:
            await stop.wait()
        finally:
            for task in reversed(tasks):  # health, OTA (an install finishes), agent, state, bus
                await cancel_and_wait([task])
            if self._apps is not None:
                await self._apps.stop_all()
            if self.viss is not None:
                await self.viss.stop()
            await self.server.stop()
            for bus in self._buses:
                bus.shutdown()
            self._write_health(running=False)
            if self.agent is not None:
                self.agent.uplink.spool.close()
            if self._ota_transport is not None:
                self._ota_transport.close()  # its kept-alive TLS connections, which the server would wait on
            log.info("vehicle %s stopped", self.vin)

    def _start_campaigns(self) -> tuple[CampaignEngine | None, CloudCampaigns | None]:
        """The campaign engine on the agent's link: the settings' campaign files (checked against
        the car's catalog at start) and the cloud's signed set (the one held before a restart first)."""
        files = self.settings.vehicle.campaigns
        if self.agent is None:
            if files:
                log.warning("campaigns: %d file(s) given but the car has no link (mqtt_url): not run", len(files))
            return None, None
        uplink = self.agent.uplink
        engine = CampaignEngine(self.broker.catalog, record_sender(uplink))
        try:
            local = load_campaign_files(files, self.broker.catalog)
        except CatalogError as exc:
            raise VehicleProcessError(str(exc)) from None
        for campaign in local:
            engine.install(campaign)
        definition = self.vehicle.definition
        car = CarFacts(self.vin, definition.brand, definition.model, tuple(definition.markets))
        cloud = CloudCampaigns(
            engine, self.agent.verifier, car, uplink.set_campaign_states, self.layout.cloud_campaigns,
            local_ids=[c.id for c in local], clock=self.clock,
        )  # fmt: skip
        uplink.on_campaigns = cloud.receive
        cloud.refresh(self.clock.time())
        log.info("campaigns: %s", ", ".join(c.id for c in engine.campaigns) or "none yet")
        return engine, cloud

    async def _update_every(self, period_s: float) -> None:
        while True:
            await to_thread_to_the_end(self._update_once)
            await self._sync_apps()
            if self.agent is not None:
                self.agent.uplink.set_software(self.software())
            await self.clock.sleep(period_s)

    def _update_once(self) -> None:
        try:
            outcome = self._ota.update()
            self._ota.send_manifest()
        except OpenSDVError as exc:  # the back end is unreachable or refused: try again next period
            self.ota_status = f"error: {exc}"
            log.warning("OTA: %s", exc)
            return
        self.ota_status = f"{outcome.status}: {outcome.detail}" if outcome.detail else outcome.status

    async def _sync_apps(self) -> None:
        """Run the app set the APPS ECU has active (after an install or a rollback)."""
        if not self.settings.vehicle.apps:
            return
        ecu = self._ota.ecus.get(f"{self.vin}-APPS")
        if ecu is None:
            return
        digest = ecu.slots.active_image.hashes["sha256"]
        if digest == self._app_set:
            return
        from opensdv.vehicle.apps.environments import AppEnvironments
        from opensdv.vehicle.apps.runtime import AppRuntime

        if self._apps is None:
            key = self.layout.jwt_private_key
            if not key.exists():
                raise VehicleProcessError(f"{key}: the broker's token key is missing (opensdv vehicle init makes it)")
            environments = self.settings.vehicle.app_environments_dir or self.layout.root / "app-environments"
            self._apps = AppRuntime(
                self.vehicle, self.server.target, key.read_bytes(), self.layout.root / "app-logs",
                broker=self.broker, mqtt_address=self.settings.vehicle.apps_mqtt_address,
                environments=AppEnvironments(environments),
            )  # fmt: skip
        await self._apps.apply_set(ecu.slots.read(ecu.slots.state.active), self.layout.apps)
        self._app_set = digest

    async def _report_health(self, period_s: float) -> None:
        while True:
            self._write_health(running=True)
            await self.clock.sleep(period_s)

    def health(self, running: bool = True) -> dict[str, Any]:
        """What a supervisor watches: alive, and the state of each part."""
        uplink = self.agent.uplink if self.agent is not None else None
        return {
            "vin": self.vin,
            "running": running,
            "at": self.clock.time(),
            "broker": self.server.target,
            "feeder": None if self.feeder is None else {"updates": self.feeder.stats.updates},
            "link": None
            if uplink is None
            else {"connected": uplink.connected.is_set(), **asdict(uplink.statistics())},
            "ota": self.ota_status,
            "apps": [f"{s.name}: {s.state}" for s in self.app_statuses()],
        }

    def _write_health(self, running: bool) -> None:
        path = self.settings.vehicle.health_file or self.layout.health
        write_atomically(path, json.dumps(self.health(running), default=str).encode(), sync=False)


def ecu_specs(vin: str, vehicle: Vehicle) -> list[Any]:
    """The car's ECUs as the OTA client knows them (serial: VIN-NAME)."""
    from opensdv.vehicle.ota.setup import EcuSpec

    return [EcuSpec(name, f"{vin}-{name}", ecu.hardware_id) for name, ecu in vehicle.ecus.items()]
