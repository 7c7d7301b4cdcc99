"""The store: SQLite settings, file modes, and the schema gate."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from glacierd.errors import SchemaNotUpgradedError, SchemaTooNewError
from glacierd.store import schema
from glacierd.store.db import create_store_engine
from glacierd.store.repository import Store
from tests.conftest import statements_of, store_at_head

new_store = store_at_head


def test_sqlite_settings_and_modes(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    store.file_seen("/x", 1, 1, 1)
    db = tmp_path / "state" / "glacierd.db"
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    for extra in (db.with_name("glacierd.db-wal"), db.with_name("glacierd.db-shm")):
        if extra.exists():
            assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra


def test_fresh_database_must_be_upgraded(tmp_path: Path) -> None:
    with pytest.raises(SchemaNotUpgradedError, match="glacierd db upgrade"):
        Store.open(f"sqlite:///{tmp_path / 'new.db'}")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    store.close()
    url = store.url
    with pytest.raises(SchemaTooNewError, match="9999_from_the_future"):
        Store.open(url)
    engine = create_store_engine(url)
    with pytest.raises(SchemaTooNewError, match="no changes were made"):
        schema.upgrade(engine)


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    before, after = schema.upgrade(store.engine)
    assert before == after == schema.HEAD


def test_files_are_never_forgotten_and_failures_are_recorded(tmp_path: Path) -> None:
    import datetime as dt

    store = new_store(tmp_path)
    rec = store.file_seen("/data/a", 10, 100, 7)
    failed = store.record_failure(rec.id, "boom", dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    assert failed.state == "failed" and failed.attempts == 1 and failed.error == "boom"
    again = store.file_seen("/data/a", 11, 200, 7)  # changed: pending again, error cleared
    assert again.state == "pending" and again.error is None and again.attempts == 1
    assert store.count_files() == {"pending": 1}
    assert ("upload-failed", "/data/a: boom") in store.events()


def test_shipped_revision_list_matches_alembic() -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(schema.alembic_config())
    assert script.get_current_head() == schema.HEAD
    ordered = [s.revision for s in script.walk_revisions()][::-1]
    assert tuple(ordered) == schema.REVISIONS


def test_model_and_migrations_agree(tmp_path: Path) -> None:
    """Alembic's autogenerate finds nothing to add: the revisions build the tables."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from glacierd.store.tables import metadata

    store = new_store(tmp_path)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_locked_database_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    import sqlite3

    from glacierd.errors import StoreError

    new_store(tmp_path).close()
    db = tmp_path / "state" / "glacierd.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        url = f"sqlite:///{db}"
        store = Store(create_store_engine(url, busy_timeout_ms=200), url)
        with pytest.raises(StoreError, match="locked by another process") as info:
            store.file_seen("/x", 1, 1, 1)
        assert str(db) in info.value.message
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_listing_restores_is_two_queries_whatever_their_number(tmp_path: Path) -> None:
    """Each RestoreRecord carries its segments and its archive's mode: loaded with
    the rows, not one query per restore (the daemon lists them every poll)."""
    from sqlalchemy import event, insert

    from glacierd.store.tables import archives, restores

    store = store_at_head(tmp_path)
    with store._core_tx() as conn:
        for i in range(5):
            archive_row = conn.execute(insert(archives).values(
                archive_id=f"a{i}", vault="v", size=1, tree_hash="0" * 64,
                source_path=f"/f{i}", mtime_ns=1).returning(archives.c.id)).scalar_one()
            conn.execute(insert(restores).values(
                host=store.host, archive_row=archive_row, archive_id=f"a{i}", vault="v",
                source_path=f"/f{i}", dest_path=f"/out/f{i}", size=1, tree_hash="0" * 64,
                mtime_ns=1, tier="Standard", segment_size=1, status="requested"))
    statements: list[str] = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: statements.append(statement))
    assert len(store.restores(["requested"])) == 5
    assert len(statements) == 2, statements


