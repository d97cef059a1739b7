"""A fleet CA for the tests: identities for cars and services, brokers that enforce them."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from opensdv.clock import SYSTEM_CLOCK, Clock
from opensdv.cloud.fleet.identities import FleetCa
from opensdv.cloud.fleet.mosquitto import write_mosquitto_config
from opensdv.cloud.mqtt_broker import embedded_mqtt_broker
from opensdv.link.identity import IdentityFiles, is_vehicle
from opensdv.link.mqtt import MqttConnector
from opensdv.link.signing import CommandSigner

__all__ = ["Fleet", "mosquitto_binary", "run_mosquitto"]


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


class Fleet:
    """One CA per test session; each identity is issued once, on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca = FleetCa.init(directory / "ca")
        self.services = directory / "services"
        self.broker_identity = self.ca.provision_service(
            "broker", self.services, hosts=("127.0.0.1", "localhost")
        )
        self.ca.command_key(self.services)
        self._identities: dict[str, IdentityFiles] = {}

    def identity(self, who: str) -> IdentityFiles:
        """A VIN's or a service role's identity."""
        if who not in self._identities:
            if is_vehicle(who):
                self._identities[who] = self.ca.provision(who, self.directory / "cars" / who / "link")
            else:
                self._identities[who] = self.ca.provision_service(who, self.services)
        return self._identities[who]

    def connector(self, url: str, who: str, **options: Any) -> MqttConnector:
        return MqttConnector(url, self.identity(who), **options)

    def signer(self, clock: Clock = SYSTEM_CLOCK) -> CommandSigner:
        return CommandSigner(
            self.services / "command-signer.key", self.services / "command-signer.pem", clock=clock
        )

    def embedded(self, port: int = 0, **options: Any) -> AbstractAsyncContextManager[str]:
        return embedded_mqtt_broker(
            self.broker_identity,
            port=port,
            crl_file=self.ca.crl_file,
            revoked_file=self.ca.revoked_file,
            **options,
        )

    @asynccontextmanager
    async def mosquitto(self, port: int, directory: Path) -> AsyncIterator[str]:
        """A Mosquitto of the test's own with the configuration ``opensdv fleet mosquitto-config``
        writes (no persistence), to stop and start again on ``port``: ready when it says so."""
        files = write_mosquitto_config(
            directory / f"mosquitto-{port}", self.broker_identity, self.ca.crl_file, port=port, bind="127.0.0.1",
            run_as=getpass.getuser() if os.geteuid() == 0 else None, max_queued_messages=1_000_000,
        )  # fmt: skip
        async with run_mosquitto(files.config):
            yield f"mqtts://127.0.0.1:{port}"


@asynccontextmanager
async def run_mosquitto(config: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """Mosquitto with ``config`` (logging to stderr added), once it says it is running."""
    binary = mosquitto_binary()
    assert binary is not None, "mosquitto (make test installs it)"
    with config.open("a") as conf:
        conf.write("log_dest stderr\n")
    broker = await asyncio.create_subprocess_exec(binary, "-c", str(config), stderr=asyncio.subprocess.PIPE)
    assert broker.stderr is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(10):
            while b" running" not in (line := await broker.stderr.readline()):
                assert line, "mosquitto exited before it was running"
        drain = asyncio.create_task(_drain(broker.stderr))  # a full pipe would stall the broker
        yield broker
    finally:
        broker.terminate()
        await broker.wait()
        if drain is not None:
            drain.cancel()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
