"""The spool: batches kept in order until acknowledged, sequence numbers that never repeat."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opensdv.vehicle.agent.spool import Spool

Step = st.one_of(st.just(("add", 0)), st.tuples(st.just("ack"), st.integers(0, 5)), st.just(("reopen", 0)))


@settings(max_examples=60, deadline=None)
@given(st.lists(Step, max_size=40))
def test_sequences_never_repeat_and_nothing_unacknowledged_is_lost(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, int]]
) -> None:
    path = tmp_path_factory.mktemp("spool") / "spool.db"
    spool = Spool(path)
    issued: list[int] = []
    acknowledged = -1
    for action, count in steps:
        if action == "add":
            issued.append(spool.add(lambda seq: f'{{"seq": {seq}}}'.encode()))
        elif action == "ack":
            waiting = spool.oldest(count)
            if waiting:
                acknowledged = waiting[-1][0]
                spool.ack_through(acknowledged)
        else:
            spool.close()
            spool = Spool(path)  # the car restarts
    assert issued == sorted(set(issued)) and issued == list(range(len(issued)))
    assert [seq for seq, _ in spool.oldest(1000)] == [seq for seq in issued if seq > acknowledged]
    assert all(payload == f'{{"seq": {seq}}}'.encode() for seq, payload in spool.oldest(1000))
    spool.close()


def test_a_restart_after_everything_was_acknowledged_continues_the_numbering(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    for _ in range(3):
        spool.add(lambda seq: b"{}")
    spool.ack_through(2)
    spool.close()
    again = Spool(tmp_path / "spool.db")
    assert len(again) == 0 and again.add(lambda seq: b"{}") == 3
