"""``--state FILE``: last values and attributes survive a restart.

Written atomically (temporary file, then rename) at most once per ``interval`` while values change,
and once more on shutdown; a crash loses at most that interval. Loading skips paths the catalog no
longer has and values it no longer accepts, and says which.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from opensdv.model.vss import VssValueError
from opensdv.vehicle.broker._core import Broker
from opensdv.vehicle.broker._errors import BrokerError
from opensdv.vehicle.broker._subscription import Datapoint

__all__ = ["StateFile", "StateFileError"]

log = logging.getLogger(__name__)
FORMAT_VERSION = 1


class StateFileError(BrokerError):
    """The state file exists but cannot be read as one."""


class StateFile:
    """Keeps the broker's last values in a file across restarts (written atomically, periodically)."""
    def __init__(self, path: Path, broker: Broker) -> None:
        self.path = path
        self._broker = broker
        self._dirty = False
        broker.add_listener(self._changed)

    def _changed(self, _points: Mapping[str, Datapoint]) -> None:
        self._dirty = True

    def load(self) -> list[str]:
        """Restore saved values; return a note per entry that was skipped (and why)."""
        if not self.path.exists():
            return []
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StateFileError(f"{self.path}: cannot read the state file: {exc}") from None
        if (
            not isinstance(document, dict)
            or document.get("version") != FORMAT_VERSION
            or not isinstance(document.get("values"), dict)
        ):
            raise StateFileError(f"{self.path}: not an OpenSDV state file (version {FORMAT_VERSION})")
        restored: dict[str, Datapoint] = {}
        skipped: list[str] = []
        for path, entry in document["values"].items():
            leaf = self._broker.catalog.get(path)
            if leaf is None:
                skipped.append(f"{path}: no longer in the catalog")
                continue
            try:
                value, timestamp = entry
                restored[path] = Datapoint(leaf.validate(value), float(timestamp))
            except (TypeError, ValueError) as exc:
                skipped.append(f"{path}: {exc}")
            except VssValueError as exc:
                skipped.append(f"{path}: {exc.reason}")
        self._broker.restore(restored)
        for note in skipped:
            log.warning("state file %s: skipped %s", self.path, note)
        return skipped

    def save(self) -> None:
        values = {path: [point.value, point.timestamp] for path, point in self._broker.snapshot().items()}
        temporary = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump({"version": FORMAT_VERSION, "values": values}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._dirty = False

    async def run(self, interval: float = 1.0) -> None:
        """Save whenever something changed, at most once per ``interval``; save again when cancelled."""
        try:
            while True:
                await asyncio.sleep(interval)
                if self._dirty:
                    self.save()
        finally:
            self.save()
