"""The audit trail of actuation decisions: every denial and clamp, with who, what and why."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["AuditRecord", "AuditTrail"]


@dataclass(frozen=True)
class AuditRecord:
    at: float
    subject: str
    path: str
    value: Any
    decision: str  # allowed, clamped, denied
    reason: str


class AuditTrail:
    """The last ``keep`` decisions in memory, every one appended to ``file`` (JSON lines) if given,
    and handed to listeners (the vehicle agent forwards them to the cloud)."""

    def __init__(self, file: Path | None = None, keep: int = 1000) -> None:
        self.file = file
        self.records: deque[AuditRecord] = deque(maxlen=keep)
        self._listeners: list[Callable[[AuditRecord], None]] = []

    def add_listener(self, listener: Callable[[AuditRecord], None]) -> None:
        self._listeners.append(listener)

    def record(self, record: AuditRecord) -> None:
        self.records.append(record)
        if self.file is not None:
            with self.file.open("a") as out:
                out.write(json.dumps(asdict(record), default=str) + "\n")
        for listener in self._listeners:
            listener(record)
