"""The daemon's scheduled work, in-process, with the clock passed in."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from glacierd import description
from glacierd.backends.vault import VaultBackend
from glacierd.config import PackSection, UploadSection
from glacierd.daemon import Daemon, local_config
from glacierd.emulator import Emulator
from glacierd.store import schema
from glacierd.store.db import create_store_engine
from tests.conftest import client_for

T0 = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


@contextmanager
def prepared_daemon(tmp_path: Path, emu: Emulator, now: list[dt.datetime],
                    upload: UploadSection | None = None, **client_kw: object) -> Iterator[Daemon]:
    """A daemon with everything started but its loop: the test calls its jobs."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    config = local_config(tmp_path / "state", [inbox], emu.endpoint_url,
                          emu.credentials.access_key, emu.credentials.secret_key)
    # these tests follow each file to its own archive: no packing (tests/test_pack.py packs)
    config = replace(config, pack=PackSection(threshold=0))
    if upload is not None:
        config = replace(config, upload=upload)
    engine = create_store_engine(config.database_url)
    schema.upgrade(engine)
    engine.dispose()
    daemon = Daemon(config, client=client_for(emu, **client_kw), now=lambda: now[0])
    daemon.prepare()
    try:
        yield daemon
    finally:
        daemon.lock.release()


def test_inventory_is_requested_on_schedule_and_fetched(tmp_path: Path) -> None:
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        assert daemon.store is not None
        daemon.maybe_request_inventory()
        assert len(daemon.store.jobs(kind="inventory")) == 1
        now[0] = T0 + dt.timedelta(days=6)
        daemon.maybe_request_inventory()
        assert len(daemon.store.jobs(kind="inventory")) == 1, "not due before 7 days"
        daemon.poll_jobs()
        [job] = daemon.store.jobs(kind="inventory")
        assert job.status == "Downloaded" and job.output_path
        doc = json.loads(Path(job.output_path).read_text())
        assert doc["VaultARN"].endswith(":vaults/local")
        assert (Path(job.output_path).stat().st_mode & 0o777) == 0o600
        now[0] = T0 + dt.timedelta(days=7, seconds=1)
        daemon.maybe_request_inventory()
        assert len(daemon.store.jobs(kind="inventory")) == 2


def test_housekeeping_aborts_only_this_hosts_untracked_uploads(tmp_path: Path) -> None:
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        client = daemon.target.glacier

        def start(host: str, token: str) -> str:
            desc = description.encode(description.ArchiveInfo(
                path="/x", host=host, size=1, mtime_ns=1, token=token))
            return client.initiate_multipart_upload("local", 2**20, desc)

        orphan = start(daemon.host, "orphan-token")
        other_host = start("another-machine", "their-token")
        foreign = client.initiate_multipart_upload("local", 2**20, "not glacierd's")
        assert daemon.store is not None
        daemon.store.event("info", "old", "an old event")
        now[0] = T0 + dt.timedelta(days=60)
        daemon.housekeeping()
        left = {u["MultipartUploadId"] for u in client.list_multipart_uploads("local")}
        assert left == {other_host, foreign} and orphan not in left
        assert "old" not in [k for k, _ in daemon.store.events()]


def test_housekeeping_aborts_the_empty_twin_of_a_retried_initiate(tmp_path: Path) -> None:
    """Initiate's answer was lost and the retry made a second upload with the same
    description: the one the store recorded is kept, its empty twin aborted."""
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        assert daemon.store is not None
        client = daemon.target.glacier
        desc = description.encode(description.ArchiveInfo(
            path=str(tmp_path / "inbox" / "f"), host=daemon.host, size=2**20, mtime_ns=1,
            token="tok"))
        record = daemon.store.file_seen(str(tmp_path / "inbox" / "f"), 2**20, 1, 1)
        upload = daemon.store.create_upload(record.id, "local", "tok", desc, 2**20, 2**20, 1, 1)
        lost_answer = client.initiate_multipart_upload("local", 2**20, desc)
        daemon.housekeeping()  # its id is not recorded yet: spared
        assert len(client.list_multipart_uploads("local")) == 1
        kept = client.initiate_multipart_upload("local", 2**20, desc)
        daemon.store.set_upload_id(upload, kept)
        daemon.housekeeping()
        left = [u["MultipartUploadId"] for u in client.list_multipart_uploads("local")]
        assert left == [kept] and lost_answer != kept


