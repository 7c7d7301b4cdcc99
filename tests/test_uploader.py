"""The uploader in-process, against the emulator: outcomes are checked in the
vault (bytes, tree hashes) and in the store (rows), not by absence of errors."""

from __future__ import annotations

import datetime as dt
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from glacierd import description
from glacierd.backends.vault import VaultBackend
from glacierd.emulator import Emulator
from glacierd.glacier import GlacierClient, treehash
from glacierd.store.tables import parts, uploads
from glacierd.uploader import Uploader, UploadSettings
from tests.conftest import (
    MIB,
    DriverWatch,
    aws_config,
    client_for,
    fast_policy,
    random_file,
    store_at_head,
    vault_uploader,
)

open_store = store_at_head


def make_uploader(tmp_path: Path, client: GlacierClient, **settings: object) -> Uploader:
    settings.setdefault("part_size", MIB)
    return Uploader(open_store(tmp_path), VaultBackend(client, "v"),
                    UploadSettings(**settings))  # type: ignore[arg-type]


def vault_archives(emu: Emulator) -> list[dict[str, object]]:
    return emu.state._archives("v")


@pytest.mark.parametrize("size", [1, MIB - 1, MIB, MIB + 1, 50 * MIB])
def test_uploads_finish_under_fault_rate_0_2(tmp_path: Path, size: int) -> None:
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu, retry_policy=fast_policy(attempts=30, seed=size))
        client.create_vault("v")
        uploader = make_uploader(tmp_path, client, concurrency=4)
        data = random_file(tmp_path / "f.bin", size, seed=size)
        emu.faults.configure(0.2, seed=size)
        outcome = uploader.upload_path(tmp_path / "f.bin")
        emu.faults.configure(0.0)
        assert outcome.status == "archived", outcome
        archives = vault_archives(emu)
        assert len(archives) == 1
        assert archives[0]["SHA256TreeHash"] == treehash.tree_hash(data)
        assert emu.state.archive_bytes("v", outcome.archive_id or "") == data
        catalog = uploader.store.archives()
        assert [(a.archive_id, a.size, a.tree_hash) for a in catalog] == [
            (outcome.archive_id, size, treehash.tree_hash(data))]
        info = description.decode(str(archives[0]["ArchiveDescription"]))
        assert info is not None and info.path == str(tmp_path / "f.bin") and info.size == size
        if size >= 50 * MIB:  # ~53 requests: faults certainly struck
            assert sum(emu.stats()["faults"].values()) >= 5


def test_parts_are_recorded_with_offsets_and_hashes(tmp_path: Path, emulator: Emulator) -> None:
    uploader = vault_uploader(tmp_path, emulator)
    data = random_file(tmp_path / "f.bin", 3 * MIB + 7)
    uploader.upload_path(tmp_path / "f.bin")
    with uploader.store.engine.connect() as conn:
        acked = conn.execute(select(parts.c.index, parts.c.offset, parts.c.length,
                                    parts.c.tree_hash).order_by(parts.c.index)).all()
        upload = conn.execute(select(uploads.c.status, uploads.c.tree_hash,
                                     uploads.c.upload_id)).one()
    assert [tuple(p) for p in acked] == [
        (i, i * MIB, min(MIB, len(data) - i * MIB),
         treehash.tree_hash(data[i * MIB:(i + 1) * MIB])) for i in range(4)]
    assert upload.status == "done" and upload.tree_hash == treehash.tree_hash(data)
    assert upload.upload_id


def test_empty_file_is_archived_without_a_request(tmp_path: Path, emulator: Emulator) -> None:
    uploader = vault_uploader(tmp_path, emulator)
    (tmp_path / "empty").write_bytes(b"")
    before = sum(emulator.stats()["requests"].values())
    outcome = uploader.upload_path(tmp_path / "empty")
    assert outcome.status == "archived" and outcome.archive_id is None
    assert sum(emulator.stats()["requests"].values()) == before
    [archive] = uploader.store.archives()
    assert archive.archive_id is None and archive.size == 0
    assert uploader.store.file(str(tmp_path / "empty")).state == "archived"  # type: ignore[union-attr]


