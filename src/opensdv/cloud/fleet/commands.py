"""Operators' commands and the cars' campaign sets onto the link, each signed with the cloud's command key.

The API decides who may command which car (tenant, ``can_command``); this module turns the order
into a ``SignedCommand`` (its own nonce, a short validity) and publishes it as the API's identity,
which the broker lets publish commands and nothing else. The car verifies the signature, so a
party that can publish on the broker but lacks the key cannot command a car.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from opensdv.link.connection import Connector
from opensdv.link.fleet import Command, StrictValue, topic
from opensdv.link.signing import CommandSigner

__all__ = ["CampaignSetPublisher", "CommandOrder", "CommandSender"]


@dataclass(frozen=True)
class CommandOrder:
    vin: str
    tenant: str
    operator: str
    path: str
    value: StrictValue


class CommandSender:
    """``send(order)``: sign it and put it on the link (one short connection per command)."""

    def __init__(self, connector: Connector, signer: CommandSigner, identity: str = "opensdv-api") -> None:
        self.connector = connector
        self.signer = signer
        self.identity = identity

    async def __call__(self, order: CommandOrder) -> Command:
        command = self.signer.command(order.vin, order.tenant, order.operator, order.path, order.value)
        async with self.connector.connect(f"{self.identity}-{secrets.token_hex(4)}") as connection:
            await connection.publish(topic(order.vin, "commands"), self.signer.sign(command), qos=1)
        return command


class CampaignSetPublisher:
    """``publish(sets)``: each car's signed campaign set, retained on its ``campaigns`` topic (one
    connection for all of them), so a car that is offline finds it when it connects."""

    def __init__(self, connector: Connector, identity: str = "opensdv-api") -> None:
        self.connector = connector
        self.identity = identity

    async def __call__(self, sets: list[tuple[str, bytes]]) -> None:
        async with self.connector.connect(f"{self.identity}-{secrets.token_hex(4)}") as connection:
            for vin, payload in sets:
                await connection.publish(topic(vin, "campaigns"), payload, qos=1, retain=True)
