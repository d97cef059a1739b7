"""Store-and-forward: every telemetry batch is written here first and deleted only once the cloud
has confirmed that it stored it (a ``TelemetryAck``), so nothing is lost while the cloud or the
broker is unreachable or restarts, or the car restarts; batches go out in the order they were made.

Sequence numbers must never repeat, even after every batch was confirmed and deleted and the car
restarted (the cloud would take a repeat for a duplicate and drop it): the next number is one past
the highest of the stored batches and the confirmed ones, and the confirmed high-water mark is
written in the same transaction that deletes them. Adding a batch is then a single INSERT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

__all__ = ["Spool"]


class Spool:
    """Batches by sequence number in a SQLite file (``:memory:`` for tests)."""

    def __init__(self, path: Path | str) -> None:
        if isinstance(path, Path):
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS batches (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 0), next INTEGER)"
        )
        self._db.execute("INSERT OR IGNORE INTO counter VALUES (0, 0)")
        ((stored, acknowledged),) = self._db.execute(
            "SELECT (SELECT max(seq) + 1 FROM batches), next FROM counter"
        ).fetchall()
        self._next = int(max(stored or 0, acknowledged))

    def add(self, build: Callable[[int], bytes]) -> int:
        """Take the next sequence number, store ``build(seq)`` under it, return the number."""
        seq = self._next
        self._db.execute("INSERT INTO batches VALUES (?, ?)", (seq, build(seq)))
        self._next += 1
        return seq

    def oldest(self, limit: int = 100, after: int = -1) -> list[tuple[int, bytes]]:
        """Up to ``limit`` batches with sequence numbers above ``after``, in order."""
        rows = self._db.execute(
            "SELECT seq, payload FROM batches WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

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
