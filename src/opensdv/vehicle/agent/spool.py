"""Store-and-forward: every telemetry batch is written here first and deleted only once the cloud
has confirmed that it stored it (a ``TelemetryAck``), so nothing is lost while the cloud or the
broker is unreachable or restarts, or the car restarts; batches go out in the order they were made.

Sequence numbers must never repeat, even after every batch was confirmed and deleted and the car
restarted (the cloud would take a repeat for a duplicate and drop it): the next number is one past
the highest of the stored batches and the confirmed ones, and the confirmed high-water mark is
written in the same transaction that deletes them. Adding a batch is then a single INSERT.

Each batch has a priority (0 goes first; the car's own telemetry is ``TELEMETRY_PRIORITY``) and a
lane (a data collection campaign's id; '' for the telemetry): a lane may have a limit on the batches
it keeps while the car is offline, and whether its oldest or its newest goes when it is full.
Within a priority, batches go out in sequence order.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["TELEMETRY_PRIORITY", "LaneLimit", "Spool"]

TELEMETRY_PRIORITY = 5


@dataclass(frozen=True, slots=True)
class LaneLimit:
    """At most ``max_batches`` of a lane wait in the spool; when full, its ``drop`` one goes."""

    max_batches: int
    drop: Literal["oldest", "newest"] = "oldest"


class Spool:
    """Batches by sequence number in a SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL,"
            f" priority INTEGER NOT NULL DEFAULT {TELEMETRY_PRIORITY}, lane TEXT NOT NULL DEFAULT '')"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(batches)")}
        if "priority" not in columns:  # a spool written before priorities: its batches keep their order
            self._db.execute(f"ALTER TABLE batches ADD COLUMN priority INTEGER NOT NULL DEFAULT {TELEMETRY_PRIORITY}")
            self._db.execute("ALTER TABLE batches ADD COLUMN lane TEXT NOT NULL DEFAULT ''")
        self._db.execute("CREATE INDEX IF NOT EXISTS batches_order ON batches (priority, seq)")
        self._db.execute("CREATE INDEX IF NOT EXISTS batches_lane ON batches (lane, seq)")
        self.dropped = 0  # batches a lane's limit let go
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 0), next INTEGER)"
        )
        self._db.execute("INSERT OR IGNORE INTO counter VALUES (0, 0)")
        ((stored, acknowledged),) = self._db.execute(
            "SELECT (SELECT max(seq) + 1 FROM batches), next FROM counter"
        ).fetchall()
        self._next = int(max(stored or 0, acknowledged))

    def add(
        self, build: Callable[[int], bytes], *, priority: int = TELEMETRY_PRIORITY, lane: str = "",
        limit: LaneLimit | None = None,
    ) -> int | None:  # fmt: skip
        """Take the next sequence number, store ``build(seq)`` under it, return the number; with a
        full ``limit``, the lane's oldest batch goes first, or this one is not kept (``None``)."""
        if limit is not None:
            (held,) = self._db.execute("SELECT count(*) FROM batches WHERE lane = ?", (lane,)).fetchone()
            if held >= limit.max_batches:
                self.dropped += 1
                if limit.drop == "newest":
                    return None
                self._db.execute(
                    "DELETE FROM batches WHERE seq IN (SELECT seq FROM batches WHERE lane = ? ORDER BY seq LIMIT ?)",
                    (lane, held - limit.max_batches + 1),
                )
        seq = self._next
        self._db.execute("INSERT INTO batches VALUES (?, ?, ?, ?)", (seq, build(seq), priority, lane))
        self._next += 1
        return seq

    def next_batches(self, limit: int = 100, skip: Collection[int] = ()) -> list[tuple[int, bytes]]:
        """Up to ``limit`` batches not in ``skip`` (those already on their way), the highest priority
        first and in sequence order within a priority."""
        rows = self._db.execute(
            "SELECT seq, payload FROM batches ORDER BY priority, seq LIMIT ?", (limit + len(skip),)
        ).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows if seq not in skip][:limit]

    def first(self) -> int | None:
        """The lowest sequence number still waiting, if any."""
        seq = self._db.execute("SELECT min(seq) FROM batches").fetchone()[0]
        return None if seq is None else int(seq)

    def forget(self, stored: list[tuple[int, int]]) -> None:
        """The cloud stored these inclusive sequence ranges: delete them, remember the mark (never
        past the numbers issued: a confirmation of the future is not taken on trust)."""
        mark = min(max(last for _, last in stored) + 1, self._next)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM batches WHERE seq BETWEEN ? AND ?", stored)
            self._db.execute("UPDATE counter SET next = max(next, ?)", (mark,))

    @property
    def next_seq(self) -> int:
        """The sequence number the next batch gets."""
        return self._next

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM batches").fetchone()[0])

    def close(self) -> None:
        self._db.close()