def test_unchanged_file_is_not_uploaded_twice_but_a_new_version_is(
        tmp_path: Path, emulator: Emulator) -> None:
    uploader = vault_uploader(tmp_path, emulator)
    path = tmp_path / "doc.txt"
    path.write_bytes(b"version one")
    first = uploader.upload_path(path)
    assert uploader.upload_path(path).status == "skipped"
    path.write_bytes(b"version two, longer")
    second = uploader.upload_path(path)
    assert second.status == "archived" and second.archive_id != first.archive_id
    assert [a.size for a in uploader.store.archives()] == [11, 19]
    assert emulator.stats()["archives_created"] == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_recorded_as_failed(tmp_path: Path, emulator: Emulator) -> None:
    client = client_for(emulator)
    uploader = make_uploader(tmp_path, client)
    path = tmp_path / "secret"
    path.write_bytes(b"x")
    path.chmod(0)
    outcome = uploader.upload_path(path)
    assert outcome.status == "failed" and "permission denied" in (outcome.error or "")


def test_special_files_symlinks_and_vanished_files_are_refused_with_reasons(
        tmp_path: Path, emulator: Emulator) -> None:
    """No retry can make a FIFO, a socket, an unfollowed link or a missing path a
    file: each is refused with its reason, and never stored to be retried."""
    uploader = vault_uploader(tmp_path, emulator)
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    (tmp_path / "target").write_bytes(b"data")
    (tmp_path / "link").symlink_to(tmp_path / "target")
    cases = {"pipe": "is a FIFO", "sock": "is a socket", "link": "symbolic link",
             "gone": "no such file"}
    for name, reason in cases.items():
        outcome = uploader.upload_path(tmp_path / name)
        assert outcome.status == "gone" and reason in (outcome.error or ""), outcome
        assert uploader.store.file(str(tmp_path / name)) is None
    sock.close()
    follow = make_uploader(tmp_path, uploader.backend.client, follow_symlinks=True)
    assert follow.upload_path(tmp_path / "link").status == "archived"


def test_failing_upload_stays_in_the_store_and_resumes_later(tmp_path: Path) -> None:
    with Emulator(tmp_path / "emu") as emu:
        client = client_for(emu, retry_policy=fast_policy(attempts=3))
        client.create_vault("v")
        uploader = make_uploader(tmp_path, client, concurrency=1)
        data = random_file(tmp_path / "f.bin", 4 * MIB)
        # Let two parts through, then fail everything (one part at a time, so the
        # first two are acknowledged before the faults begin).
        sent = {"n": 0}
        original = client.upload_part

        def flaky(*args: object, **kw: object) -> str:
            sent["n"] += 1
            if sent["n"] > 2:
                emu.faults.configure(1.0, ["503"])
            return original(*args, **kw)  # type: ignore[arg-type]

        client.upload_part = flaky  # type: ignore[method-assign]
        outcome = uploader.upload_path(tmp_path / "f.bin")
        assert outcome.status == "failed" and "ServiceUnavailable" in (outcome.error or "")
        record = uploader.store.file(str(tmp_path / "f.bin"))
        assert record is not None and record.state == "failed" and record.attempts == 1
        assert record.retry_at is not None and record.retry_at > dt.datetime.now(dt.UTC)
        [unfinished] = uploader.store.unfinished_uploads()
        assert len(unfinished.parts) >= 2, "acknowledged parts are kept"
        emu.faults.configure(0.0)
        client.upload_part = original  # type: ignore[method-assign]
        emu.reset_stats()
        outcome = uploader.upload_path(tmp_path / "f.bin")
        assert outcome.status == "archived"
        assert emu.stats()["part_bytes_received"] <= len(data) - len(unfinished.parts) * MIB
        assert vault_archives(emu)[0]["SHA256TreeHash"] == treehash.tree_hash(data)


