"""Reading the state database with plain SQL: ``glacierd status``'s way in.

``status`` must answer in a blink, and importing SQLAlchemy costs more CPU
than everything else it does on a small store. On SQLite (the default) a
``SqliteReader`` opens the file with the standard library's ``sqlite3``,
read-only, with the same checks and messages as ``glacierd.store.db`` (a
damaged file is refused, a newer or older schema named) and never imports
SQLAlchemy; on any other database an ``EngineReader`` runs the same SQL
through SQLAlchemy. The SQL is written once, portable, with ``:name``
parameters; what differs between drivers (how a time is passed and comes
back) is here, in ``time_param`` and ``as_time``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import sqlite3
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from glacierd.errors import StoreError

from . import totals
from .revisions import check_revision
from .sqlitefile import (
    BUSY_TIMEOUT_MS,
    WHAT_TO_DO,
    DamagedDatabaseError,
    check_sqlite_file,
    describe_sqlite_error,
    read_only_uri,
    sqlite_path,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

Params = Mapping[str, Any]


class Reader(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def is_sqlite(self) -> bool: ...

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]: ...

    def batches(self, sql: str, size: int,
                params: Params | None = None) -> Iterator[list[tuple[Any, ...]]]: ...

    def time_param(self, value: dt.datetime) -> Any: ...

    def close(self) -> None: ...


def sqlite_time(value: dt.datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite: naive UTC text."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ",
                                                                     timespec="microseconds")


def as_time(value: Any) -> dt.datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back text, naive)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    assert isinstance(value, dt.datetime)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def running_totals(reader: Reader) -> totals.Totals:
    """The catalog's running totals (``glacierd.store.totals``): a few rows to sum,
    however many files there are."""
    return totals.summed(reader.rows(totals.READ_SQL))


class SqliteReader:
    """The SQLite state file, read-only, through ``sqlite3``."""

    is_sqlite = True

    def __init__(self, path: Path, url: str) -> None:
        self.url = url
        self._where = str(path)
        if not path.exists():
            raise StoreError(f"{path}: no state database here yet: run `glacierd db upgrade` "
                             "(or start the daemon)")
        check_sqlite_file(path)
        with self._translated():
            self._conn = sqlite3.connect(read_only_uri(path), uri=True,
                                         timeout=BUSY_TIMEOUT_MS / 1000)
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            has_version = self._conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
            current = self._conn.execute("SELECT version_num FROM alembic_version").fetchone() \
                if has_version else None
        try:
            check_revision(str(current[0]) if current else None, self._where)
        except StoreError:
            self._conn.close()
            raise

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """sqlite3's errors as the store's, naming the file (``store.db``'s messages)."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            raise StoreError(describe_sqlite_error(str(exc), self._where)) from exc
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabaseError(f"{self._where}: the state database is damaged "
                                       f"({exc}); {WHAT_TO_DO}") from exc

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        with self._translated():
            return self._conn.execute(sql, dict(params or {})).fetchall()

    def batches(self, sql: str, size: int,
                params: Params | None = None) -> Iterator[list[tuple[Any, ...]]]:
        with self._translated():
            cursor = self._conn.execute(sql, dict(params or {}))
            while batch := cursor.fetchmany(size):
                yield batch
            cursor.close()

    def time_param(self, value: dt.datetime) -> str:
        return sqlite_time(value)

    def close(self) -> None:
        self._conn.close()


class EngineReader:
    """Any database SQLAlchemy reaches (the store's engine), the same SQL."""

    def __init__(self, engine: Engine, url: str, *, owned: bool = False) -> None:
        self._engine = engine
        self.url = url
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._owned = owned

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), dict(params or {}))]

    def batches(self, sql: str, size: int,
                params: Params | None = None) -> Iterator[list[tuple[Any, ...]]]:
        from sqlalchemy import text

        with self._engine.connect() as conn:
            result = conn.execute(text(sql), dict(params or {}))
            while batch := result.fetchmany(size):
                yield [tuple(r) for r in batch]

    def time_param(self, value: dt.datetime) -> Any:
        # SQLAlchemy's text() passes a value to the driver as it is.
        return sqlite_time(value) if self.is_sqlite else value.astimezone(dt.UTC)

    def close(self) -> None:
        if self._owned:
            self._engine.dispose()


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class PostgresReader:
    """A PostgreSQL catalog, read with ``psycopg`` alone: ``status`` on a fleet's
    catalog need not load SQLAlchemy (a fifth of a second of start-up).
    The same SQL, its ``:name`` parameters in psycopg's form; messages name the
    database, never the URL (it may hold a password)."""

    is_sqlite = False

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        parts = urllib.parse.urlsplit(url)
        self._where = f"database {parts.path.lstrip('/') or '?'}"
        conninfo = urllib.parse.urlunsplit(("postgresql", *parts[1:]))
        try:
            self._conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"{self._where}: cannot be reached: "
                             f"{str(exc).strip().splitlines()[0]}") from None
        current = self.rows("SELECT version_num FROM alembic_version") if self.rows(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'alembic_version'") \
            else []
        try:
            check_revision(str(current[0][0]) if current else None, self._where)
        except StoreError:
            self._conn.close()
            raise

    def _execute(self, sql: str, params: Params | None) -> Any:
        import psycopg

        try:
            return self._conn.execute(_NAMED.sub(r"%(\1)s", sql),
                                      dict(params or {}))
        except psycopg.Error as exc:
            raise StoreError(f"{self._where}: {str(exc).strip().splitlines()[0]}") from None

    def rows(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return list(self._execute(sql, params).fetchall())

    def batches(self, sql: str, size: int,
                params: Params | None = None) -> Iterator[list[tuple[Any, ...]]]:
        cursor = self._execute(sql, params)
        while batch := cursor.fetchmany(size):
            yield batch

    def time_param(self, value: dt.datetime) -> Any:
        return value.astimezone(dt.UTC)

    def close(self) -> None:
        self._conn.close()


def open_reader(url: str) -> Reader:
    """A read-only reader of the state database at ``url``."""
    path = sqlite_path(url)
    if path is not None:
        return SqliteReader(path, url)
    if url.startswith(("postgresql+psycopg://", "postgresql://")):
        return PostgresReader(url)
    from .repository import Store

    store = Store.open(url, read_only=True)
    return EngineReader(store.engine, url, owned=True)
