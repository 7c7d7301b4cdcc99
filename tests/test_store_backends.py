"""The state store on each database it runs on — SQLite (the default) and a real
PostgreSQL server the suite starts (issue 17's first step): the same Alembic
migrations, the same upload, archive, restore and queue rules, the same
status document and cost figures."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from glacierd import pricing, status
from glacierd.store import schema
from glacierd.store.reader import EngineReader, Reader, open_reader
from glacierd.store.repository import Adoption, CipherRecord
from glacierd.store.states import FileState, RestoreStatus, UploadStatus
from tests.conftest import statements_of, store_for

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)


def test_migrations_reach_the_head_and_match_the_tables(store_url: str) -> None:
    from sqlalchemy import inspect

    from glacierd.store.tables import metadata

    store = store_for(store_url)
    try:
        assert schema.current_revision(store.engine) == schema.HEAD
        tables = set(inspect(store.engine).get_table_names())
        assert set(metadata.tables) <= tables
        for name, table in metadata.tables.items():
            have = {c["name"] for c in inspect(store.engine).get_columns(name)}
            assert {c.name for c in table.columns} == have, name
    finally:
        store.close()


def test_an_encrypted_upload_from_start_to_archive(store_url: str) -> None:
    store = store_for(store_url)
    try:
        record = store.file_seen("/d/caf\xe9 \udcff.bin", 3 * 2**20, 7, 9)
        cipher = CipherRecord(b"k" * 16, b"age-encryption.org/v1\n...", b"n" * 16)
        upload = store.create_upload(record.id, "v", "tok", "glacierd1e x", 2**20,
                                     3 * 2**20, 7, 9, cipher=cipher, wire_size=3 * 2**20 + 300)
        upload = store.set_upload_id(upload, "U-1")
        again = store.upload(upload.id)
        assert again.cipher == cipher and again.stored_size == 3 * 2**20 + 300
        for index in range(4):
            length = 2**20 if index < 3 else 300
            store.part_acknowledged(upload, index, index * 2**20, length, f"{index:064x}",
                                    sha256=f"{index + 9:064x}")
        store.part_acknowledged(upload, 1, 2**20, 2**20, f"{1:064x}")  # a repeat: no-op
        upload = store.set_completing(store.upload(upload.id), "ee" * 32, "ff" * 32)
        assert len(upload.parts) == 4 and upload.status == UploadStatus.COMPLETING
        archive = store.finish_upload(upload, "ARCHIVE-1")
        assert (archive.size, archive.plain_size, archive.plain_sha256) == (
            3 * 2**20 + 300, 3 * 2**20, "ff" * 32)
        assert store.upload(upload.id).cipher is None, "the file key left the store"
        assert store.file(record.path).state == FileState.ARCHIVED  # type: ignore[union-attr]
        assert [a.source_path for a in store.archives("/d")] == [record.path]
        latest, unconfirmed, open_upload = store.upload_state(record.id)
        assert latest is not None and latest.archive_id == "ARCHIVE-1"
        assert unconfirmed is None and open_upload is None
    finally:
        store.close()



def test_a_files_first_look_finds_exactly_its_archive_and_its_open_upload(
        store_url: str) -> None:
    """What an upload must know first, on each database: a file the watcher queued
    and nobody uploaded has neither (one statement says so); then its archive, then
    an upload of a newer version left unfinished, are found."""
    store = store_for(store_url)
    try:
        (queued,) = store.files_seen([("/d/a.txt", 10, 1, 5)])
        statements = statements_of(store.engine)
        record, state, _ = store.file_to_upload("/d/a.txt", 10, 1, 5)
        assert record.id == queued.id and state == (None, None, None)
        assert len(statements) == 2, statements  # the file's row; what it has
        upload = store.set_upload_id(store.create_upload(record.id, "v", "t1", "d", 2**20,
                                                         10, 1, 5), "U-1")
        store.part_acknowledged(upload, 0, 0, 10, "a" * 64, completing="a" * 64)
        store.finish_upload(upload, "ARCHIVE-A")
        record, (archive, unconfirmed, unfinished), _ = store.file_to_upload("/d/a.txt", 10,
                                                                             1, 5)
        assert archive is not None and archive.archive_id == "ARCHIVE-A"
        assert unconfirmed is None and unfinished is None
        newer = store.set_upload_id(store.create_upload(record.id, "v", "t2", "d", 2**20,
                                                        12, 2, 5), "U-2")
        record, (archive, unconfirmed, unfinished), _ = store.file_to_upload("/d/a.txt", 12,
                                                                             2, 5)
        assert archive is not None and archive.archive_id == "ARCHIVE-A"
        assert unfinished is not None and unfinished.id == newer.id and unconfirmed is None
    finally:
        store.close()

def test_the_queue_failures_and_restores(store_url: str) -> None:
    store = store_for(store_url)
    try:
        seen = store.files_seen([(f"/q/{i}", i, i, i) for i in range(5)])
        assert [f.path for f in seen] == [f"/q/{i}" for i in range(5)]
        store.record_failure(seen[0].id, "ServiceUnavailable", NOW - dt.timedelta(minutes=1))
        store.record_failure(seen[1].id, "later", NOW + dt.timedelta(hours=1))
        due = [f.path for f in store.pending_files(NOW)]
        assert "/q/0" in due and "/q/1" not in due and "/q/4" in due
        archive = store.record_empty_archive(seen[2].id, "v", 2)
        restore = store.add_restore(archive, "/r/q2", "Bulk", 2**20, False)
        store.restore_job(restore, "JOB-1", NOW)
        store.segment_verified(restore, 0, 0, 2**20, "aa" * 32)
        again = store.restore(restore.id)
        assert again.verified == ((0, "aa" * 32),) and again.job_id == "JOB-1"
        store.set_restore_status(again, RestoreStatus.DONE)
        assert store.restores([RestoreStatus.DONE])[0].dest_path == "/r/q2"
    finally:
        store.close()


def test_the_queue_comes_a_page_at_a_time_each_file_once(store_url: str) -> None:
    """``pending_files`` pages: unfinished uploads first, then pending, then failed
    ones due, each in id order; a page goes on from the last file of the one
    before, so a pass sees each file once and holds one page, however long the
    queue. A file queued meanwhile joins the pass; one that became pending again
    behind the page does not (the next pass takes it)."""
    store = store_for(store_url)
    try:
        seen = store.files_seen([(f"/p/{i:02d}", i + 1, i, i) for i in range(12)])
        for i in (3, 7):  # a run was interrupted while uploading these
            store.create_upload(seen[i].id, "v", f"t{i}", "d", 2**20, i + 1, i, i)
        store.record_failure(seen[1].id, "due", NOW - dt.timedelta(minutes=1))
        store.record_failure(seen[2].id, "later", NOW + dt.timedelta(hours=1))
        pages, last = [], None
        while page := store.pending_files(NOW, limit=4, after=last):
            assert len(page) <= 4
            pages.append([f.path for f in page])
            last = page[-1]
            if len(pages) == 1:  # meanwhile: one file queued, one already paged changed
                store.files_seen([("/p/new", 1, 1, 1), ("/p/00", 99, 99, 99)])
        order = [path for page in pages for path in page]
        assert order == ["/p/03", "/p/07", "/p/00", "/p/04", "/p/05", "/p/06", "/p/08",
                         "/p/09", "/p/10", "/p/11", "/p/new", "/p/01"], pages
        assert [f.path for f in store.pending_files(NOW, limit=100)][:3] == [
            "/p/03", "/p/07", "/p/00"], "a new pass starts from the top"
    finally:
        store.close()


def _documents(url: str) -> dict[str, object]:
    """The status document of a store filled the same way on each database."""
    store = store_for(url)
    try:
        for i, path in enumerate(["/d/a.bin", "/d/b\udcff\n.bin", "/d_x/c.bin"]):
            record = store.file_seen(path, 100 + i, i, i)
            upload = store.set_upload_id(store.create_upload(
                record.id, "v", f"tok-{i}", "d", 2**20, 100 + i, i, i), f"U-{i}")
            store.part_acknowledged(upload, 0, 0, 100 + i, "ab" * 32)
            store.finish_upload(store.set_completing(upload, "ab" * 32), f"A-{i}")
        busy = store.file_seen("/d/busy.bin", 3 * 2**20, 9, 9)
        going = store.set_upload_id(store.create_upload(busy.id, "v", "tok-busy", "d", 2**20,
                                                        3 * 2**20, 9, 9), "U-busy")
        store.part_acknowledged(going, 0, 0, 2**20, "cd" * 32)
        failed = store.file_seen("/d/failed.bin", 5, 5, 5)
        store.record_failure(failed.id, 'a "quoted" error', NOW)
        store.event("error", "boom", "it broke")
        def document(reader: Reader) -> dict[str, object]:
            priced = ("v", "VAULT", pricing.PRICES)
            doc = status.collect(reader, priced=priced)
            doc["streamed"] = json.loads(status.to_json(reader))["files"]
            doc["below_d"] = status.collect(reader, path_prefix="/d")["files"]
            for key in ("recent", "failures"):
                for row in doc[key]:  # type: ignore[attr-defined]
                    row.pop("archived_at", None)
                    row.pop("retry_at", None)
            doc["summary"].pop("last_error")  # type: ignore[attr-defined]
            doc["summary"].pop("next_retry")  # type: ignore[attr-defined]
            doc["uploads"] = [{k: v for k, v in u.items() if k != "interrupted"}
                              for u in doc["uploads"]]
            return doc

        doc = document(EngineReader(store.engine, url))
        own = open_reader(url)  # what `glacierd status` reads with: sqlite3, or psycopg
        try:
            assert document(own) == doc, type(own).__name__
        finally:
            own.close()
        return doc
    finally:
        store.close()


def test_status_says_the_same_on_both_databases(tmp_path: object, postgres_server: object
                                                ) -> None:
    from pathlib import Path

    sqlite_doc = _documents(f"sqlite:///{Path(str(tmp_path)) / 'state' / 'glacierd.db'}")
    pg_doc = _documents(postgres_server.new_database())  # type: ignore[attr-defined]
    assert pg_doc == sqlite_doc
    assert {f["path"] for f in sqlite_doc["below_d"]} == {  # type: ignore[attr-defined]
        "/d/a.bin", "/d/b\\xff\\n.bin", "/d/busy.bin", "/d/failed.bin"}
    assert sqlite_doc["cost"]["objects"] == 3  # type: ignore[index]


def test_a_database_password_never_reaches_a_message(tmp_path: object) -> None:
    """An unreachable PostgreSQL: the message names the database, never the password."""
    from pathlib import Path

    from glacierd import config
    from tests.test_daemon_e2e import cli

    folder = Path(str(tmp_path))
    url = f"postgresql+psycopg://glacierd:s3cr3t-pw@/catalog?host={folder / 'nowhere'}"
    cfg = folder / "c.toml"
    cfg.write_text(f'[vault]\nname = "v"\n[state]\ndir = "{folder / "state"}"\n'
                   f'database_url = "{url}"\n')
    for args in (("status",), ("db", "upgrade"), ("archives",)):
        done = cli(cfg, *args)
        assert done.returncode != 0 and "catalog" in done.stderr, (args, done.stderr)
        assert "s3cr3t" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    assert "s3cr3t" not in repr(config.load(cfg))


def test_hosts_share_a_catalog_each_with_its_own_files(store_url: str) -> None:
    """Every file row knows its host: two hosts with a file at the same path each
    queue, upload and count their own; status and restores are per host."""
    from glacierd.store.repository import Store

    alpha = store_for(store_url)
    beta = Store.open(store_url, host="beta")
    alpha = Store(alpha.engine, alpha.url, host="alpha")
    try:
        for store, size in ((alpha, 10), (beta, 20)):
            record = store.file_seen("/srv/same.txt", size, 1, 1)
            assert record.size == size
        assert alpha.file("/srv/same.txt").size == 10  # type: ignore[union-attr]
        assert beta.file("/srv/same.txt").size == 20  # type: ignore[union-attr]
        upload = alpha.set_upload_id(alpha.create_upload(
            alpha.file("/srv/same.txt").id, "v", "tok-a", "d", 2**20, 10, 1, 1),  # type: ignore[union-attr]
            "U-a")
        alpha.finish_upload(alpha.set_completing(upload, "ab" * 32), "A-alpha")
        assert [f.path for f in alpha.pending_files(NOW)] == []
        assert [f.path for f in beta.pending_files(NOW)] == ["/srv/same.txt"]
        assert alpha.count_files() == {"archived": 1}
        assert beta.count_files() == {"pending": 1}
        alpha.heartbeat(1, "v", NOW, "alpha's")
        beta.heartbeat(2, "v", NOW, "beta's")
        assert (alpha.daemon().status, beta.daemon().status) == (  # type: ignore[union-attr]
            "alpha's", "beta's")
        doc = status.collect(beta, all_files=True)
        assert doc["counts"] == {"pending": 1} and doc["daemon"]["status"] == "beta's"
        assert [f["state"] for f in doc["files"]] == ["pending"]
        assert json.loads(status.to_json(alpha))["counts"] == {"archived": 1}
        alpha.set_folder_problems({"/srv/locked": "Permission denied"})
        beta.set_folder_problems({"/srv/locked": "No such device"})
        beta.set_folder_problems({})  # beta's folder is readable again: alpha's stays
        assert [p[:2] for p in alpha.folder_problems()] == [("/srv/locked",
                                                             "Permission denied")]
        assert beta.folder_problems() == []
        assert [f["path"] for f in status.collect(alpha, all_files=False)[
            "unreadable_folders"]] == ["/srv/locked"]
        hosts = {h["host"]: h for h in status.all_hosts(alpha)}
        assert hosts["alpha"]["counts"] == {"archived": 1}
        assert hosts["beta"]["counts"] == {"pending": 1}
        assert hosts["alpha"]["archived_bytes"] == 10
    finally:
        alpha.close()
        beta.close()


def _scanned(store: object) -> dict[tuple[str, str], tuple[int, int, int, int]]:
    """The totals the long way: a scan of every row."""
    from glacierd.store import totals

    reader = EngineReader(store.engine, store.url)  # type: ignore[attr-defined]
    small = totals.SMALL_BYTES
    rows = reader.rows("SELECT 'files', state || '@' || host, count(*), sum(size), 0, 0 "
                       "FROM files WHERE NOT is_bundle GROUP BY state, host")
    rows += reader.rows(
        f"SELECT 'archives', vault, count(*), sum(size), sum(CASE WHEN size < {small} THEN 1 "
        f"ELSE 0 END), sum(CASE WHEN size < {small} THEN size ELSE 0 END) FROM archives "
        "WHERE archive_id IS NOT NULL AND deleted_at IS NULL GROUP BY vault")
    return totals.summed(rows)


def test_running_totals_agree_with_a_scan_through_every_change(store_url: str) -> None:
    """Triggers keep files by state and live archives by vault; a fold leaves
    one row a key and changes no sum; status and cost read them."""
    from glacierd.store.reader import running_totals

    store = store_for(store_url)
    try:
        reader = EngineReader(store.engine, store.url)
        seen = store.files_seen([(f"/t/{i}", 1000 * i, i, i) for i in range(8)])
        store.record_failure(seen[0].id, "boom", NOW)
        store.file_gone(seen[1].id, "deleted")
        for i in (2, 3, 4):
            upload = store.create_upload(seen[i].id, "v" if i < 4 else "w", f"tok{i}", "d",
                                         2**20, 1000 * i, i, i)
            upload = store.set_upload_id(upload, f"U{i}")
            upload = store.set_completing(upload, "ee" * 32)
            store.finish_upload(upload, f"ARCHIVE-{i}")
        assert running_totals(reader) == _scanned(store)
        store.file_seen("/t/2", 300_000, 99, 2)  # changed: pending again, a new size
        store.file_seen("/t/5", 7_777, 50, 5)  # still pending, another size
        store.mark_archive_deleted("ARCHIVE-3")
        store.adopt_archives([Adoption("v", "ADOPTED", 200_000, "ab" * 32, "d", "/other/x", 5,
                                       NOW)])
        expected = _scanned(store)
        assert running_totals(reader) == expected
        assert expected[("archives", "v")] == (2, 2000 + 200_000, 1, 2000)
        assert expected[("files", f"pending@{store.host}")][0] == 5
        before = len(reader.rows("SELECT id FROM totals"))
        assert store.count_files() == {k.rpartition("@")[0]: v[0]
                                       for (kind, k), v in expected.items() if kind == "files"}
        after = len(reader.rows("SELECT id FROM totals"))
        assert after == len(expected) < before, "the fold left one row a key"
        assert running_totals(reader) == expected
        assert store.fold_totals() == expected  # folded already: nothing changes
        doc = status.collect(store, all_files=False)
        assert doc["counts"] == store.count_files()
        assert doc["summary"]["archived_bytes"] == 2000 + 200_000 + 4000
        table = pricing.PRICES
        got = status.collect(store, all_files=False, priced=("v", "GLACIER_IR", table))["cost"]
        # one archive under IR's 128 KB minimum: 2,000 bytes billed as 131,072
        assert got["overhead_usd"] == pytest.approx(
            2 * pricing.object_overhead_month("GLACIER_IR", table)
            + (131072 - 2000) / pricing.GB * table["GLACIER_IR"].storage_gb_month)
    finally:
        store.close()


def test_an_upgrade_counts_what_is_already_there(tmp_path: object) -> None:
    """A catalog written before revision 0009 gets its totals from its rows (and
    at 0011 its files are its daemon's host's, counted by host)."""
    from pathlib import Path

    from sqlalchemy import text

    from tests.conftest import engine_at

    url = f"sqlite:///{Path(str(tmp_path)) / 'glacierd.db'}"
    engine = engine_at(url, "0008")
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO files (path, size, mtime_ns, inode, state, attempts, first_seen, "
            "updated_at) VALUES ('/a', 10, 1, 1, 'archived', 0, '2026-01-01', '2026-01-01'), "
            "('/b', 20, 1, 2, 'pending', 0, '2026-01-01', '2026-01-01')"))
        # rows that refer to files and archives, as any catalog in use has: the
        # tables SQLite's batch mode copies must keep them (foreign keys)
        conn.execute(text(
            "INSERT INTO archives (archive_id, vault, size, tree_hash, source_path, mtime_ns, "
            "file_id, created_at) VALUES ('A', 'v', 10, 'x', '/a', 1, 1, '2026-01-01'), "
            "('B', 'v', 500000, 'x', '/a', 1, 1, '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO uploads (file_id, vault, upload_id, token, description, part_size, "
            "size, mtime_ns, inode, status, bytes_acked, bytes_in_flight, rate_bps, "
            "created_at, updated_at) VALUES (2, 'v', 'U-1', 'tok', 'd', 1048576, 20, 1, 2, "
            "'uploading', 0, 0, 0, '2026-01-01', '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO parts (upload_id, \"index\", \"offset\", length, tree_hash, adopted, "
            "acknowledged_at) VALUES (1, 0, 0, 20, 'x', 0, '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO restores (archive_row, archive_id, vault, source_path, dest_path, size, "
            "tree_hash, mtime_ns, tier, segment_size, overwrite, status, refetches, bytes_done, "
            "created_at, updated_at) VALUES (1, 'A', 'v', '/a', '/r/a', 10, 'x', 1, 'Bulk', "
            "1048576, 0, 'requested', 0, 0, '2026-01-01', '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO daemon (id, pid, host, vault, started_at, heartbeat_at, status) "
            "VALUES (1, 7, 'old-box', 'v', '2026-01-01', '2026-01-01', 'stopped')"))
    schema.upgrade(engine)
    engine.dispose()
    from glacierd.store.repository import Store

    store = store_for(url)
    try:
        assert _scanned(store) == {("files", "archived@old-box"): (1, 10, 0, 0),
                                   ("files", "pending@old-box"): (1, 20, 0, 0),
                                   ("archives", "v"): (2, 500_010, 1, 10)}
        assert store.fold_totals() == _scanned(store)
        old_box = Store(store.engine, url, host="old-box")
        record = old_box.file("/b")
        assert record is not None and store.file("/b") is None, "the old daemon's host's"
        _latest, _unconfirmed, upload = old_box.upload_state(record.id)
        assert upload is not None and [p.length for p in upload.parts] == [20]
        assert [r.dest_path for r in old_box.restores()] == ["/r/a"]
    finally:
        store.close()


def test_a_failed_upgrade_changes_nothing(tmp_path: object) -> None:
    """SQLite: the whole migration is one transaction. An upgrade that fails
    (here: a row of another table left pointing at no file) leaves the database
    at its revision, with no table half-copied."""
    from pathlib import Path

    from sqlalchemy import text

    from glacierd.errors import StoreError
    from tests.conftest import engine_at

    url = f"sqlite:///{Path(str(tmp_path)) / 'glacierd.db'}"
    engine = engine_at(url, "0008")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.execute(text(
            "INSERT INTO uploads (file_id, vault, upload_id, token, description, part_size, "
            "size, mtime_ns, inode, status, bytes_acked, bytes_in_flight, rate_bps, "
            "created_at, updated_at) VALUES (99, 'v', 'U-1', 'tok', 'd', 1048576, 20, 1, 2, "
            "'uploading', 0, 0, 0, '2026-01-01', '2026-01-01')"))
        conn.commit()
    with pytest.raises(StoreError, match="nothing was changed"):
        schema.upgrade(engine)
    assert schema.current_revision(engine) == "0008"
    with engine.connect() as conn:
        tables = {r[0] for r in conn.execute(text("SELECT name FROM sqlite_master"))}
    assert not {t for t in tables if t.startswith("_alembic_tmp")}
    assert "totals" not in tables and "bundle_members" not in tables
    engine.dispose()


def test_archives_under_a_path_are_found_by_prefix_whatever_their_names(
        store_url: str) -> None:
    """``Store.archives(prefix)`` (what ``restore`` chooses from): every archive at or
    below the prefix and no other, names with backslashes, undecodable bytes, LIKE's
    own wildcards and characters above the prefix's last one included. On SQLite a
    range of the escaped text narrows the LIKE so that the index serves it."""
    import datetime as dt

    store = store_for(store_url)
    names = ["/data/a", "/data/a/b.txt", "/data/a\\\\b", "/data/a\udce9", "/data/a%",
             "/data/a_x", "/data/ab", "/data/a/\u00e9t\u00e9", "/data/b", "/data/`",
             "/data/a\U0010fffe", "/datb/a"]
    try:
        for i, name in enumerate(names):
            store.adopt_archives([Adoption("v", f"A{i}", 1, "0" * 64, "d", name, 1,
                                           dt.datetime(2026, 1, 1, tzinfo=dt.UTC))])
        for prefix in ["/data/a", "/data/a/", "/data/a\\\\", "/data/a%", "/data/a\udce9",
                       "/dat", "/data/a\U0010fffe"]:
            found = sorted(a.source_path for a in store.archives(prefix))
            assert found == sorted(n for n in names if n.startswith(prefix)), prefix
        if store.engine.dialect.name == "sqlite":
            from sqlalchemy import select

            from glacierd.store.repository import _under
            from glacierd.store.tables import archives

            query = select(archives.c.id).where(*_under(archives.c.source_path, "/data/a",
                                                        store.engine)).compile(store.engine)
            with store.engine.connect() as conn:
                plan = conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {query}",
                    tuple(query.construct_params()[k] for k in query.positiontup or ())).all()
            assert "source_path>? AND source_path<?" in str(plan), plan
    finally:
        store.close()


def test_the_catalogs_size_counts_live_archives_and_their_paths(store_url: str) -> None:
    """What ``catalog rebuild`` reports, counted by the database: versions of one
    path are archives of one file; a deleted archive and a bundle's own are not."""
    import datetime as dt

    store = store_for(store_url)
    when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    try:
        for archive_id, path in [("A1", "/d/x"), ("A2", "/d/x"), ("A3", "/d/y"),
                                 ("A4", "/d/z")]:
            store.adopt_archives([Adoption("v", archive_id, 1, "0" * 64, "d", path, 1, when)])
        store.adopt_archives([Adoption("v", "B1", 1, "0" * 64, "d", "/state/bundles/b1", 1,
                                       when, is_bundle=True)])
        store.mark_archive_deleted("A4")
        assert store.catalog_size() == (3, 2)
        assert len(store.archives()) == 3
    finally:
        store.close()


