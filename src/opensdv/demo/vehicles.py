"""The platform demo's wiring, per demo vehicle: a running data broker seeded with the vehicle's
attributes, and a twin driving a cycle in real time whose signals reach the broker the way a real
car's do — as the brand's CAN frames on a (virtual) bus, decoded by the brand adapter's feeder.

Later parts (cloud, OTA, energy) join here; the CLI only prints what this starts.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

import can

from opensdv.model.vehicles import Vehicle
from opensdv.model.vss import VssCatalog, load_default_vss
from opensdv.vehicle.attributes import vehicle_attributes
from opensdv.vehicle.broker import (
    Broker,
    BrokerServer,
    InvalidArgument,
    Permissions,
    TokenVerifier,
    generate_key_pair,
    mint_token,
)
from opensdv.vehicle.can import Adapter, BrokerSink, EcuSimulator, Feeder, bus_frames, load_mapping
from opensdv.vehicle.safety import ActuationGuard, SafetyPolicy, load_policy
from opensdv.vehicle.twin import TwinRuntime, drive_bus

__all__ = ["DemoVehicle", "demo_vin", "start_demo_vehicles", "stop_demo_vehicles"]

_WMI = {"Nissan": "JN1", "Honda": "JHM", "Mitsubishi": "JA3"}


def demo_vin(vehicle: Vehicle, serial: int) -> str:
    """A VIN of valid form (ISO 3779) for a simulated car: brand WMI, model code, serial."""
    wmi = _WMI.get(vehicle.definition.brand, "ZZZ")
    model = re.sub(r"[^A-HJ-NPR-Z0-9]", "", vehicle.id.upper())[:5].ljust(5, "0")  # VDS: 5 + check digit
    return f"{wmi}{model}0{'ABCDEFGHJKLMNPRSTVWXY'[vehicle.definition.model_year % 21]}D{serial:06d}"


@dataclass
class DemoVehicle:
    vehicle: Vehicle
    vin: str
    broker: Broker
    server: BrokerServer
    token_key: bytes  # the car broker's token-signing key: every gRPC call needs a token it signed
    feeder: Feeder | None = None
    twin: TwinRuntime | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    buses: list[can.BusABC] = field(default_factory=list)

    def token(self, scope: str, subject: str) -> str:
        """A token for this car's broker (as the app runtime gives each app one)."""
        return mint_token(self.token_key, scope, subject=subject)


ATTRIBUTES = Permissions.from_scope("provide:data", subject="vehicle-attributes")
FEEDER = Permissions.from_scope("provide", subject="can-feeder")  # provides values, actuates nothing
DEMO_CYCLES = {"Nissan": "udds", "Honda": "wltc_class3b", "Mitsubishi": "wltc_japan"}
TICK_S = 0.01  # the twin steps at 100 Hz
START_S = 200.0  # begin where the cycles are moving, not in their opening idle


async def _attach_powertrain(item: DemoVehicle) -> None:
    mapping = item.vehicle.definition.can_adapter
    if mapping is None:
        return
    adapter = Adapter(load_mapping(mapping), item.broker.catalog)
    channel = f"opensdv-demo-{item.vehicle.id}-{id(item)}"
    car_bus = can.Bus(interface="virtual", channel=channel)
    gateway = can.Bus(interface="virtual", channel=channel)
    item.buses += [car_bus, gateway]
    item.feeder = Feeder(adapter)
    cycle = DEMO_CYCLES.get(item.vehicle.definition.brand, "udds")
    item.twin = twin = TwinRuntime(item.vehicle, cycle, start_s=START_S + 47 * len(item.vin) % 120)
    item.tasks.append(
        asyncio.create_task(item.feeder.run(bus_frames(gateway), BrokerSink(item.broker, FEEDER), bus=gateway))
    )
    await item.feeder.ready.wait()
    item.tasks.append(asyncio.create_task(drive_bus(twin, car_bus, EcuSimulator(adapter), TICK_S)))


async def start_demo_vehicles(vehicles: list[Vehicle], base_port: int = 55555) -> list[DemoVehicle]:
    """Start a broker per vehicle on ``base_port``, ``base_port + 1``, ... (any free port if taken)."""
    catalog = load_default_vss()
    policy = load_policy()
    started: list[DemoVehicle] = []
    try:
        await _start_each(vehicles, base_port, catalog, policy, started)
    except BaseException:
        await stop_demo_vehicles(started)  # nothing half-started outlives a failure
        raise
    return started


async def _start_each(
    vehicles: list[Vehicle],
    base_port: int,
    catalog: VssCatalog,
    policy: SafetyPolicy,
    started: list[DemoVehicle],
) -> None:
    for index, vehicle in enumerate(vehicles):
        vin = demo_vin(vehicle, index + 1)
        broker = Broker(catalog, guard=ActuationGuard(policy, time.time))
        broker.publish(vehicle_attributes(vehicle, vin), ATTRIBUTES)
        private, public = generate_key_pair("ES256")
        tokens = TokenVerifier([public])
        server = BrokerServer(broker, f"127.0.0.1:{base_port + index}" if base_port else "127.0.0.1:0", authenticator=tokens)
        try:
            await server.start()
        except InvalidArgument:
            server = BrokerServer(broker, "127.0.0.1:0", authenticator=tokens)
            await server.start()
        item = DemoVehicle(vehicle, vin, broker, server, private)
        started.append(item)
        await _attach_powertrain(item)


async def stop_demo_vehicles(running: list[DemoVehicle]) -> None:
    """Stop every demo vehicle's feeder, twin and broker, in that order."""
    for item in running:
        for task in item.tasks:
            task.cancel()
        await asyncio.gather(*item.tasks, return_exceptions=True)
        for bus in item.buses:
            bus.shutdown()
        await item.server.stop(0)
