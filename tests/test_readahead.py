"""Read-ahead: the first parts, read and hashed before the upload is planned, are
used only when they are of the file the upload finds, cut the same way."""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from glacierd.emulator import Emulator
from glacierd.glacier import treehash
from glacierd.readahead import FileIdentity, ReadAhead
from glacierd.store.tables import parts
from tests.conftest import MIB, random_file, vault_uploader


def identity(path: Path) -> FileIdentity:
    st = os.stat(path)
    return FileIdentity(st.st_size, st.st_mtime_ns, st.st_ino)


def test_first_parts_come_with_both_hashes_of_their_bytes(tmp_path: Path) -> None:
    data = random_file(tmp_path / "f.bin", 3 * MIB + 5)
    with ReadAhead(tmp_path / "f.bin", MIB, 2) as ahead:
        ready = ahead.claim(str(tmp_path / "f.bin"), identity(tmp_path / "f.bin"), MIB)
        assert ahead.claim(str(tmp_path / "f.bin"), identity(tmp_path / "f.bin"), MIB) == []
    assert [(r.part.index, r.part.offset, r.part.length) for r in ready] == [
        (0, 0, MIB), (1, MIB, MIB)]
    for r in ready:
        piece = data[r.part.offset:r.part.offset + r.part.length]
        assert bytes(r.data) == piece
        assert r.digests.sha256 == hashlib.sha256(piece).hexdigest()
        assert r.digests.tree_hash == treehash.tree_hash(piece)
        assert len(r.buffer) == MIB  # a buffer of the upload's pool: one whole part


def test_a_big_file_is_cut_as_the_upload_cuts_it(tmp_path: Path) -> None:
    # 10,000 parts of 1 MiB are too few for 10,000 MiB + 1: the part size doubles.
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as fh:
        fh.truncate(10_000 * MIB + 1)
    with ReadAhead(path, MIB, 1) as ahead:
        ready = ahead.claim(str(path), identity(path), 2 * MIB)
    assert [(r.part.index, r.part.length) for r in ready] == [(0, 2 * MIB)]


def test_parts_of_another_cut_or_a_changed_file_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    random_file(path, 2 * MIB)
    before = identity(path)
    with ReadAhead(path, MIB, 2) as ahead:
        ready_wrong_cut = ahead.claim(str(path), before, 2 * MIB)
    with ReadAhead(path, MIB, 2) as ahead:
        ahead.wait()
        os.utime(path, ns=(before.mtime_ns + 1, before.mtime_ns + 1))
        ready_changed = ahead.claim(str(path), identity(path), MIB)
    with ReadAhead(path, MIB, 2) as ahead:
        ready_other_file = ahead.claim(str(tmp_path / "other.bin"), identity(path), MIB)
    assert ready_wrong_cut == [] and ready_changed == [] and ready_other_file == []


@pytest.mark.parametrize("kind", ["fifo", "symlink", "missing", "empty", "directory", "none"])
def test_nothing_is_read_from_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "real.bin"
    random_file(target, MIB)
    path: Path | None = tmp_path / "x"
    assert path is not None
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer came
    elif kind == "symlink":
        path.symlink_to(target)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "none":
        path = None
    done = threading.Event()
    result: list[object] = []

    def use() -> None:
        with ReadAhead(path, MIB, 4) as ahead:
            result.extend(ahead.claim(str(path), identity(target), MIB))
        done.set()

    threading.Thread(target=use, daemon=True).start()
    assert done.wait(10), "the read-ahead blocked"
    assert result == []


def test_a_symlink_is_read_when_configured_to_follow(tmp_path: Path) -> None:
    data = random_file(tmp_path / "real.bin", MIB + 1)
    (tmp_path / "link").symlink_to(tmp_path / "real.bin")
    with ReadAhead(tmp_path / "link", MIB, 4, follow_symlinks=True) as ahead:
        ready = ahead.claim(str(tmp_path / "link"), identity(tmp_path / "real.bin"), MIB)
    assert b"".join(bytes(r.data) for r in ready) == data


