"""The vehicle's ECUs, simulated: VSS values become the brand's frames, each at its cycle time.

A twin (or a test) calls ``update`` with the latest VSS values; ``frames_due`` returns the frames
whose cycle has come round, encoded with the brand's DBC exactly as the car would send them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import can

from opensdv.vehicle.can._adapter import Adapter

__all__ = ["EcuSimulator"]

DEFAULT_CYCLE_MS = 100.0


class EcuSimulator:
    """A brand's ECUs on a CAN bus, sending the frames the mapping decodes from a twin's signals."""
    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self._paths_by_message: dict[str, list[str]] = {}
        for path, entry in adapter.mapping.signals.items():
            self._paths_by_message.setdefault(entry.message, []).append(path)
        self._period_s = {
            name: (
                adapter.mapping.cycle_ms.get(name) or adapter.messages[name].cycle_time or DEFAULT_CYCLE_MS
            )
            / 1000
            for name in self._paths_by_message
        }
        self._next_due = dict.fromkeys(self._paths_by_message, 0.0)
        self._values: dict[str, Any] = {}

    def update(self, values: Mapping[str, Any]) -> None:
        """Remember the latest value of every mapped signal among ``values`` (others are ignored)."""
        for path, value in values.items():
            if path in self.adapter.mapping.signals:
                self._values[path] = value

    def frames_due(self, now: float) -> list[can.Message]:
        """Frames of every message whose cycle time has elapsed at ``now`` (seconds)."""
        frames: list[can.Message] = []
        for name, paths in self._paths_by_message.items():
            if now < self._next_due[name]:
                continue
            known = {path: self._values[path] for path in paths if path in self._values}
            if not known:
                continue
            self._next_due[name] = max(self._next_due[name] + self._period_s[name], now)
            for frame in self.adapter.encode_signals(known):
                frame.timestamp = now
                frames.append(frame)
        return frames
