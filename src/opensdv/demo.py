"""The platform demo's wiring: one running data broker per demo vehicle, seeded with its attributes.

Later parts (CAN adapters, twins, cloud) join here; the CLI only prints what this starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opensdv.model.vehicles import Vehicle
from opensdv.model.vss import load_default_vss
from opensdv.vehicle.attributes import vehicle_attributes
from opensdv.vehicle.broker import ALLOW_ALL, Broker, BrokerServer, InvalidArgument

__all__ = ["DemoVehicle", "demo_vin", "start_demo_vehicles", "stop_demo_vehicles"]

_WMI = {"Nissan": "JN1", "Honda": "JHM", "Mitsubishi": "JA3"}


def demo_vin(vehicle: Vehicle, serial: int) -> str:
    """A VIN of valid form (ISO 3779) for a simulated car: brand WMI, model code, serial."""
    wmi = _WMI.get(vehicle.definition.brand, "ZZZ")
    model = re.sub(r"[^A-HJ-NPR-Z0-9]", "", vehicle.id.upper())[:6].ljust(6, "0")
    return f"{wmi}{model}0{'ABCDEFGHJKLMNPRSTVWXY'[vehicle.definition.model_year % 21]}D{serial:06d}"


@dataclass
class DemoVehicle:
    vehicle: Vehicle
    vin: str
    broker: Broker
    server: BrokerServer


async def start_demo_vehicles(vehicles: list[Vehicle], base_port: int = 55555) -> list[DemoVehicle]:
    """Start a broker per vehicle on ``base_port``, ``base_port + 1``, ... (any free port if taken)."""
    catalog = load_default_vss()
    started: list[DemoVehicle] = []
    for index, vehicle in enumerate(vehicles):
        vin = demo_vin(vehicle, index + 1)
        broker = Broker(catalog)
        broker.publish(vehicle_attributes(vehicle, vin), ALLOW_ALL)
        server = BrokerServer(broker, f"127.0.0.1:{base_port + index}" if base_port else "127.0.0.1:0")
        try:
            await server.start()
        except InvalidArgument:
            server = BrokerServer(broker, "127.0.0.1:0")
            await server.start()
        started.append(DemoVehicle(vehicle, vin, broker, server))
    return started


async def stop_demo_vehicles(running: list[DemoVehicle]) -> None:
    for item in running:
        await item.server.stop(0)
