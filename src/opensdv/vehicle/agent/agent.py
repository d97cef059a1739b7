"""The vehicle agent: one car's data broker linked to the cloud.

It samples the configured VSS signals from the broker at their rates into telemetry batches (each
spooled before it is sent), publishes the car's status with a last will, reports safety denials as
events, and carries out remote commands as actuations through the broker — so a command from the
cloud meets the same safety guard as any app, under the operator's name. A command is carried out
only once its signature, VIN, validity and nonce have been checked (``link.signing``); every refusal
goes to the cloud as a ``command-refused`` event.

It reads the broker with its own scope (the signals it samples), never as the all-powerful
in-process caller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.link.fleet import CommandResult, Sample
from opensdv.link.signing import CommandRefused, CommandVerifier
from opensdv.vehicle.agent.uplink import Uplink
from opensdv.vehicle.broker import Broker, BrokerError, Permissions
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
        verifier: CommandVerifier | None = None,
    ) -> None:
        self.broker = broker
        self.verifier = verifier  # none: every command is refused
        self.refused = 0
        self._reads = Permissions.from_scope(" ".join(f"read:{path}" for path in signals), subject="cloud-agent")
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
            point = self.broker.get(path, self._reads)
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

    async def command(self, payload: bytes) -> CommandResult:
        """Verify a ``SignedCommand`` and carry it out through the safety guard, as its operator."""
        vin = self.uplink.vin
        try:
            if self.verifier is None:
                raise CommandRefused("this vehicle was provisioned without the fleet CA: it takes no commands")
            command = self.verifier.verify(payload)
        except CommandRefused as exc:
            self.refused += 1
            self.uplink.event("command-refused", str(exc))
            return CommandResult(id=_command_id(payload), vin=vin, accepted=False, reason=str(exc))
        who = Permissions.from_scope(f"actuate:{command.path}", subject=f"cloud:{command.operator}")
        try:
            self.broker.actuate({command.path: command.value}, who)
        except BrokerError as exc:
            return CommandResult(id=command.id, vin=vin, accepted=False, reason=str(exc))
        return CommandResult(id=command.id, vin=vin, accepted=True)

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


def _command_id(payload: bytes) -> str:
    """The id a refused command claims, so the cloud can match the refusal (``?`` if it has none)."""
    try:
        claimed = json.loads(payload)["command"]["id"]
    except (ValueError, KeyError, TypeError):
        return "?"
    return claimed if isinstance(claimed, str) and 0 < len(claimed) <= 64 else "?"
