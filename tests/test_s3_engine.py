"""The engine (uploader, restorer) on the S3 backend, in-process against the
emulator's S3 side: injected faults, lapsed restores, corrupt parts."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from pathlib import Path

import pytest

from glacierd.backends.s3 import S3Backend
from glacierd.emulator import Emulator
from glacierd.glacier import treehash
from glacierd.restorer import Restorer, RestoreSettings
from glacierd.s3 import naming
from glacierd.s3.client import S3Client
from glacierd.uploader import Uploader, UploadSettings
from tests.conftest import MIB, fast_policy, random_file, store_at_head

T0 = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def _backend(emu: Emulator, attempts: int = 25) -> S3Backend:
    s3 = S3Client(emu.region, endpoint_url=emu.endpoint_url, credentials=emu.credentials,
                  retry_policy=fast_policy(attempts=attempts, seed=4))
    if not s3.bucket_exists("engine"):
        s3.create_bucket("engine")
    return S3Backend(s3, "engine", prefix="p/", storage_class="DEEP_ARCHIVE")


def test_uploads_survive_a_fault_rate_of_0_2(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {name: random_file(src / name, size, seed=size % 97) for name, size in
             {"one.bin": 700 * 1000, "tiny": 1, "multi.bin": 40 * MIB + 3,
              "more.bin": 24 * MIB}.items()}
    with Emulator(tmp_path / "emu", seed=2026) as emu:
        backend = _backend(emu)
        uploader = Uploader(store_at_head(tmp_path), backend,
                            UploadSettings(part_size=8 * MIB, concurrency=3))
        emu.faults.configure(0.2, seed=2026)
        outcomes = [uploader.upload_path(src / name) for name in files]
        emu.faults.configure(0.0)
        uploader.close()
        stats = emu.stats()
        assert [o.status for o in outcomes] == ["archived"] * 4, outcomes
        assert sum(stats["faults"].values()) >= 3, stats["faults"]
        for outcome, (name, data) in zip(outcomes, files.items(), strict=True):
            assert outcome.archive_id is not None
            meta = emu.s3._object_meta("engine", outcome.archive_id)
            assert meta is not None and meta["Size"] == len(data)
            tree = meta["Metadata"].get(naming.TREE_HASH_TAG) or meta["Tags"][
                naming.TREE_HASH_TAG]
            assert tree == treehash.tree_hash(data), name
        objects = [k for k in backend.client.list_objects("engine", "p/")]
        assert len(objects) == 4, "one object per file, whatever was retried"


def _archived(tmp_path: Path, emu: Emulator, size: int) -> tuple[Restorer, bytes,
                                                                   list[dt.datetime]]:
    (tmp_path / "src").mkdir()
    data = random_file(tmp_path / "src" / "f.bin", size, seed=3)
    store = store_at_head(tmp_path)
    backend = _backend(emu, attempts=3)
    Uploader(store, backend, UploadSettings(part_size=8 * MIB)).upload_path(
        tmp_path / "src" / "f.bin")
    now = [T0]
    restorer = Restorer(store, backend, RestoreSettings(restore_dir=tmp_path / "out"),
                        now=lambda: now[0])
    return restorer, data, now


def test_a_lapsed_restore_is_requested_again_then_downloaded(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        restorer, data, _now = _archived(tmp_path, emu, 20 * MIB + 1)
        [record] = restorer.request(restorer.select([str(tmp_path / "src")]))
        assert record.archive_id is not None
        emu.s3.expire_restore("engine", record.archive_id)  # the copy lapsed unread
        restorer.poll()  # finds it gone: asks again
        assert restorer.store.restore(record.id).job_id != record.job_id
        restorer.poll()  # ready again (no delay here): downloads
        done = restorer.store.restore(record.id)
        assert done.status == "done", done
        assert emu.stats()["requests"]["RestoreObject"] == 2
        assert emu.stats()["requests"]["GetObject"] == 3, "one GET a part"
        out = tmp_path / "out" / str(tmp_path / "src" / "f.bin").lstrip("/")
        assert out.read_bytes() == data


def test_corrupt_parts_are_fetched_again_and_never_left_under_the_name(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        restorer, data, _now = _archived(tmp_path, emu, 9 * MIB)
        [record] = restorer.request(restorer.select([str(tmp_path / "src")]))
        emu.faults.configure(0.0, corrupt_rate=1.0, seed=1)
        restorer.poll()
        failed = restorer.store.restore(record.id)
        out = tmp_path / "out" / str(tmp_path / "src" / "f.bin").lstrip("/")
        assert failed.status == "failed" and "intact" in (failed.error or "")
        assert not out.exists()
        emu.faults.configure(0.0)
        again = restorer.request(restorer.select([str(tmp_path / "src")]))
        restorer.poll()
        assert restorer.store.restore(again[0].id).status == "done"
        assert out.read_bytes() == data


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_one_put_file_is_two_synced_commits(tmp_path: Path, encrypted: bool) -> None:
    """A file of one part goes to S3 as one PUT: its upload id needs no request and
    the PUT's 2xx makes the object, so nothing remote happens between the first
    look and the PUT, or between the PUT and the archive. Two synced commits: the
    record with the upload's row (and id), then the part with the archive. The
    rows are those of the longer way: the part, its hash, the archive."""
    from sqlalchemy import event

    path = tmp_path / "f.bin"
    data = random_file(path, 3000, seed=5)
    settings = UploadSettings(part_size=8 * MIB)
    if encrypted:
        from glacierd import age
        from glacierd.encryption import Encryption

        settings = UploadSettings(part_size=8 * MIB, encryption=Encryption(
            (age.parse_recipient(age.generate_identity()[1]),)))
    with Emulator(tmp_path / "emu") as emu:
        store = store_at_head(tmp_path)
        uploader = Uploader(store, _backend(emu), settings)
        commits: list[int] = []
        event.listen(store.engine, "commit", lambda _conn: commits.append(1))
        outcome = uploader.upload_path(path)
        uploader.close()
        assert outcome.status == "archived", outcome
        stats = emu.stats()
        meta = emu.s3._object_meta("engine", outcome.archive_id or "")
        assert meta is not None
    assert {op: n for op, n in stats["requests"].items()
            if op not in ("HeadBucket", "CreateBucket")} == {"PutObject": 1}, stats["requests"]
    assert len(commits) == 2, len(commits)
    assert store.unfinished_uploads() == []
    (archive,) = store.archives()
    assert archive.archive_id == outcome.archive_id
    assert archive.tree_hash == meta["Metadata"][naming.TREE_HASH_TAG]
    if not encrypted:
        assert archive.tree_hash == treehash.tree_hash(data)
    else:
        assert archive.plain_sha256 == hashlib.sha256(data).hexdigest()
    with sqlite3.connect(tmp_path / "state" / "glacierd.db") as conn:
        rows = conn.execute("SELECT p.\"index\", p.length, p.adopted, u.status, u.upload_id, "
                            "u.bytes_acked, u.tree_hash FROM parts p JOIN uploads u "
                            "ON u.id = p.upload_id").fetchall()
    assert rows == [(0, meta["Size"], 0, "done", f"put:{rows[0][4][4:]}", meta["Size"],
                     archive.tree_hash)], rows
