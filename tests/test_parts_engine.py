"""The one transfer engine for parts, on its own: buffers, failures, stops."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from glacierd.glacier import limits, treehash
from glacierd.glacier.parts import FileShrankError, PartEngine
from tests.conftest import MIB, random_file


def _fd(path: Path) -> int:
    return os.open(path, os.O_RDONLY)


def test_every_part_once_with_both_hashes_and_a_buffer_no_larger_than_the_file(
        tmp_path: Path) -> None:
    data = random_file(tmp_path / "f.bin", 5 * MIB + 3)
    small = random_file(tmp_path / "s.bin", 1024, seed=1)
    engine = PartEngine()
    got: dict[int, tuple[bytes, str, int]] = {}
    lock = threading.Lock()

    def send(part: limits.PartRange, view: memoryview, d: treehash.Digests,
             release: object) -> None:
        with lock:
            got[part.index] = (bytes(view), d.tree_hash, len(view.obj))  # type: ignore[arg-type]

    fd = _fd(tmp_path / "f.bin")
    engine.run(fd, list(limits.part_ranges(len(data), MIB)), MIB, 3, send)
    os.close(fd)
    assert b"".join(got[i][0] for i in range(6)) == data
    assert all(got[i][1] == treehash.tree_hash(got[i][0]) for i in got)
    got.clear()
    fd = _fd(tmp_path / "s.bin")
    engine.run(fd, list(limits.part_ranges(1024, 16 * MIB)), 16 * MIB, 4, send)
    os.close(fd)
    engine.close()
    assert got[0][0] == small and got[0][2] == 1024, "a 1 KiB file gets a 1 KiB buffer"


def test_the_first_failure_stops_reading_and_is_raised(tmp_path: Path) -> None:
    random_file(tmp_path / "f.bin", 20 * MIB)
    sent: list[int] = []

    def send(part: limits.PartRange, view: memoryview, d: treehash.Digests,
             release: object) -> None:
        sent.append(part.index)
        if part.index == 1:
            raise RuntimeError("the service refused part 1")

    engine = PartEngine()
    fd = _fd(tmp_path / "f.bin")
    with pytest.raises(RuntimeError, match="part 1"):
        engine.run(fd, list(limits.part_ranges(20 * MIB, MIB)), MIB, 2, send)
    os.close(fd)
    engine.close()
    # Parts already read when part 1 failed (one a buffer: 2) may still go; no other.
    assert len(sent) - sent.index(1) - 1 <= 2 and len(sent) < 20, sent


def test_stop_and_a_shrinking_file(tmp_path: Path) -> None:
    random_file(tmp_path / "f.bin", 8 * MIB)
    stop = threading.Event()

    def send(part: limits.PartRange, view: memoryview, d: treehash.Digests,
             release: object) -> None:
        stop.set()  # SIGTERM arrives while the first part is sent

    engine = PartEngine()
    fd = _fd(tmp_path / "f.bin")
    with pytest.raises(InterruptedError):
        engine.run(fd, list(limits.part_ranges(8 * MIB, MIB)), MIB, 1, send, stop=stop)
    os.truncate(tmp_path / "f.bin", 2 * MIB + 5)
    with pytest.raises(FileShrankError):
        engine.run(fd, list(limits.part_ranges(8 * MIB, MIB)), MIB, 2,
                   lambda *a: None)
    os.close(fd)
    engine.close()