def test_progress_reaches_the_store_at_most_once_a_second(tmp_path: Path,
                                                          emulator: Emulator) -> None:
    client = client_for(emulator)
    client.create_vault("v")
    store = open_store(tmp_path)
    writes: list[int] = []
    original = store.update_progress

    def counting(*args: object, **kw: object) -> None:
        writes.append(1)
        original(*args, **kw)  # type: ignore[arg-type]

    store.update_progress = counting  # type: ignore[method-assign]
    frozen = [100.0]
    uploader = Uploader(store, VaultBackend(client, "v"), UploadSettings(part_size=MIB),
                        clock=lambda: frozen[0])
    random_file(tmp_path / "f.bin", 8 * MIB)
    uploader.upload_path(tmp_path / "f.bin")
    # The clock never moved: one write at the start of the window and one at the end.
    assert len(writes) <= 2
    with store.engine.connect() as conn:
        in_flight = conn.execute(select(func.max(uploads.c.bytes_in_flight))).scalar()
    assert in_flight == 0


def test_file_growing_during_upload_is_detected_and_uploaded_anew(
        tmp_path: Path, emulator: Emulator) -> None:
    client = client_for(emulator)
    client.create_vault("v")
    store = open_store(tmp_path)
    path = tmp_path / "growing.log"
    random_file(path, 4 * MIB, seed=1)
    grown = {"done": False}

    def grow(_path: str, done: int, _total: int) -> None:
        if done >= 2 * MIB and not grown["done"]:
            grown["done"] = True
            with open(path, "ab") as fh:
                fh.write(b"appended while uploading")

    uploader = Uploader(store, VaultBackend(client, "v"),
                        UploadSettings(part_size=MIB, concurrency=1),
                        on_progress=grow)
    outcome = uploader.upload_path(path)
    final = path.read_bytes()
    assert grown["done"] and outcome.status == "archived"
    [archive] = vault_archives(emulator)
    assert archive["SHA256TreeHash"] == treehash.tree_hash(final), "the new version, whole"
    assert emulator.state.archive_bytes("v", str(archive["ArchiveId"])) == final
    with store.engine.connect() as conn:
        statuses = [s for (s,) in conn.execute(select(uploads.c.status).order_by(uploads.c.id))]
    assert statuses == ["abandoned", "done"]
    assert client.list_multipart_uploads("v") == [], "the abandoned upload was aborted"


def test_cli_upload_exits_66_when_a_path_is_refused(tmp_path: Path, emulator: Emulator) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "c.toml"
    cfg.write_text(aws_config(emulator.endpoint_url, "v"))
    glacierd = [sys.executable, "-m", "glacierd.cli", "--config", str(cfg)]
    assert subprocess.run([*glacierd, "db", "upgrade"], timeout=60).returncode == 0
    (tmp_path / "ok.txt").write_text("fine")
    os.mkfifo(tmp_path / "pipe")
    answer = subprocess.run([*glacierd, "upload", str(tmp_path / "ok.txt"),
                             str(tmp_path / "pipe")], capture_output=True, text=True, timeout=60)
    assert answer.returncode == 66
    assert "refused" in answer.stderr and "is a FIFO" in answer.stderr
    assert "archived" in answer.stdout


def test_a_file_another_process_is_uploading_is_left_to_it(tmp_path: Path,
                                                           emulator: Emulator) -> None:
    import fcntl
    import hashlib

    locks = tmp_path / "state" / "locks"
    uploader = vault_uploader(tmp_path, emulator, lock_dir=locks)
    path = tmp_path / "shared.bin"
    data = random_file(path, 2 * MIB, seed=21)
    locks.mkdir(parents=True)
    name = hashlib.sha256(str(path).encode()).hexdigest()[:32]
    holder = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)  # "the daemon" holds this file
    try:
        busy = uploader.upload_path(path)
        assert busy.status == "busy"
        assert sum(emulator.stats()["requests"].values()) == 1, "only CreateVault was sent"
    finally:
        os.close(holder)
    done = uploader.upload_path(path)
    assert done.status == "archived"
    assert emulator.state.archive_bytes("v", done.archive_id or "") == data
    assert emulator.stats()["archives_created"] == 1
    assert list(locks.iterdir()) == [], "the lock's file outlived the upload"


