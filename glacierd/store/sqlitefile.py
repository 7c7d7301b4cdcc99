"""The SQLite state file, without SQLAlchemy (pure standard library): the checks
and messages that ``glacierd.store.db`` and the read-only fast path of
``glacierd status`` (``glacierd.store.reader``) share.
"""

from __future__ import annotations

import os
from pathlib import Path

from glacierd.errors import StoreError

BUSY_TIMEOUT_MS = 10_000

_SQLITE_MAGIC = b"SQLite format 3\x00"
WHAT_TO_DO = ("keep this file (do not delete it: it may be recovered), point [state] dir at a "
              "new folder, run `glacierd db upgrade` and `glacierd catalog rebuild` to rebuild "
              "the catalog from the vault")


class DamagedDatabaseError(StoreError):
    """The state database is damaged."""


def check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database or is shorter than its header
    says (reading only: a damaged file is never modified)."""
    try:
        with open(path, "rb") as fh:
            header = fh.read(100)
            size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        raise StoreError(f"{path}: the state database cannot be read: {exc.strerror}") from exc
    if size == 0:
        return  # new: SQLite makes it a database
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise DamagedDatabaseError(f"{path}: the state database is damaged: it is not an SQLite "
                                   f"database; {WHAT_TO_DO}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    valid = header[24:28] == header[92:96]  # the page count is trustworthy
    if valid and page_size and size < pages * page_size:
        raise DamagedDatabaseError(
            f"{path}: the state database is damaged: it is truncated ({size:,} bytes, its "
            f"header says {pages * page_size:,}); {WHAT_TO_DO}")


def read_only_uri(path: Path) -> str:
    """An SQLite URI that opens ``path`` read-only (immutable when its folder is
    not writable: SQLite could not make its -shm file there)."""
    flags = "mode=ro" if os.access(path.parent, os.W_OK) else "immutable=1"
    return f"file:{path}?{flags}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (None: another database, or memory)."""
    for prefix in ("sqlite:///", "sqlite+pysqlite:///"):
        if url.startswith(prefix):
            rest = url[len(prefix):].split("?", 1)[0].removeprefix("file:")
            return Path(rest) if rest and rest != ":memory:" else None
    return None


def describe_sqlite_error(text: str, where: str) -> str:
    """A message for an SQLite error, naming the database."""
    if "locked" in text or "busy" in text:
        return f"{where}: the state database is locked by another process: {text}"
    if "disk" in text and ("full" in text or "I/O" in text):
        return f"{where}: the disk holding the state database is full or failing: {text}"
    if "readonly" in text or "read-only" in text:
        return f"{where}: the state database is read-only: {text}"
    if "unable to open" in text:
        return f"{where}: the state database cannot be opened: {text}"
    return f"{where}: database error: {text}"
