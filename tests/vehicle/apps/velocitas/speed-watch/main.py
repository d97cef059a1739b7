"""Publishes on MQTT each time the car is faster than 80 km/h, from a Velocitas WHERE subscription."""

import asyncio
import json
import signal

from velocitas_sdk.model import DataPointFloat, Model
from velocitas_sdk.vdb.reply import DataPointReply
from velocitas_sdk.vehicle_app import VehicleApp


class Vehicle(Model):
    def __init__(self, name):
        super().__init__()
        self.name = name
        self.Speed = DataPointFloat("Speed", self)


class SpeedWatch(VehicleApp):
    def __init__(self, vehicle):
        super().__init__()
        self.Vehicle = vehicle

    async def on_start(self):
        await self.Vehicle.Speed.where("Vehicle.Speed > 80").subscribe(self.on_fast)

    async def on_fast(self, data: DataPointReply):
        await self.publish_event("speedwatch/fast", json.dumps({"speed": data.get(self.Vehicle.Speed).value}))


LOOP = asyncio.get_event_loop()
LOOP.add_signal_handler(signal.SIGTERM, LOOP.stop)
LOOP.run_until_complete(SpeedWatch(Vehicle("Vehicle")).run())
