"""Opening the state database: SQLite pragmas, file modes, error translation.

SQLite gets WAL (readers such as ``glacierd status`` never block the daemon),
``synchronous=FULL`` (a committed part survives a power cut), foreign keys and
a busy timeout. The database file is created mode 0600 inside a 0700 state
directory, before SQLite touches it, so there is no window in which it is
readable by others; SQLite gives its -wal and -shm files the same mode.
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
from sqlalchemy.exc import OperationalError

from glacierd.errors import StoreError

BUSY_TIMEOUT_MS = 10_000


def _prepare_sqlite_file(path: Path) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        os.close(fd)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
    except PermissionError as exc:
        raise StoreError(f"{path}: cannot create the state database: permission denied") from exc
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the state database: {exc.strerror}") from exc


def create_store_engine(url: str, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url`` with glacierd's settings (any SQLAlchemy URL works)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:":
        _prepare_sqlite_file(Path(database))
    engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000,
                                              "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.close()

    return engine


def describe_operational_error(exc: OperationalError, url: str) -> str:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    where = make_url(url).database or url
    if "locked" in text or "busy" in text:
        return f"{where}: the state database is locked by another process: {text}"
    if "disk" in text and ("full" in text or "I/O" in text):
        return f"{where}: the disk holding the state database is full or failing: {text}"
    if "readonly" in text or "read-only" in text:
        return f"{where}: the state database is read-only: {text}"
    if "unable to open" in text:
        return f"{where}: the state database cannot be opened: {text}"
    return f"{where}: database error: {text}"


@contextlib.contextmanager
def translated_errors(url: str) -> Iterator[None]:
    """Turn SQLAlchemy's operational errors into a ``StoreError`` with a message."""
    try:
        yield
    except OperationalError as exc:
        raise StoreError(describe_operational_error(exc, url)) from exc