def test_daemon_downloads_a_requested_restore_and_status_shows_it(tmp_path: Path) -> None:
    from glacierd import status
    from glacierd.uploader import Uploader, UploadSettings
    from glacierd.wiring import make_restorer

    # One clock for the emulator, the client's signatures and the daemon.
    now = [dt.datetime.now(dt.UTC)]
    start = now[0]
    with (Emulator(tmp_path / "emu", job_delay=3600, clock=lambda: now[0].timestamp()) as emu,
          prepared_daemon(tmp_path, emu, now, clock=lambda: now[0]) as daemon):
        assert daemon.store is not None
        src = tmp_path / "src"
        src.mkdir()
        (src / "doc.txt").write_bytes(b"bring me back")
        Uploader(daemon.store, VaultBackend(daemon.target.glacier, "local"),
                 UploadSettings()).upload_path(
            src / "doc.txt")
        restorer = make_restorer(daemon.config, daemon.store, daemon.backend, now=daemon.now)
        [record] = restorer.request(restorer.select([str(src)]))  # what `restore` does
        daemon.poll_jobs()
        shown = status.collect(daemon.store)["restores"]
        assert [(r["path"], r["status"]) for r in shown] == [(str(src / "doc.txt"),
                                                              "waiting")]
        now[0] = start + dt.timedelta(hours=2)  # the job's delay has passed
        daemon.poll_jobs()
        done = daemon.store.restore(record.id)
        assert done.status == "done"
        assert Path(done.dest_path).read_bytes() == b"bring me back"
        assert status.collect(daemon.store)["restores"] == []


def test_drain_leaves_a_busy_file_for_the_next_pass(tmp_path: Path) -> None:
    import fcntl
    import hashlib
    import os

    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        assert daemon.store is not None
        inbox = tmp_path / "inbox"
        for name in ("a.txt", "b.txt"):
            (inbox / name).write_text(name)
            st = (inbox / name).stat()
            daemon.store.file_seen(str(inbox / name), st.st_size, st.st_mtime_ns, st.st_ino)
        locks = daemon.config.state.dir / "locks"
        locks.mkdir(exist_ok=True)
        key = hashlib.sha256(str(inbox / "a.txt").encode()).hexdigest()[:32]
        holder = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(holder, fcntl.LOCK_EX)
        try:
            daemon.drain()  # returns: it does not spin on the busy file
        finally:
            os.close(holder)
        states = daemon.store.count_files()
        assert states == {"pending": 1, "archived": 1}
        daemon.drain()
        assert daemon.store.count_files() == {"archived": 2}


def test_a_file_landing_right_after_the_start_up_scan_is_not_missed(tmp_path: Path) -> None:
    """Watching starts before the scan: a file arriving just after it is still seen."""
    import threading
    import time

    from glacierd.watcher import Watcher

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with Emulator(tmp_path / "emu") as emu:
        config = replace(local_config(tmp_path / "state", [inbox], emu.endpoint_url,
                                      emu.credentials.access_key, emu.credentials.secret_key),
                         pack=PackSection(threshold=0))
        engine = create_store_engine(config.database_url)
        schema.upgrade(engine)
        engine.dispose()
        daemon = Daemon(config, client=client_for(emu))
        real_scan = Watcher.scan

        def scan_then_a_file_arrives(self: Watcher) -> int:
            found = real_scan(self)
            (inbox / "late.txt").write_text("arrived just after the scan")
            return found

        Watcher.scan = scan_then_a_file_arrives  # type: ignore[method-assign]
        try:
            runner = threading.Thread(target=daemon.run)
            runner.start()
            deadline = time.monotonic() + 30
            while daemon.store is None or daemon.store.count_files().get("archived") != 1:
                assert time.monotonic() < deadline, "the late file was never archived"
                time.sleep(0.1)  # polling the daemon's store: no event to wait on
        finally:
            Watcher.scan = real_scan  # type: ignore[method-assign]
            daemon.request_stop()
            runner.join(timeout=30)
        assert daemon.store is not None
        [archive] = daemon.store.archives()
        assert archive.source_path == str(inbox / "late.txt")