def test_the_interpreter_switch_interval_is_given_back(tmp_path: Path) -> None:
    random_file(tmp_path / "f.bin", 2 * MIB)
    before = sys.getswitchinterval()
    with ReadAhead(tmp_path / "f.bin", MIB, 2) as ahead:
        ahead.claim(str(tmp_path / "f.bin"), identity(tmp_path / "f.bin"), MIB)
    assert sys.getswitchinterval() == before


def counting_digests(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the parts the upload engine reads and hashes itself."""
    from glacierd.glacier import parts as parts_mod

    calls: list[int] = []
    real = parts_mod.digests

    def digests(data: memoryview) -> treehash.Digests:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(parts_mod, "digests", digests)
    return calls


def test_upload_sends_the_parts_read_ahead_without_reading_them_again(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    uploader = vault_uploader(tmp_path, emulator, concurrency=3)
    data = random_file(tmp_path / "f.bin", 5 * MIB + 3)
    hashed = counting_digests(monkeypatch)
    with ReadAhead(tmp_path / "f.bin", MIB, 3) as ahead:
        outcome = uploader.upload_path(tmp_path / "f.bin", ahead)
    assert outcome.status == "archived"
    assert emulator.state.archive_bytes("v", outcome.archive_id or "") == data
    assert uploader.store.archives()[0].tree_hash == treehash.tree_hash(data)
    assert hashed == [MIB, MIB, 3]  # parts 3, 4 and 5; 0-2 were read ahead
    assert emulator.stats()["part_bytes_received"] == len(data)


def test_resumed_upload_uses_only_the_parts_it_still_needs(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    uploader = vault_uploader(tmp_path, emulator, concurrency=2)
    path = tmp_path / "f.bin"
    data = random_file(path, 4 * MIB)
    # An earlier run that stopped after part 0: the store and Glacier both have it.
    store, client, st = uploader.store, uploader.backend.client, os.stat(path)
    record = store.file_seen(str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    upload = store.create_upload(record.id, "v", "token", "an earlier run", MIB, st.st_size,
                                 st.st_mtime_ns, st.st_ino)
    upload = store.set_upload_id(upload, client.initiate_multipart_upload("v", MIB))
    assert upload.upload_id is not None
    tree = client.upload_part("v", upload.upload_id, 0, data[:MIB])
    store.part_acknowledged(upload, 0, 0, MIB, tree)
    hashed = counting_digests(monkeypatch)
    with ReadAhead(path, MIB, 2) as ahead:
        outcome = uploader.upload_path(path, ahead)
    assert outcome.status == "archived"
    assert emulator.state.archive_bytes("v", outcome.archive_id or "") == data
    assert hashed == [MIB, MIB]  # parts 2 and 3; part 1 was read ahead, part 0 acked
    with store.engine.connect() as conn:
        assert conn.execute(select(parts.c.index).order_by(parts.c.index)).scalars().all() == [
            0, 1, 2, 3]
    assert emulator.stats()["part_bytes_received"] == len(data)


def test_a_file_changed_after_the_read_ahead_is_uploaded_as_it_is_now(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    uploader = vault_uploader(tmp_path, emulator, concurrency=2)
    path = tmp_path / "f.bin"
    random_file(path, 2 * MIB, seed=1)
    hashed = counting_digests(monkeypatch)
    with ReadAhead(path, MIB, 2) as ahead:
        ahead.wait()
        data = random_file(path, 2 * MIB, seed=2)  # rewritten in place: new mtime
        os.utime(path, ns=(1, 10**18))
        outcome = uploader.upload_path(path, ahead)
    assert outcome.status == "archived"
    assert emulator.state.archive_bytes("v", outcome.archive_id or "") == data
    assert hashed == [MIB, MIB]


def test_parts_nobody_used_are_given_back_when_the_file_is_done(
        tmp_path: Path, emulator: Emulator) -> None:
    uploader = vault_uploader(tmp_path, emulator, concurrency=2)
    path = tmp_path / "f.bin"
    random_file(path, 3 * MIB)
    assert uploader.upload_path(path).status == "archived"
    ahead = ReadAhead(path, MIB, 2)
    assert uploader.upload_path(path, ahead).status == "skipped"
    # Kept, the two buffers would be on top of the next upload's own.
    assert ahead.claim(str(path), identity(path), MIB) == []
