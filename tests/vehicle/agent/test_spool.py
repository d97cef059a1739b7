"""The spool: batches kept in order until the cloud confirms them, sequence numbers that never repeat."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensdv.vehicle.agent.spool import LaneLimit, Spool

Step = st.one_of(
    st.just(("add", 0, 0)),
    st.tuples(st.just("confirm"), st.integers(0, 5), st.integers(0, 3)),
    st.just(("reopen", 0, 0)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(Step, max_size=40))
def test_sequences_never_repeat_and_nothing_unconfirmed_is_lost(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int, int]]
) -> None:
    """Confirmations come for any ranges, in any order (a resend's, a repeat's), not only the oldest."""
    path = tmp_path_factory.mktemp("spool") / "spool.db"
    spool = Spool(path)
    issued: list[int] = []
    confirmed: set[int] = set()
    for action, skip, count in steps:
        if action == "add":
            issued.append(spool.add(lambda seq: f'{{"seq": {seq}}}'.encode()))
        elif action == "confirm" and issued:
            first = issued[min(skip, len(issued) - 1)]
            last = min(first + count, issued[-1])
            spool.forget([(first, last)])
            confirmed |= set(range(first, last + 1))
        elif action == "reopen":
            spool.close()
            spool = Spool(path)  # the car restarts
    assert issued == list(range(len(issued)))
    waiting = [seq for seq in issued if seq not in confirmed]
    assert [seq for seq, _ in spool.next_batches(1000)] == waiting and len(spool) == len(waiting)
    assert spool.first() == (waiting[0] if waiting else None)
    assert all(payload == f'{{"seq": {seq}}}'.encode() for seq, payload in spool.next_batches(1000))
    after = len(issued) // 2 - 1
    assert [seq for seq, _ in spool.next_batches(2, skip=set(range(after + 1)))] == [seq for seq in waiting if seq > after][:2]
    spool.close()


def test_a_restart_after_everything_was_confirmed_continues_the_numbering(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for _ in range(3):
        spool.add(lambda seq: b"{}")
    spool.forget([(2, 2), (0, 1)])
    spool.close()
    again = Spool(tmp_path / "spool.db")
    assert len(again) == 0 and again.add(lambda seq: b"{}") == 3


def test_a_confirmation_of_numbers_never_issued_does_not_move_the_numbering(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    spool.add(lambda seq: b"{}")
    spool.forget([(0, 1_000_000)])
    spool.close()
    assert Spool(tmp_path / "spool.db").add(lambda seq: b"{}") == 1


def test_higher_priority_goes_first_in_order_and_a_full_lane_drops_what_its_campaign_says(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    telemetry = [spool.add(lambda seq: b"t") for _ in range(2)]  # 0, 1
    oldest_first = LaneLimit(2, "oldest")
    urgent = [spool.add(lambda seq: b"u", priority=0, lane="urgent", limit=oldest_first) for _ in range(3)]  # 2, 3, 4
    keep = LaneLimit(1, "newest")
    kept = [spool.add(lambda seq: b"k", priority=9, lane="keep", limit=keep) for _ in range(2)]
    assert urgent == [2, 3, 4] and kept == [5, None] and spool.dropped == 2
    assert [seq for seq, _ in spool.next_batches(10)] == [3, 4, *telemetry, 5]  # 2 went: its lane was full
    assert [seq for seq, _ in spool.next_batches(2, skip={3, 4})] == telemetry  # 3 and 4 are on their way
    spool.close()


def test_a_spool_written_before_priorities_keeps_its_batches(tmp_path: Path) -> None:
    import sqlite3

    old = sqlite3.connect(tmp_path / "spool.db")
    old.execute("CREATE TABLE batches (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    old.execute("INSERT INTO batches VALUES (0, x'7b7d')")
    old.commit()
    old.close()
    spool = Spool(tmp_path / "spool.db")
    assert spool.next_batches() == [(0, b"{}")] and spool.add(lambda seq: b"{}", priority=0) == 1
    assert [seq for seq, _ in spool.next_batches()] == [1, 0]