def test_upgrading_escapes_paths_stored_before_without_changing_them(tmp_path: Path) -> None:
    """0004 stores paths escaped; names written as plain text before (a backslash, a
    newline) read back exactly the same after the upgrade."""
    import sqlite3

    from tests.conftest import engine_at

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = engine_at(url, "0003")
    odd = ["/data/back\\slash\\x41", "/data/new\nline", "/data/plain.txt"]
    with sqlite3.connect(tmp_path / "old.db") as conn:
        for i, path in enumerate(odd):
            conn.execute("INSERT INTO files (path, size, mtime_ns, inode, state, attempts, "
                         "first_seen, updated_at) VALUES (?, 1, 1, ?, 'archived', 0, "
                         "'2026-01-01', '2026-01-01')", (path, i))
    schema.upgrade(engine)
    engine.dispose()
    store = Store.open(url)
    assert [store.file(p).path for p in odd] == odd  # type: ignore[union-attr]
    with sqlite3.connect(tmp_path / "old.db") as conn:
        stored = sorted(row[0] for row in conn.execute("SELECT path FROM files"))
    assert stored == sorted(["/data/back\\\\slash\\\\x41", "/data/new\\nline", "/data/plain.txt"])


def test_files_seen_queues_a_whole_pass_with_file_seens_rules(tmp_path: Path) -> None:
    import datetime as dt

    from glacierd.store.states import FileState

    store = new_store(tmp_path)
    kept = store.file_seen("/d/kept", 1, 1, 1)
    store.set_file_state(kept.id, FileState.ARCHIVED)
    changing = store.file_seen("/d/changing", 1, 1, 2)
    store.set_file_state(changing.id, FileState.UPLOADING)
    gone = store.file_seen("/d/gone", 1, 1, 3)
    store.file_gone(gone.id, "vanished")
    failed = store.file_seen("/d/failed", 1, 1, 4)
    store.record_failure(failed.id, "boom", dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
    many = [(f"/d/new-{i:04d}", i, i, 100 + i) for i in range(1200)]  # more than one chunk
    seen = store.files_seen([("/d/kept", 1, 1, 1), ("/d/changing", 2, 2, 2),
                             ("/d/gone", 1, 1, 3), ("/d/failed", 5, 5, 4), *many])
    states = {r.path: r.state for r in seen}
    assert states["/d/kept"] == "archived", "unchanged: left as it is"
    assert states["/d/changing"] == "uploading", "its upload notices the change itself"
    assert states["/d/gone"] == "pending", "it came back"
    assert states["/d/failed"] == "pending" and seen[3].error is None and seen[3].retry_at is None
    assert [r.path for r in seen[4:]] == [p for p, *_ in many]
    assert all(r.state == "pending" and r.size == i for i, r in enumerate(seen[4:]))
    assert store.count_files()["pending"] == 1202


def test_a_new_files_first_look_is_two_statements_and_a_known_files_sees_its_upload(
        tmp_path: Path) -> None:
    """A small file's path through the store is what bounds unpacked small files:
    a path never seen has no archive or upload to look for (its row was just
    made), while a known one must still find its unfinished upload."""
    store = store_at_head(tmp_path)
    statements = statements_of(store.engine)
    record, state, started = store.file_to_upload("/data/new.txt", 10, 1, 7)
    assert state == (None, None, None) and started is None
    assert [s.split()[0] for s in statements] == ["SELECT", "INSERT"], statements

    upload = store.create_upload(record.id, "v", "tok", "desc", 1 << 20, 10, 1, 7)
    upload = store.set_upload_id(upload, "UPLOAD-1")
    statements.clear()
    store.part_acknowledged(upload, 0, 0, 10, "a" * 64, sha256="b" * 64, completing="a" * 64)
    assert len(statements) == 3, statements  # the part's check, its row, one UPDATE
    again, (archive, unconfirmed, unfinished), _ = store.file_to_upload("/data/new.txt", 10,
                                                                        1, 7)
    assert again.id == record.id and archive is None and unconfirmed is None
    assert unfinished is not None and unfinished.upload_id == "UPLOAD-1"
    assert (unfinished.status, unfinished.tree_hash) == ("completing", "a" * 64)
    assert [p.index for p in unfinished.parts] == [0]
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT bytes_acked FROM uploads WHERE id = :u"),
                            {"u": upload.id}).scalar() == 10