def test_an_inventory_of_many_archives_is_adopted_in_batches(store_url: str,
                                                             tmp_path: Path) -> None:
    """A rebuilt catalog: every archive of the inventory adopted once, with its event,
    in transactions of ``catalog.ADOPT_BATCH`` (not a commit or two an archive); a
    second application adopts nothing more. This host's files are linked, another
    host's archives are not."""
    from sqlalchemy import event, text

    from glacierd import catalog, description

    count = 1007  # more than two batches
    docs = [{"ArchiveId": f"A{i:05d}", "CreationDate": "2026-01-01T00:00:00Z", "Size": 10,
             "SHA256TreeHash": "0" * 64,
             "ArchiveDescription": description.encode(description.ArchiveInfo(
                 f"/d/f{i:05d}", "here" if i % 2 else "there", 10, 1, f"t{i}"))}
            for i in range(count)]
    output = tmp_path / "inventory.json"
    output.write_text(json.dumps({"VaultARN": "arn", "InventoryDate": "2026-01-02T00:00:00Z",
                                  "ArchiveList": docs}))
    store = store_for(store_url)
    try:
        (mine,) = store.files_seen([("/d/f00001", 10, 1, 5)])
        commits: list[int] = []
        event.listen(store.engine, "commit", lambda _conn: commits.append(1))
        result = catalog.apply_inventory(store, "v", "job-1", output, host="here")
        assert len(result.adopt) == count
        assert len(commits) <= 10, len(commits)  # 3 batches, and a few more
        assert store.catalog_size() == (count, count)
        with store.engine.connect() as conn:
            adopted = conn.execute(text(
                "SELECT count(*) FROM events WHERE kind = 'adopted'")).scalar()
            linked = conn.execute(text(
                "SELECT archive_id FROM archives WHERE file_id = :f"), {"f": mine.id}).all()
        assert adopted == count
        assert [row[0] for row in linked] == ["A00001"]  # here's file; "there"'s are not
        again = catalog.apply_inventory(store, "v", "job-2", output, host="here")
        assert list(again.adopt) == []  # nothing new to adopt
        assert store.catalog_size() == (count, count)
    finally:
        store.close()


