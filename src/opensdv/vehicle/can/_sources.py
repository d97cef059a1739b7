"""Where frames come from: a python-can bus (virtual, SocketCAN, ...) or a recorded log file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import can

from opensdv.vehicle.can._errors import BusSpecError

__all__ = ["BusSpecError", "bus_frames", "log_frames", "open_bus"]


def open_bus(spec: str) -> can.BusABC:
    """``virtual[:CHANNEL]`` (in-process, for tests and simulation), ``socketcan:vcan0`` or
    ``socketcan:can0`` (Linux), or any ``INTERFACE:CHANNEL`` python-can knows."""
    interface, _, channel = spec.partition(":")
    if interface == "file":
        raise BusSpecError("a log file is a source, not a bus: use log_frames()")
    if interface == "virtual":
        channel = channel or "opensdv"
    if not channel:
        raise BusSpecError(f"bus {spec!r} needs a channel, e.g. socketcan:vcan0")
    try:
        return can.Bus(interface=interface, channel=channel, receive_own_messages=False)
    except (can.CanError, OSError, ValueError, ImportError, NotImplementedError) as exc:
        raise BusSpecError(f"cannot open bus {spec!r}: {exc}") from None


async def bus_frames(bus: can.BusABC) -> AsyncIterator[can.Message]:
    """Frames as they arrive (python-can's notifier thread hands them to the event loop)."""
    reader = can.AsyncBufferedReader()
    notifier = can.Notifier(bus, [reader], loop=asyncio.get_running_loop())
    try:
        async for message in reader:
            yield message
    finally:
        notifier.stop()


async def log_frames(path: Path, speed: float = 1.0) -> AsyncIterator[can.Message]:
    """Replay a candump (``.log``), BLF, ASC, CSV or TRC file. ``speed`` 1 keeps the original timing,
    2 plays twice as fast, 0 as fast as possible."""
    if not path.exists():
        raise BusSpecError(f"{path}: log file not found")
    try:
        reader = can.LogReader(str(path))
    except (ValueError, OSError) as exc:
        raise BusSpecError(f"{path}: cannot read CAN log: {exc}") from None
    loop = asyncio.get_running_loop()
    first: float | None = None
    started = loop.time()
    try:
        for message in reader:
            if speed > 0:
                first = message.timestamp if first is None else first
                delay = started + (message.timestamp - first) / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            yield message
    finally:
        reader.stop()