def test_drain_sends_one_part_files_side_by_side_and_a_big_file_alone(tmp_path: Path) -> None:
    """Small files overlap their round trips (up to ``concurrency`` at once); a file of
    several parts has the concurrency to itself (the memory bound holds)."""
    import os
    import threading

    now = [T0]
    upload = UploadSection(part_size_mib=1, concurrency=3)
    with Emulator(tmp_path / "emu") as emu, \
            prepared_daemon(tmp_path, emu, now, upload=upload) as daemon:
        assert daemon.store is not None and daemon.uploader is not None
        inbox = tmp_path / "inbox"
        contents = {f"small-{i}": os.urandom(1000 + i) for i in range(6)}
        contents["big"] = os.urandom(2 * 2**20 + 5)  # three parts: after the small ones
        for name, data in contents.items():
            (inbox / name).write_bytes(data)
            st = (inbox / name).stat()
            daemon.store.file_seen(str(inbox / name), st.st_size, st.st_mtime_ns, st.st_ino)

        backend = daemon.uploader.backend
        send_part = backend.send_part
        in_flight: dict[str, int] = {}
        seen_beside_big: list[int] = []
        lock = threading.Lock()
        first_three = threading.Barrier(3, timeout=20)
        small_calls = [0]

        def watched(ref, offset, data, *rest):  # type: ignore[no-untyped-def]
            with lock:
                in_flight[ref.upload_id] = in_flight.get(ref.upload_id, 0) + 1
                if ref.size > 2**20:
                    seen_beside_big.append(len(in_flight))
                small_calls[0] += ref.size <= 2**20
                wait = ref.size <= 2**20 and small_calls[0] <= 3
            try:
                if wait:  # breaks (and fails the upload) unless three are in flight at once
                    first_three.wait()
                return send_part(ref, offset, data, *rest)
            finally:
                with lock:
                    in_flight[ref.upload_id] -= 1
                    if not in_flight[ref.upload_id]:
                        del in_flight[ref.upload_id]

        backend.send_part = watched  # type: ignore[method-assign]
        daemon.drain()

        assert daemon.store.count_files() == {"archived": 7}
        assert seen_beside_big == [1, 1, 1], "the big file's parts went alone"
        archives = {a.source_path: a for a in daemon.store.archives()}
        assert len(archives) == 7
        in_vault = sorted(int(a["Size"]) for a in emu.state._archives("local"))  # type: ignore[arg-type]
        assert in_vault == sorted(len(data) for data in contents.values())
        for name, data in contents.items():
            assert archives[str(inbox / name)].size == len(data)


def test_a_long_queue_is_drained_a_page_at_a_time(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain holds one page of the queue, not a batch that doubles with each
    (a million queued files were half a million records in memory): every page
    at most ``QUEUE_PAGE`` files, every file taken once, all archived once."""
    import glacierd.daemon

    monkeypatch.setattr(glacierd.daemon, "QUEUE_PAGE", 7, raising=False)
    now = [T0]
    with Emulator(tmp_path / "emu") as emu, prepared_daemon(tmp_path, emu, now) as daemon:
        store = daemon.store
        assert store is not None
        inbox = tmp_path / "inbox"
        for i in range(40):
            (inbox / f"f{i:02d}").write_bytes(b"x" * (i + 1))
        store.files_seen([(str(p), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ino)
                          for p in sorted(inbox.iterdir())])
        pages: list[list[str]] = []
        pending_files = store.pending_files

        def paged(*args: Any, **kwargs: Any) -> list[Any]:
            page = pending_files(*args, **kwargs)
            pages.append([f.path for f in page])
            return page

        monkeypatch.setattr(store, "pending_files", paged)
        daemon.drain()
        assert store.count_files() == {"archived": 40}
        taken = [path for page in pages for path in page]
        archives = store.archives()
    assert max(len(page) for page in pages) == 7, pages
    assert sorted(taken) == sorted(str(inbox / f"f{i:02d}") for i in range(40)), "each once"
    assert len(archives) == 40 and len({a.source_path for a in archives}) == 40
