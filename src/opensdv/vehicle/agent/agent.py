"""The vehicle agent: one car's data broker linked to the cloud.

It samples the configured VSS signals from the broker at their rates into telemetry batches (each
spooled before it is sent), publishes the car's status with a last will, reports safety denials as
events, and carries out remote commands as actuations through the broker — so a command from the
cloud meets the same safety guard as any app, under the operator's name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.link.fleet import Command, CommandResult, Sample
from opensdv.vehicle.agent.uplink import Uplink
from opensdv.vehicle.broker import ALLOW_ALL, Broker, BrokerError, Permissions
from opensdv.vehicle.safety import AuditRecord

__all__ = ["DEFAULT_SIGNALS", "VehicleAgent"]

DEFAULT_SIGNALS: Mapping[str, float] = {  # path -> samples per second
    "Vehicle.Speed": 1.0,
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current": 1.0,
    "Vehicle.Powertrain.TractionBattery.CurrentVoltage": 1.0,
    "Vehicle.Powertrain.TractionBattery.CurrentCurrent": 1.0,
    "Vehicle.Powertrain.TractionBattery.Temperature.Average": 0.2,
    "Vehicle.Powertrain.ElectricMotor.Speed": 1.0,
    "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit": 0.2,
}


class VehicleAgent:
    """Samples the car's broker into telemetry, reports safety denials, and carries out the cloud's commands."""
    def __init__(
        self,
        broker: Broker,
        uplink: Uplink,
        signals: Mapping[str, float] = DEFAULT_SIGNALS,
        batch_s: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.broker = broker
        self.uplink = uplink
        self.signals = dict(signals)
        self.batch_s = batch_s
        self.clock = clock
        self._due = dict.fromkeys(self.signals, 0.0)
        uplink.on_command = self.command

    def sample(self) -> list[Sample]:
        """The signals whose period has passed, with the time the car measured them."""
        now = self.clock.time()
        samples = []
        for path, rate in self.signals.items():
            if now < self._due[path]:
                continue
            self._due[path] = now + 1.0 / rate
            point = self.broker.get(path, ALLOW_ALL)
            if point is not None and point.value is not None:
                samples.append(Sample(path=path, value=point.value, ts=point.timestamp))
        return samples

    def audit(self, record: AuditRecord) -> None:
        """Safety-guard listener: denials and clamps become events in the cloud."""
        if record.decision != "allowed":
            self.uplink.event(
                f"safety-{record.decision}",
                f"{record.subject}: {record.path} = {record.value}: {record.reason}",
            )

    async def command(self, command: Command) -> CommandResult:
        who = Permissions.from_scope(f"actuate:{command.path}", subject=f"cloud:{command.operator}")
        try:
            self.broker.actuate({command.path: command.value}, who)
        except BrokerError as exc:
            return CommandResult(id=command.id, vin=self.uplink.vin, accepted=False, reason=str(exc))
        return CommandResult(id=command.id, vin=self.uplink.vin, accepted=True)

    async def run(self) -> None:
        link = asyncio.create_task(self.uplink.run())
        try:
            while True:
                samples = self.sample()
                if samples:
                    self.uplink.record(samples)
                await self.clock.sleep(self.batch_s)
        finally:
            link.cancel()
            await asyncio.gather(link, return_exceptions=True)