def test_lost_complete_answer_with_vanished_upload_id_waits_for_the_inventory(
        tmp_path: Path, emulator: Emulator) -> None:
    """DESIGN invariant 5: never upload again; the next inventory confirms the archive."""
    import shutil

    from glacierd import catalog
    from glacierd.store.states import UploadStatus

    uploader = vault_uploader(tmp_path, emulator)
    client = uploader.backend.client
    path = tmp_path / "precious.bin"
    data = random_file(path, 3 * MIB + 3, seed=31)
    record = uploader.store.file_seen(str(path), len(data), path.stat().st_mtime_ns,
                                      path.stat().st_ino)
    # Run an upload up to Complete, let Complete succeed at Glacier, and lose its answer.
    original = client.complete_multipart_upload

    def answer_lost(*args: object, **kw: object) -> str:
        original(*args, **kw)  # type: ignore[arg-type]
        raise InterruptedError("crash before the commit")

    client.complete_multipart_upload = answer_lost  # type: ignore[method-assign]
    with pytest.raises(InterruptedError):
        uploader.upload_path(path)
    client.complete_multipart_upload = original  # type: ignore[method-assign]
    [pending] = uploader.store.unfinished_uploads()
    assert pending.status == UploadStatus.COMPLETING
    # Glacier forgets the upload id (as it may, some time after Complete).
    assert pending.upload_id is not None
    shutil.rmtree(emulator.state._upload_dir("v", pending.upload_id))
    outcome = uploader.upload_path(path)
    assert outcome.status == "unconfirmed"
    assert uploader.upload_path(path).status == "unconfirmed", "still not uploaded again"
    assert emulator.stats()["archives_created"] == 1
    assert uploader.store.file_by_id(record.id).state != "archived"
    # The next inventory finds it by token, tree hash and size.
    job = client.initiate_inventory_job("v")
    uploader.store.add_job(job, "v", "inventory")
    [job_record] = uploader.store.jobs(kind="inventory")
    found = catalog.fetch_inventory(client, uploader.store, job_record, tmp_path / "state",
                                    dt.datetime.now(dt.UTC))
    assert len(found.confirmed) == 1 and found.adopt == []
    [archive] = uploader.store.archives()
    assert archive.source_path == str(path) and archive.size == len(data)
    assert uploader.store.file_by_id(record.id).state == "archived"
    assert uploader.upload_path(path).status == "skipped"
    assert emulator.stats()["archives_created"] == 1, "one archive, ever"


