"""glacierd.locks: one holder per key, and no lock file left once released."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from glacierd import locks


def test_a_held_lock_excludes_and_a_released_one_leaves_no_file(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    for n in range(50):
        with locks.exclusive(folder, f"/data/file-{n}") as mine:
            assert mine
            assert locks.held(folder, f"/data/file-{n}")
            with locks.exclusive(folder, f"/data/file-{n}") as again:
                assert not again, "a second holder of the same key"
            assert len(list(folder.iterdir())) == 1
        assert not locks.held(folder, f"/data/file-{n}")
    assert list(folder.iterdir()) == [], "released locks left their files"


def test_a_lock_taken_on_a_file_its_holder_just_deleted_is_taken_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race the deletion opens: a process opens the lock file, its holder then
    releases (deleting it), and the process locks the deleted file. That lock
    must not count, or a third process could lock the new file at the same name."""
    folder = tmp_path / "locks"
    real_flock = fcntl.flock
    raced = []

    def flock_after_the_holder_let_go(fd: int, operation: int) -> None:
        if not raced:  # between our open and our flock, the holder released
            raced.append(True)
            for name in os.listdir(folder):
                os.unlink(folder / name)
        real_flock(fd, operation)

    monkeypatch.setattr(locks.fcntl, "flock", flock_after_the_holder_let_go)
    with locks.exclusive(folder, "/data/contended") as mine:
        assert mine and raced
        monkeypatch.setattr(locks.fcntl, "flock", real_flock)
        with locks.exclusive(folder, "/data/contended") as other:
            assert not other, "two processes would both hold /data/contended"
        assert locks.held(folder, "/data/contended")
    assert list(folder.iterdir()) == []


def test_a_lock_file_left_by_a_killed_holder_is_reused_then_removed(tmp_path: Path) -> None:
    folder = tmp_path / "locks"
    with locks.exclusive(folder, "k"):
        (left,) = folder.iterdir()
    left.touch()  # as a holder killed with its lock taken would have left it
    assert not locks.held(folder, "k")
    with locks.exclusive(folder, "k") as mine:
        assert mine
    assert not left.exists()
