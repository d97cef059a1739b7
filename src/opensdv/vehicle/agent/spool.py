"""Store-and-forward: every telemetry batch is written here first and deleted only once the MQTT
broker has acknowledged it (QoS 1 PUBACK), so nothing is lost while the cloud is unreachable or the
car restarts, and batches go out in the order they were made.

Sequence numbers must never repeat, even after every batch was acknowledged and deleted and the car
restarted (the cloud would take a repeat for a duplicate and drop it): the next number is one past
the highest of the stored batches and the acknowledged ones, and the acknowledged high-water mark
is written in the same transaction that deletes them. Adding a batch is then a single INSERT.
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

    def oldest(self, limit: int = 100) -> list[tuple[int, bytes]]:
        rows = self._db.execute("SELECT seq, payload FROM batches ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    def ack_through(self, seq: int) -> None:
        """Every batch up to ``seq`` reached the broker: delete them, remember the mark."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM batches WHERE seq <= ?", (seq,))
            self._db.execute("UPDATE counter SET next = max(next, ?)", (seq + 1,))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM batches").fetchone()[0])

    def close(self) -> None:
        self._db.close()