def test_full_state_disk_stops_with_a_message_and_loses_nothing(
        tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The disk under the state database fills up mid-upload: the command stops
    with a message naming the database (exit code 74, no traceback); parts Glacier
    acknowledged meanwhile are adopted, not sent again, once there is room."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from glacierd.cli import main
    from glacierd.store import repository

    cfg = tmp_path / "c.toml"
    cfg.write_text(aws_config(emulator.endpoint_url, "v") + """
[upload]
part_size_mib = 1
concurrency = 1
""")
    assert main(["--config", str(cfg), "db", "upgrade"]) == 0
    data = random_file(tmp_path / "f.bin", 6 * MIB)
    disk = {"full": False, "parts": 0}
    real_engine = repository.create_store_engine

    def write(statement: str) -> None:
        verb = statement.lstrip().split(" ", 1)[0].upper()
        if verb not in ("INSERT", "UPDATE", "DELETE"):
            return
        if disk["full"]:
            raise sqlite3.OperationalError("database or disk is full")  # SQLITE_FULL
        if statement.lstrip().upper().startswith("INSERT INTO PARTS"):
            disk["parts"] += 1
            disk["full"] = disk["parts"] >= 2

    def engine_on_a_filling_disk(url: str, *args: object, **kw: object) -> Engine:
        engine = real_engine(url, *args, **kw)  # type: ignore[arg-type]

        @event.listens_for(engine, "do_connect")
        def connect(dialect: Any, _record: object, cargs: Any, cparams: Any) -> object:
            return DriverWatch(dialect.loaded_dbapi.connect(*cargs, **cparams), write)
        return engine

    monkeypatch.setattr(repository, "create_store_engine", engine_on_a_filling_disk)
    capsys.readouterr()
    assert main(["--config", str(cfg), "upload", str(tmp_path / "f.bin")]) == 74
    err = capsys.readouterr().err
    assert str(tmp_path / "state" / "glacierd.db") in err
    assert "the disk holding the state database is full" in err
    assert "Traceback" not in err
    assert emulator.state._archives("v") == []
    # Two parts were committed. The third may have been sent whole (its commit
    # failed) or cut short (a progress write failed first); with its buffer free
    # before its commit, one more (concurrency 1) may have been in flight too.
    sent_before = emulator.stats()["part_bytes_received"]
    assert 2 * MIB <= sent_before <= (3 + 1) * MIB
    store = store_at_head(tmp_path)
    [upload] = store.unfinished_uploads()
    store.close()
    assert upload.upload_id is not None
    held = emulator.state.list_parts("v", upload.upload_id, None, None)["Parts"]
    assert len(held) >= 2

    disk["full"] = False
    disk["parts"] = -10_000  # room again
    assert main(["--config", str(cfg), "upload", str(tmp_path / "f.bin")]) == 0
    [archive] = emulator.state._archives("v")
    assert archive["SHA256TreeHash"] == treehash.tree_hash(data)
    resent = emulator.stats()["part_bytes_received"] - sent_before
    assert resent == len(data) - len(held) * MIB, "parts Glacier held were adopted, not resent"


def test_resume_sends_what_the_plan_says_even_a_part_recorded_as_acknowledged(
        tmp_path: Path, emulator: Emulator) -> None:
    """A part the store records as acknowledged but the service does not list is sent
    again on resume, not skipped (which made Complete fail and the upload restart)."""
    uploader = vault_uploader(tmp_path, emulator, concurrency=1)
    data = random_file(tmp_path / "f.bin", 3 * MIB + 7, seed=33)
    original = uploader.backend.client.upload_part

    def loses_part_one(vault: str, upload_id: str, offset: int, *args: object,
                       **kw: object) -> str:
        if offset == MIB:  # a 2xx for bytes the service then lost
            return ""
        return original(vault, upload_id, offset, *args, **kw)  # type: ignore[arg-type]

    def crash(*_args: object, **_kw: object) -> None:
        raise KeyboardInterrupt("killed before Complete")

    uploader.backend.client.upload_part = loses_part_one  # type: ignore[method-assign,assignment]
    uploader._complete = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(KeyboardInterrupt):
        uploader.upload_path(tmp_path / "f.bin")
    [unfinished] = uploader.store.unfinished_uploads()
    assert sorted(unfinished.acked) == [0, 1, 2, 3]
    resumed = Uploader(uploader.store, VaultBackend(client_for(emulator), "v"),
                       uploader.settings)
    emulator.reset_stats()
    outcome = resumed.upload_path(tmp_path / "f.bin")
    assert outcome.status == "archived"
    assert emulator.stats()["part_bytes_received"] == MIB, "only the lost part, not from zero"
    [archive] = vault_archives(emulator)
    assert archive["SHA256TreeHash"] == treehash.tree_hash(data)
    kinds = [kind for kind, _ in resumed.store.events()]
    assert "part-lost" in kinds and "upload-abandoned" not in kinds


def test_a_queued_file_that_vanishes_leaves_the_queue_as_gone(tmp_path: Path,
                                                               emulator: Emulator) -> None:
    uploader = vault_uploader(tmp_path, emulator)
    path = tmp_path / "soon-gone.txt"
    path.write_text("here for a moment")
    st = path.stat()
    uploader.store.file_seen(str(path), st.st_size, st.st_mtime_ns, st.st_ino)  # queued
    path.unlink()
    outcome = uploader.upload_path(path)
    assert outcome.status == "gone"
    record = uploader.store.file(str(path))
    assert record is not None and record.state == "gone" and record.attempts == 0
    far = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    assert uploader.store.pending_files(far) == [], "not retried"
    path.write_text("back again")
    st = path.stat()
    assert uploader.store.file_seen(str(path), st.st_size, st.st_mtime_ns,
                                    st.st_ino).state == "pending"
    assert uploader.upload_path(path).status == "archived"
    never = uploader.upload_path(tmp_path / "never-existed.txt")
    assert never.status == "gone" and uploader.store.file(str(tmp_path / "never-existed.txt")) \
        is None, "an unknown path is not stored"


def test_a_one_part_files_part_commit_records_its_final_hash(tmp_path: Path,
                                                             emulator: Emulator) -> None:
    """A small file's only part and its final tree hash (invariant 5) are one commit:
    killed before Complete, the store already says completing, and the next run
    completes that upload (one archive)."""
    uploader = vault_uploader(tmp_path, emulator)
    data = random_file(tmp_path / "f.bin", 1000)
    after_part: list[tuple[str, str | None]] = []
    acknowledge = uploader.store.part_acknowledged

    def acknowledged(*args: object, **kw: object) -> None:
        acknowledge(*args, **kw)  # type: ignore[arg-type]
        with uploader.store.engine.connect() as conn:
            status, tree_hash = conn.execute(select(uploads.c.status, uploads.c.tree_hash)).one()
            after_part.append((status, tree_hash))

    class Killed(BaseException):
        pass

    def killed(*args: object, **kw: object) -> str:
        raise Killed

    complete = uploader.backend.complete
    uploader.store.part_acknowledged = acknowledged  # type: ignore[method-assign]
    uploader.backend.complete = killed  # type: ignore[method-assign]
    with pytest.raises(Killed):
        uploader.upload_path(tmp_path / "f.bin")
    assert after_part == [("completing", treehash.tree_hash(data))]
    uploader.backend.complete = complete  # type: ignore[method-assign]
    outcome = uploader.upload_path(tmp_path / "f.bin")
    assert outcome.status == "archived"
    assert len(emulator.state._archives("v")) == 1
    assert emulator.state.archive_bytes("v", outcome.archive_id or "") == data
    assert after_part == [("completing", treehash.tree_hash(data))], "no part sent again"


@pytest.mark.parametrize("queued", [True, False], ids=["queued by the watcher", "seen first"])
def test_a_small_file_is_four_synced_commits(tmp_path: Path, emulator: Emulator,
                                             queued: bool) -> None:
    """Each commit is an fsync on a real disk, so a small file's count is what bounds
    it there: its record and its upload's row (before Initiate), the upload id
    (before the part), the part with the final hash (after its 2xx), the archive
    (after Complete). A file queued by the watcher and one `glacierd upload` sees
    first go the same way."""
    from sqlalchemy import event

    uploader = vault_uploader(tmp_path, emulator)
    path = tmp_path / "f.bin"
    data = random_file(path, 1000)
    if queued:
        st = path.stat()
        uploader.store.files_seen([(str(path), st.st_size, st.st_mtime_ns, st.st_ino)])
    commits: list[int] = []
    event.listen(uploader.store.engine, "commit", lambda _conn: commits.append(1))
    outcome = uploader.upload_path(path)
    assert outcome.status == "archived"
    assert emulator.state.archive_bytes("v", outcome.archive_id or "") == data
    assert len(commits) == 4, len(commits)
