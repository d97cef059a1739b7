"""The feeder: frames in, VSS values out (and actuation requests back out as frames).

It decodes only the mapped signals, throttles them as the mapping says, publishes them to a sink,
claims the mapped actuators and turns actuation requests into frames on the bus. Nothing a bus or a
broker sends can crash it: every refused frame or value is counted with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import can

from opensdv.vehicle.can._adapter import Adapter, frame_key
from opensdv.vehicle.can._sinks import Sink

__all__ = ["Feeder", "FeederStats"]


@dataclass
class FeederStats:
    frames: int = 0
    unknown_ids: int = 0
    mapped_frames: int = 0
    updates: int = 0
    throttled: int = 0
    actuations: int = 0
    actuation_frames: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    last_drop: dict[str, str] = field(default_factory=dict)

    def drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        self.last_drop[reason] = detail

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "unknown_ids": self.unknown_ids,
            "mapped_frames": self.mapped_frames,
            "updates": self.updates,
            "throttled": self.throttled,
            "actuations": self.actuations,
            "actuation_frames": self.actuation_frames,
            "dropped": dict(self.dropped),
            "last_drop": self.last_drop,
        }


class Feeder:
    """Decodes a bus's frames into broker values and encodes actuations back into frames."""
    def __init__(self, adapter: Adapter, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.adapter = adapter
        self.stats = FeederStats()
        self._clock = clock
        self._last: dict[str, tuple[float, Any]] = {}
        self._pending: dict[str, Any] = {}  # throttled values still owed to the broker (latest wins)
        self._throttle = {path: adapter.throttle(path) for path in adapter.signal_paths}
        self._fast = adapter.fast_decoders
        self._e2e = {  # a receiver's own counters: what the adapter sends is counted apart
            frame_key(m.frame_id, m.is_extended_frame): replace(adapter.protections[m.name], sent=-1, received=None)
            for m in adapter.messages.values()
            if m.name in adapter.protections
        }
        self._checks = adapter.mapping.cross_checks
        self._redundant = {path for check in self._checks.values() for path in check.against}
        self._seen: dict[str, tuple[float, float]] = {}  # redundant values as decoded: (time, value)
        self.ready = asyncio.Event()  # set once the sink accepted the actuator claims

    def process(self, message: can.Message) -> dict[str, Any]:
        """The VSS values a frame carries that are due for publishing (after throttling)."""
        stats = self.stats
        stats.frames += 1
        data = bytes(message.data)
        fast = self._fast.get(frame_key(message.arbitration_id, message.is_extended_id))
        if fast is None:
            stats.unknown_ids += 1
            return {}
        stats.mapped_frames += 1
        protection = self._e2e.get(frame_key(message.arbitration_id, message.is_extended_id))
        if protection is not None and (problem := protection.check(data)) is not None:
            stats.drop(*problem)  # corrupted, stale or replayed: none of its values is used
            return {}
        self.adapter.observe(message.arbitration_id, message.is_extended_id, data)
        values = fast(data)
        if values is None:  # something is off: the generic decoder says what
            decoded = self.adapter.decode(message.arbitration_id, message.is_extended_id, data)
            values = decoded.values if decoded is not None else {}
            for where, reason, detail in decoded.dropped if decoded is not None else ():
                stats.drop(reason, f"{where}: {detail}")
        now = message.timestamp or self._clock()  # throttle on the data's own time (replays too)
        if self._checks:
            values = self._cross_checked(values, now)
        due: dict[str, Any] = {}
        if self._pending:
            for path in list(self._pending):
                if now - self._last[path][0] >= self._throttle[path][0]:
                    due[path] = self._pending.pop(path)
                    self._last[path] = (now, due[path])
        for path, value in values.items():
            interval, on_change = self._throttle[path]
            last = self._last.get(path)
            if last is not None and on_change and last[1] == value:
                stats.throttled += 1
                self._pending.pop(path, None)
                continue
            if last is not None and now - last[0] < interval:
                stats.throttled += 1
                self._pending[path] = value
                continue
            self._pending.pop(path, None)
            self._last[path] = (now, value)
            due[path] = value
        stats.updates += len(due)
        return due

    def _cross_checked(self, values: dict[str, Any], now: float) -> dict[str, Any]:
        """``values`` without the cross-checked signals their redundant measurement contradicts
        (or that it has not confirmed lately); each one dropped is counted as ``cross-check``."""
        for path in self._redundant.intersection(values):
            self._seen[path] = (now, float(values[path]))
        for path in [p for p in values if p in self._checks]:
            check = self._checks[path]
            fresh = [self._seen[p][1] for p in check.against if p in self._seen and now - self._seen[p][0] <= check.max_age_ms / 1000]
            if len(fresh) < len(check.against):
                why = f"{path}: {', '.join(check.against)} not all seen in the last {check.max_age_ms:g} ms"
            else:
                expected = sum(fresh) / len(fresh)
                allowed = max(check.tolerance, check.tolerance_ratio * abs(expected))
                if abs(float(values[path]) - expected) <= allowed:
                    continue
                why = f"{path}={float(values[path]):g} disagrees with {expected:g} from {', '.join(check.against)}"
            values = {p: v for p, v in values.items() if p != path}
            self.stats.drop("cross-check", why)
        return values

    def flush(self) -> dict[str, Any]:
        """Throttled values not yet published (the stream ended before their interval came round)."""
        due, self._pending = self._pending, {}
        self.stats.updates += len(due)
        return due

    async def run(
        self,
        frames: AsyncIterator[can.Message],
        sink: Sink,
        *,
        bus: can.BusABC | None = None,
        stats_file: Path | None = None,
    ) -> FeederStats:
        """Feed until ``frames`` ends (or the task is cancelled); actuation frames go to ``bus``."""
        await sink.start(self.adapter.actuator_paths if bus is not None else [])
        self.ready.set()
        actuation = asyncio.create_task(self._actuate(sink, bus)) if bus is not None else None
        writer = asyncio.create_task(self._write_stats(stats_file)) if stats_file else None
        try:
            async for message in frames:
                values = self.process(message)
                if values:
                    await self._publish(sink, values)
            remaining = self.flush()
            if remaining:
                await self._publish(sink, remaining)
        finally:
            for task in (actuation, writer):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if stats_file:
                self.save_stats(stats_file)
            await sink.close()
        return self.stats

    async def _publish(self, sink: Sink, values: dict[str, Any]) -> None:
        for path, reason in (await sink.publish(values)).items():
            self.stats.drop("broker-refused", f"{path}: {reason}")

    async def _actuate(self, sink: Sink, bus: can.BusABC | None) -> None:
        while True:
            request = await sink.wait_actuation()
            self.stats.actuations += 1
            try:
                frames = self.adapter.encode_actuation(request)
            except Exception as exc:  # a bad request must not stop the feeder; it is counted
                self.stats.drop("actuation-refused", f"{sorted(request)}: {exc}")
                continue
            for frame in frames:
                if bus is not None:
                    bus.send(frame)
                self.stats.actuation_frames += 1

    async def _write_stats(self, path: Path | None, interval: float = 1.0) -> None:
        while path is not None:
            await asyncio.sleep(interval)
            self.save_stats(path)

    def save_stats(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(
            json.dumps({"vehicle": self.adapter.mapping.id, **self.stats.to_dict()}, indent=2)
        )
        temporary.replace(path)
