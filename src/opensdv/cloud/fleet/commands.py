"""Operators' commands onto the link, each signed with the cloud's command key.

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

__all__ = ["CommandOrder", "CommandSender"]


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
