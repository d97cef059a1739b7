"""Brand frames' own protection, as the brands define it and opendbc implements it.

Honda's powertrain frames end with a 4-bit checksum over the frame id and payload (and most with
a 2-bit counter beside it). opendbc (``opendbc.car.honda.hondacan.honda_checksum``) computes it for
its own packer; the feeder checks it on every frame before decoding, and the simulators write it,
so a corrupted ``CAR_SPEED`` or one repeated without its counter moving never reaches the safety
guard. (Nissan's frames in opendbc carry no checksum the package defines.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cantools.database.can import Message
from opendbc.car.honda.hondacan import honda_checksum  # type: ignore[import-untyped]

__all__ = ["HondaChecksum", "brand_protection"]


@dataclass
class HondaChecksum:
    """The checksum nibble (low bits of the last byte) and, where the message has one, the 2-bit
    counter above it."""

    name: str
    frame_id: int
    counter: bool
    sent: int = field(default=-1)
    received: int | None = field(default=None)

    def _checksum(self, payload: bytes) -> int:
        return int(honda_checksum(self.frame_id, None, bytearray(payload[:-1]) + bytes([payload[-1] & 0xF0])))

    def protect(self, payload: bytes) -> bytes:
        data = bytearray(payload)
        if self.counter:
            self.sent = (self.sent + 1) % 4
            data[-1] = (data[-1] & 0xCF) | (self.sent << 4)
        data[-1] = (data[-1] & 0xF0) | self._checksum(bytes(data))
        return bytes(data)

    def check(self, payload: bytes) -> tuple[str, str] | None:
        if not payload:
            return "wrong-length", f"{self.name}: an empty frame"
        expected = self._checksum(payload)
        if payload[-1] & 0x0F != expected:
            return "checksum", f"{self.name}: checksum {payload[-1] & 0x0F:#x}, expected {expected:#x}"
        if self.counter:
            counter, previous = (payload[-1] >> 4) & 0x3, self.received
            self.received = counter
            if previous == counter:
                return "e2e-repeated", f"{self.name}: counter {counter} again (stale or replayed)"
        return None


def brand_protection(source: str, message: Message) -> HondaChecksum | None:
    """The brand protection of ``message`` from DBC ``source``, or ``None`` if it has none."""
    names = {signal.name: signal for signal in message.signals}
    if not source.startswith(("opendbc:honda_", "opendbc:acura_")) or "CHECKSUM" not in names:
        return None
    checksum, counter = names["CHECKSUM"], names.get("COUNTER")
    last = (message.length - 1) * 8
    if checksum.byte_order != "big_endian" or not last <= checksum.start < last + 8 or checksum.length != 4:
        return None  # not in the layout honda_checksum computes
    return HondaChecksum(message.name, message.frame_id, counter is not None and counter.length == 2)
