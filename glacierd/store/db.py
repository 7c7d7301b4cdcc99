"""Opening the state database: SQLite pragmas, file modes, error translation.

SQLite gets WAL (readers such as ``glacierd status`` never block the daemon),
``synchronous=FULL`` (a committed part survives a power cut), foreign keys and
a busy timeout. The database file is created mode 0600 inside a 0700 state
directory, before SQLite touches it, so there is no window in which it is
readable by others; SQLite gives its -wal and -shm files the same mode.

A file that is there already is checked before SQLite opens it: one that is
not an SQLite database, or is shorter than its own header says, is damaged,
and glacierd stops with a message instead of touching it. Read-only commands
(``status``, ``archives`` ...) open the file read-only and never switch its
journal mode; on a state folder they cannot write to, read-only and immutable.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError

from glacierd.errors import StoreError

from .sqlitefile import (
    BUSY_TIMEOUT_MS,
    WHAT_TO_DO,
    DamagedDatabaseError,
    check_sqlite_file,
    describe_sqlite_error,
    read_only_uri,
)


def _prepare_sqlite_file(path: Path) -> None:
    if path.exists():
        check_sqlite_file(path)
        with contextlib.suppress(OSError):  # not ours to change? then leave it as it is
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.close(fd)
    except FileExistsError:
        pass
    except PermissionError as exc:
        raise StoreError(f"{path}: cannot create the state database: permission denied") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the state database: {exc.strerror}") from exc


def create_store_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS, *,
                        read_only: bool = False) -> Engine:
    """An engine for ``url`` with glacierd's settings (any SQLAlchemy URL works).

    ``read_only``: for commands that only read; the file must exist and is
    opened read-only (immutable when its folder is not writable), its journal
    mode left as it is.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = create_engine(url, pool_pre_ping=True)

        @event.listens_for(engine, "connect")
        def _durable(dbapi_conn: Any, _record: Any) -> None:
            # A commit must be on disk when it returns (invariants 1, 2, 5), whatever
            # the server's default: with synchronous_commit off, a crash of the server
            # loses commits already acknowledged, and an archive could be made twice.
            cursor = dbapi_conn.cursor()
            cursor.execute("SET synchronous_commit TO on")
            cursor.close()
            dbapi_conn.commit()

        return engine
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    connect_args: dict[str, Any] = {"timeout": busy_timeout_ms / 1000,
                                    "check_same_thread": False}
    if read_only and database and database != ":memory:":
        path = Path(database)
        if not path.exists():
            raise StoreError(f"{path}: no state database here yet: run `glacierd db upgrade` "
                             "(or start the daemon)")
        check_sqlite_file(path)
        url = f"sqlite:///{read_only_uri(path)}&uri=true"
    elif database and database != ":memory:":
        _prepare_sqlite_file(Path(database))
    engine = create_engine(url, connect_args=connect_args)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        if not read_only:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    return engine


def describe_operational_error(exc: OperationalError, url: str) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    return describe_sqlite_error(text, make_url(url).database or url)


@contextlib.contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Turn SQLAlchemy's database errors into a ``StoreError`` with a message."""
    try:
        yield
    except OperationalError as exc:
        raise StoreError(describe_operational_error(exc, url)) from exc
    except IntegrityError as exc:  # a constraint refused a write: not a damaged file
        where = make_url(url).database or url
        text = str(exc.orig) if exc.orig is not None else str(exc)
        raise StoreError(f"{where}: the state database refused a change ({text}); nothing "
                         "of that change was written. This is a glacierd bug (or another "
                         "process wrote the same row meanwhile): please report it") from exc
    except DatabaseError as exc:  # "file is not a database", "malformed" ...
        where = make_url(url).database or url
        text = str(exc.orig) if exc.orig is not None else str(exc)
        raise DamagedDatabaseError(f"{where}: the state database is damaged ({text}); "
                                   f"{WHAT_TO_DO}") from exc