def test_the_rarer_store_calls_on_each_database(store_url: str) -> None:
    """Calls moved from ORM sessions to Core statements (failures, retry and
    forget, files without a backup, inventories, pruned events, the daemon row):
    the same outcomes on SQLite and PostgreSQL."""
    store = store_for(store_url)
    try:
        a, b = store.files_seen([("/d/a", 1, 1, 1), ("/d/b", 2, 2, 2)])
        failed = store.record_failure(a.id, "it broke", NOW)
        assert (failed.state, failed.error, failed.attempts) == ("failed", "it broke", 1)
        store.record_failure(b.id, "so did this", None)
        assert [f.retry_at for f in store.set_failed_files(FileState.FAILED, None, NOW)] \
            == [NOW, NOW]
        [forgotten] = store.set_failed_files(FileState.FORGOTTEN, ["/d/b"], NOW)
        assert (forgotten.path, forgotten.state) == ("/d/b", "forgotten")
        assert store.file("/d/b").state == "forgotten"  # type: ignore[union-attr]
        assert store.files_without_backup("/d") == ["/d/a"]  # forgotten ones are not listed
        store.file_gone(a.id, "/d/a: gone")
        assert store.file_by_id(a.id).state == "gone" and store.files_without_backup() == []
        assert store.last_inventory() is None
        store.add_inventory("v", "job-1", NOW, 3, 30, "/state/inventory-1.json")
        store.add_inventory("w", "job-2", NOW, 4, 40, "/state/inventory-2.json")
        assert store.last_inventory().job_id == "job-2"  # type: ignore[union-attr]
        assert store.last_inventory("v").archive_count == 3  # type: ignore[union-attr]
        kinds = [kind for kind, _ in store.events()]
        assert {"upload-failed", "forgotten", "file-gone"} <= set(kinds)
        assert store.prune_events(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)) \
            == len(kinds)
        assert store.events() == []
        store.heartbeat(7, "v", NOW, "running")
        store.daemon_stopped(8)  # another pid: not this daemon's row
        assert store.daemon().stopped_at is None  # type: ignore[union-attr]
        store.daemon_stopped(7)
        stopped = store.daemon()
        assert stopped is not None and stopped.status == "stopped" and stopped.stopped_at
    finally:
        store.close()
