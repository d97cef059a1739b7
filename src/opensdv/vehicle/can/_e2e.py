"""AUTOSAR E2E protection of the standard-component frames (profile 1, variant 1A, classic CAN).

A CAN frame's own CRC protects the wire, not the sender: a gateway that corrupts a payload, a
sender that repeats a stale frame or an ECU that stopped updating all pass it. E2E profile 1 adds,
inside the payload, a 4-bit counter (0 to 14, one more per frame) and a CRC-8 (SAE J1850:
polynomial 0x1D, start 0xFF, final XOR 0xFF) over the message's 16-bit Data ID and every other
payload byte. The receiver checks both before it uses a value: a wrong CRC, a repeated counter
(stale data) or a jump of more than ``MAX_DELTA_COUNTER`` (lost or replayed frames) drops the frame.

The OpenSDV components DBC marks a protected message with the ``E2E_DataID`` attribute; its
``CRC`` signal is one whole byte and its ``COUNTER`` signal one nibble.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cantools.database.can import Message
from crc import Calculator, Crc8

__all__ = ["MAX_DELTA_COUNTER", "E2EProfile1", "e2e_protection"]

MAX_DELTA_COUNTER = 2  # one frame may be lost between two that are accepted
_COUNTER_VALUES = 15  # 0..14; 15 is not a valid counter in profile 1
_CRC8 = Calculator(Crc8.SAEJ1850.value, optimized=True)


@dataclass
class E2EProfile1:
    """One message's protection: where its CRC and counter are, its Data ID, and the counters of
    what was last sent and last accepted."""

    name: str
    data_id: int
    crc_byte: int
    counter_bit: int  # the counter nibble's lowest bit, counted from byte 0's least significant
    sent: int = field(default=-1)
    received: int | None = field(default=None)

    def crc(self, payload: bytes) -> int:
        covered = bytes((self.data_id & 0xFF, self.data_id >> 8)) + payload[: self.crc_byte] + payload[self.crc_byte + 1 :]
        return int(_CRC8.checksum(covered))

    def _counter(self, payload: bytes) -> int:
        return (payload[self.counter_bit // 8] >> (self.counter_bit % 8)) & 0x0F

    def protect(self, payload: bytes) -> bytes:
        """``payload`` with the next counter and its CRC written in (what a sending ECU does)."""
        self.sent = (self.sent + 1) % _COUNTER_VALUES
        data = bytearray(payload)
        index, shift = self.counter_bit // 8, self.counter_bit % 8
        data[index] = (data[index] & ~(0x0F << shift) & 0xFF) | (self.sent << shift)
        data[self.crc_byte] = self.crc(bytes(data))
        return bytes(data)

    def check(self, payload: bytes) -> tuple[str, str] | None:
        """``None`` if the frame may be used, else (reason, detail) why it is dropped. A frame
        after a sequence error is accepted again (the sender resynchronises)."""
        if len(payload) <= max(self.crc_byte, self.counter_bit // 8):
            return "wrong-length", f"{self.name}: {len(payload)} bytes carry no E2E header"
        expected = self.crc(payload)
        if payload[self.crc_byte] != expected:
            return "e2e-crc", f"{self.name}: CRC {payload[self.crc_byte]:#04x}, expected {expected:#04x}"
        counter = self._counter(payload)
        if counter >= _COUNTER_VALUES:
            return "e2e-counter", f"{self.name}: counter {counter} is not a profile-1 counter"
        previous, self.received = self.received, counter
        if previous is None:
            return None
        delta = (counter - previous) % _COUNTER_VALUES
        if delta == 0:
            return "e2e-repeated", f"{self.name}: counter {counter} again (stale or replayed)"
        if delta > MAX_DELTA_COUNTER:
            return "e2e-sequence", f"{self.name}: counter {previous} -> {counter} ({delta - 1} frames lost or replayed)"
        return None


def e2e_protection(message: Message) -> E2EProfile1 | None:
    """The message's E2E protection if its DBC gives it an ``E2E_DataID``, else ``None``."""
    attributes = message.dbc.attributes if message.dbc is not None else {}
    if "E2E_DataID" not in attributes:
        return None
    crc = message.get_signal_by_name("CRC")
    counter = message.get_signal_by_name("COUNTER")
    if crc.length != 8 or crc.start % 8 or counter.length != 4 or counter.start % 4 or crc.byte_order != "little_endian":
        raise ValueError(f"{message.name}: E2E needs a byte-aligned 8-bit CRC and a 4-bit COUNTER (little endian)")
    return E2EProfile1(message.name, int(attributes["E2E_DataID"].value), crc.start // 8, counter.start)
