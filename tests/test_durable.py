"""Files that survive a crash mid-write: one at a time, and as a group commit (a campaign stage
writes three files per car; a timestamp must never be visible before the snapshot it names)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from opensdv.durable import WriteBatch, write_atomically


def test_a_file_is_replaced_whole_and_a_private_one_is_never_readable_by_others(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "key.pem"
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / ".key.pem.tmp").write_bytes(b"left over")
    os.chmod(tmp_path / "deep" / ".key.pem.tmp", 0o666)  # a leftover keeps its mode: it must not
    write_atomically(target, b"secret", private=True)
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["key.pem"]


def test_nothing_of_a_batch_is_visible_before_it_commits_then_all_of_it_is(tmp_path: Path) -> None:
    (tmp_path / "timestamp.json").write_bytes(b"old")
    batch = WriteBatch()
    batch.write(tmp_path / "2.snapshot.json", b"snapshot 2")
    batch.write(tmp_path / "timestamp.json", b"names snapshot 2")
    assert len(batch) == 2
    assert not (tmp_path / "2.snapshot.json").exists()
    assert (tmp_path / "timestamp.json").read_bytes() == b"old"
    batch.commit()
    assert (tmp_path / "2.snapshot.json").read_bytes() == b"snapshot 2"
    assert (tmp_path / "timestamp.json").read_bytes() == b"names snapshot 2"
    assert len(batch) == 0 and not list(tmp_path.glob(".*.tmp"))


def test_files_appear_in_the_order_written_and_only_after_every_one_is_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("sync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(Path(b).name), real_replace(a, b))[1])
    batch = WriteBatch()
    for name in ("1.targets.json", "timestamp.json", "2.targets.json"):
        batch.write(tmp_path / name, name.encode())
    batch.write(tmp_path / "timestamp.json", b"the last word")  # written again: it moves last
    batch.commit()
    assert events == ["sync"] * 3 + ["1.targets.json", "2.targets.json", "timestamp.json"]
    assert (tmp_path / "timestamp.json").read_bytes() == b"the last word"


def test_a_failed_sync_makes_nothing_of_the_batch_visible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "timestamp.json").write_bytes(b"old")
    batch = WriteBatch()
    batch.write(tmp_path / "3.snapshot.json", b"new")
    batch.write(tmp_path / "timestamp.json", b"new")

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    with pytest.raises(OSError, match="Input/output"):
        batch.commit()
    assert (tmp_path / "timestamp.json").read_bytes() == b"old"
    assert not (tmp_path / "3.snapshot.json").exists()
