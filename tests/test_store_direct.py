"""``glacierd.store.direct``: the per-file statements run on the driver's cursor
must write and read exactly what SQLAlchemy's execution of the same statements
does (types, defaults, ``onupdate``), on each database, and fail the same way."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from glacierd.errors import StoreError
from glacierd.store.direct import DirectConnection
from glacierd.store.states import FileState, UploadStatus
from glacierd.store.tables import files, uploads
from tests.conftest import statements_of, store_for

_NEW_FILE = insert(files).returning(files.c.id, files.c.path, files.c.first_seen)
_TOUCH = update(files).where(files.c.id == bindparam("file"))
_BY_ID = select(files.c.path, files.c.error, files.c.first_seen, files.c.updated_at,
                files.c.is_bundle, files.c.attempts).where(files.c.id == bindparam("file"))
_OPEN = select(files.c.id).where(files.c.state.in_([FileState.PENDING.value,
                                                    FileState.UPLOADING.value]))
_SOME = select(files.c.id).where(files.c.id.in_(bindparam("ids", expanding=True)))

ODD_PATH = "/data/caf\udce9\nname\\x41"  # an undecodable byte, a newline, a backslash


def _raw_row(conn: object, file_id: int) -> tuple[object, ...]:
    """The stored values as the database holds them (no SQLAlchemy type applied)."""
    return tuple(conn.exec_driver_sql(  # type: ignore[attr-defined]
        f"SELECT path, error, first_seen, is_bundle, attempts, state FROM files "
        f"WHERE id = {file_id}").one())


def test_rows_written_directly_are_stored_as_sqlalchemy_stores_them(store_url: str) -> None:
    store = store_for(store_url)
    cache: dict = {}  # type: ignore[type-arg]
    values = {"host": "h", "size": 1, "mtime_ns": 2, "inode": 3,
              "state": FileState.PENDING.value, "error": "bad\x00name"}
    try:
        with store.engine.begin() as conn:
            by_sqlalchemy = conn.execute(_NEW_FILE, {"path": ODD_PATH, **values}).one()
            direct = DirectConnection(conn, cache)
            by_direct = direct.execute(_NEW_FILE, {"path": ODD_PATH + "2", **values}).one()
            assert by_direct.path == ODD_PATH + "2"  # RETURNING read back through PathText
            assert by_direct.first_seen.tzinfo == dt.UTC  # UTCDateTime's result side
            stored = _raw_row(conn, by_sqlalchemy.id), _raw_row(conn, by_direct.id)
            # the same text escaping, the same timestamp format, defaults filled in
            assert stored[1][0] == stored[0][0] + "2"
            assert stored[1][1] == stored[0][1]  # the error, guarded alike
            assert type(stored[1][2]) is type(stored[0][2])
            assert len(str(stored[1][2])) == len(str(stored[0][2]))
            assert stored[1][3:] == stored[0][3:]  # is_bundle default, attempts, state
            read = direct.execute(_BY_ID, {"file": by_direct.id}).one()
            assert read.path == ODD_PATH + "2" and read.error == "bad\\x00name"
            assert read.is_bundle is False and read.attempts == 0
            before = read.updated_at
            direct.execute(_TOUCH, {"file": by_direct.id, "size": 5})
            after = direct.execute(_BY_ID, {"file": by_direct.id}).one().updated_at
            assert after > before  # onupdate applied
            # a constant IN list is written out; one given each time goes to SQLAlchemy
            assert {r.id for r in direct.execute(_OPEN)} == {by_sqlalchemy.id, by_direct.id}
            assert direct.execute(_SOME, {"ids": [by_direct.id]}).scalar_one() == by_direct.id
            direct.close()
        with store.engine.connect() as conn:  # SQLAlchemy reads the direct row as its own
            row = conn.execute(select(files).where(files.c.id == by_direct.id)).one()
            assert row.path == ODD_PATH + "2" and row.size == 5
            assert row.first_seen == by_direct.first_seen
    finally:
        store.close()


def test_a_driver_error_comes_out_as_sqlalchemys_and_rolls_back(store_url: str) -> None:
    store = store_for(store_url)
    try:
        (record,) = store.files_seen([("/d/a.txt", 10, 1, 5)])
        upload = store.create_upload(record.id, "v", "token-1", "d", 2**20, 10, 1, 5)
        with pytest.raises(StoreError) as raised, store._direct_tx() as conn:
            conn.execute(_TOUCH, {"file": record.id, "size": 99})
            conn.execute(insert(uploads), {  # the same token: unique
                "file_id": record.id, "vault": "v", "token": "token-1", "description": "d",
                "part_size": 1, "size": 1, "mtime_ns": 1, "inode": 1})
        assert isinstance(raised.value.__cause__, IntegrityError)  # as SQLAlchemy raises it
        message = str(raised.value)
        assert "refused a change" in message and "damaged" not in message, message
        assert "token" in message  # the database's own words name the constraint
        assert store.file_by_id(record.id).size == 10  # the UPDATE before it: rolled back
        assert store.upload(upload.id).status == UploadStatus.INITIATING
    finally:
        store.close()


def test_a_small_files_store_calls_run_directly_and_reach_the_database(
        store_url: str) -> None:
    """The per-file calls' statements reach the driver (``statements_of`` sees the
    direct path too), and none goes through SQLAlchemy's execution."""
    from sqlalchemy import event

    store = store_for(store_url)
    try:
        through_sqlalchemy: list[str] = []
        event.listen(store.engine, "before_cursor_execute",
                     lambda _c, _cur, statement, *_rest: through_sqlalchemy.append(statement))
        statements = statements_of(store.engine)
        record, _, _ = store.file_to_upload("/d/b.txt", 10, 1, 5)
        upload = store.set_upload_id(store.create_upload(record.id, "v", "t", "d", 2**20,
                                                         10, 1, 5), "U-1")
        store.part_acknowledged(upload, 0, 0, 10, "a" * 64, completing="a" * 64)
        archive = store.finish_upload(upload, "ARCHIVE-B")
        _, (known, _, _), _ = store.file_to_upload("/d/b.txt", 10, 1, 5)  # a second look
        assert known is not None and known.archive_id == "ARCHIVE-B"
        assert through_sqlalchemy == []
        assert len(statements) >= 10, statements
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT state FROM files WHERE id = :f"),
                                {"f": record.id}).scalar() == "archived"
            assert conn.execute(text("SELECT archive_id FROM archives WHERE id = :a"),
                                {"a": archive.id}).scalar() == "ARCHIVE-B"
    finally:
        store.close()
